// Placeholder wiring until the inspect command lands; prints the header summary.
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "gguf/gguf.h"

namespace minnow::cli {

void register_inspect(CLI::App& app) {
  auto* cmd = app.add_subcommand("inspect", "Describe a GGUF model file");
  auto path = std::make_shared<std::string>();
  cmd->add_option("model", *path, "path to a .gguf file")->required();
  cmd->callback([path] {
    auto f = gguf::File::open(*path);
    if (!f) throw std::runtime_error(f.error());
    std::printf("v%u kv=%zu tensors=%zu\n", (*f)->version(), (*f)->metadata().size(),
                (*f)->tensors().size());
  });
}

}  // namespace minnow::cli
