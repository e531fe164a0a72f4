// minnow_make_tiny_model: writes a tiny random-weight GGUF model (tests/support/tiny_model.h).
//
//   minnow_make_tiny_model --arch llama|qwen2|gemma3|phi3 --out FILE [--type f32|f16|q8_0|...]
//       [--seed N] [--variant NAME] [--drop-tensor NAME]... [--arch-name NAME] [--no-tokenizer]
//
// --drop-tensor and --arch-name make broken models for the loaders' error tests: a missing
// tensor, or a general.architecture (and key prefix) no loader knows.
// Prints one JSON line describing the model on success; errors go to stderr, exit status 1.
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "support/tiny_model.h"

namespace {

int usage(const std::string& problem) {
  std::fprintf(stderr,
               "minnow_make_tiny_model: %s\n"
               "usage: minnow_make_tiny_model --arch llama|qwen2|gemma3|phi3 --out FILE\n"
               "         [--type f32|f16|q8_0|q4_0|q4_1|q4_k|q6_k] [--seed N] [--variant NAME]\n"
               "         [--drop-tensor NAME]... [--arch-name NAME] [--no-tokenizer]\n",
               problem.c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string arch, out, type_name = "f32", variant = "default", arch_name;
  std::vector<std::string> drop;
  uint64_t seed = 1;
  bool tokenizer = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (arg == "--no-tokenizer") {
      tokenizer = false;
      continue;
    }
    if (arg != "--arch" && arg != "--out" && arg != "--type" && arg != "--seed" &&
        arg != "--variant" && arg != "--drop-tensor" && arg != "--arch-name") {
      return usage("unknown argument '" + arg + "'");
    }
    if (!(v = value())) return usage(arg + " needs a value");
    if (arg == "--arch") arch = v;
    if (arg == "--out") out = v;
    if (arg == "--type") type_name = v;
    if (arg == "--variant") variant = v;
    if (arg == "--drop-tensor") drop.push_back(v);
    if (arg == "--arch-name") arch_name = v;
    if (arg == "--seed") {
      char* end = nullptr;
      seed = std::strtoull(v, &end, 10);
      if (*v == '\0' || *end != '\0') return usage("--seed: not a number: '" + arg + "'");
    }
  }
  if (arch.empty() || out.empty()) return usage("--arch and --out are required");
  const auto type = minnow::tensor_type_from_name(type_name);
  if (!type) return usage("unknown --type '" + type_name + "'");

  auto spec = minnow::tiny::tiny_model_spec(arch, *type, variant);
  if (!spec) {
    std::fprintf(stderr, "minnow_make_tiny_model: %s\n", spec.error().c_str());
    return 1;
  }
  spec->seed = seed;
  spec->drop_tensors = drop;
  spec->tokenizer = tokenizer;
  if (!arch_name.empty()) spec->arch_name = arch_name;
  if (auto st = minnow::tiny::write_tiny_model(*spec, out); !st) {
    std::fprintf(stderr, "minnow_make_tiny_model: %s: %s\n", out.c_str(), st.message().c_str());
    return 1;
  }
  std::printf(
      "{\"file\": \"%s\", \"arch\": \"%s\", \"variant\": \"%s\", \"type\": \"%s\", "
      "\"n_vocab\": %u, \"n_embd\": %u, \"n_layer\": %u, \"head_dim\": %u}\n",
      out.c_str(), spec->arch_name.c_str(), spec->variant.c_str(),
      std::string(minnow::tensor_type_name(spec->type)).c_str(), spec->n_vocab, spec->n_embd,
      spec->n_layer, spec->head_dim);
  return 0;
}
