#include <cstdio>
#include <exception>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"minnow: a fast local runtime for small language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "minnow 0.1.0");
  minnow::cli::register_inspect(app);
  minnow::cli::register_tokenize(app);
  minnow::cli::register_detokenize(app);
  minnow::cli::register_template(app);
  minnow::cli::register_logits(app);
  minnow::cli::register_run(app);
  minnow::cli::register_bench(app);
  minnow::cli::register_serve(app);
  minnow::cli::register_store(app);
  minnow::cli::register_eval(app);
  minnow::cli::register_router(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "minnow: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
