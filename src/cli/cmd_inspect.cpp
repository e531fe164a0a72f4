#include <cinttypes>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include "cli/commands.h"
#include "cli/inspect.h"
#include "gguf/gguf.h"
#include "model/model_info.h"
#include "store/registry.h"

namespace minnow::cli {
namespace {

using nlohmann::ordered_json;

template <typename T>
ordered_json opt(const std::optional<T>& v) {
  return v ? ordered_json(*v) : ordered_json(nullptr);
}

// Per-layer counts collapse to their maximum for the headline value.
ordered_json max_of(const std::vector<uint64_t>& v) {
  if (v.empty()) return nullptr;
  uint64_t m = 0;
  for (uint64_t x : v) m = std::max(m, x);
  return m;
}

std::string fmt(const char* format, auto... args) {
  char buf[256];
  std::snprintf(buf, sizeof(buf), format, args...);
  return buf;
}

// 134515008 -> "134.5M"
std::string human_count(uint64_t n) {
  if (n >= 1'000'000'000) return fmt("%.2fB", n / 1e9);
  if (n >= 1'000'000) return fmt("%.1fM", n / 1e6);
  if (n >= 1'000) return fmt("%.1fK", n / 1e3);
  return std::to_string(n);
}

// 98362432 -> "93.8 MiB"
std::string human_bytes(uint64_t n) {
  if (n >= (1ull << 30)) return fmt("%.2f GiB", n / double(1ull << 30));
  if (n >= (1ull << 20)) return fmt("%.1f MiB", n / double(1ull << 20));
  if (n >= (1ull << 10)) return fmt("%.1f KiB", n / double(1ull << 10));
  return fmt("%" PRIu64 " B", n);
}

// 1000000.0 -> "1000000", 0.5 -> "0.5": whole numbers in full, the rest in %g.
std::string number(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v)) && v < 1e15 && v > -1e15) {
    return std::to_string(static_cast<int64_t>(v));
  }
  return fmt("%g", v);
}

std::string or_dash(const std::optional<uint64_t>& v) {
  return v ? std::to_string(*v) : std::string("-");
}

std::string counts(const std::vector<uint64_t>& v) {
  if (v.empty()) return "-";
  bool same = true;
  for (uint64_t x : v) same = same && x == v.front();
  if (same) return std::to_string(v.front()) + (v.size() > 1 ? " (every layer)" : "");
  std::string out = "per layer [";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + std::to_string(v[i]);
  return out + "]";
}

}  // namespace

ordered_json inspect_json(const gguf::File& file, const model::ModelInfo& info,
                          const InspectOptions& options) {
  ordered_json j;
  j["schema_version"] = kInspectSchemaVersion;
  j["source"] = {
      {"name",
       options.model_name.empty() ? ordered_json(nullptr) : ordered_json(options.model_name)},
      {"path", file.path()},
      {"bytes", file.file_size()},
  };
  j["gguf"] = {
      {"version", file.version()},         {"alignment", file.alignment()},
      {"data_offset", file.data_offset()}, {"metadata_keys", file.metadata().size()},
      {"tensor_count", info.tensor_count}, {"tensor_bytes", info.tensor_bytes},
  };
  j["architecture"] = info.architecture;
  j["name"] = opt(info.name);
  j["parameters"] = info.parameter_count;
  if (info.file_type) {
    std::string_view name = model::file_type_name(*info.file_type);
    j["file_type"] = {{"id", *info.file_type},
                      {"name", name.empty() ? ordered_json(nullptr) : ordered_json(name)}};
  } else {
    j["file_type"] = nullptr;
  }
  j["quantization_version"] = opt(info.quantization_version);

  ordered_json types = ordered_json::array();
  for (const model::TensorTypeCount& c : info.tensor_types) {
    types.push_back({{"type", tensor_type_name(c.type)},
                     {"type_id", static_cast<uint32_t>(c.type)},
                     {"tensors", c.tensors},
                     {"elements", c.elements},
                     {"bytes", c.bytes}});
  }
  j["tensor_types"] = types;

  const bool per_layer_heads = info.head_count.size() > 1 || info.head_count_kv.size() > 1;
  ordered_json scaling = nullptr;
  if (info.rope_scaling_type || info.rope_scaling_factor ||
      info.rope_scaling_original_context_length) {
    scaling = {{"type", opt(info.rope_scaling_type)},
               {"factor", opt(info.rope_scaling_factor)},
               {"original_context_length", opt(info.rope_scaling_original_context_length)}};
  }
  j["hparams"] = {
      {"context_length", opt(info.context_length)},
      {"embedding_length", opt(info.embedding_length)},
      {"block_count", opt(info.block_count)},
      {"feed_forward_length", opt(info.feed_forward_length)},
      {"head_count", max_of(info.head_count)},
      {"head_count_kv", max_of(info.head_count_kv)},
      {"head_count_per_layer", per_layer_heads ? ordered_json(info.head_count) : nullptr},
      {"head_count_kv_per_layer", per_layer_heads ? ordered_json(info.head_count_kv) : nullptr},
      {"key_length", opt(info.key_length)},
      {"value_length", opt(info.value_length)},
      {"sliding_window", opt(info.sliding_window)},
      {"rms_norm_epsilon", opt(info.rms_norm_epsilon)},
      {"rope",
       {{"freq_base", opt(info.rope_freq_base)},
        {"dimension_count", opt(info.rope_dimension_count)},
        {"scaling", scaling}}},
  };
  j["tokenizer"] = {
      {"model", opt(info.tokenizer_model)},
      {"pre", opt(info.tokenizer_pre)},
      {"vocab_size", opt(info.vocab_size)},
      {"bos_token_id", opt(info.bos_token_id)},
      {"eos_token_id", opt(info.eos_token_id)},
      {"chat_template", info.chat_template_bytes.has_value()},
      {"chat_template_bytes", opt(info.chat_template_bytes)},
  };

  if (options.tensors) {
    ordered_json tensors = ordered_json::array();
    for (const gguf::TensorInfo& t : file.tensors()) {
      ordered_json shape = ordered_json::array();
      for (uint32_t d = 0; d < t.n_dims; ++d) shape.push_back(t.ne[d]);
      tensors.push_back({{"name", t.name},
                         {"type", tensor_type_name(t.type)},
                         {"shape", shape},
                         {"elements", t.n_elements},
                         {"bytes", t.n_bytes},
                         {"offset", t.offset},
                         {"file_offset", file.data_offset() + t.offset}});
    }
    j["tensors"] = tensors;
  }
  return j;
}

std::string inspect_text(const gguf::File& file, const model::ModelInfo& info,
                         const InspectOptions& options) {
  std::string out;
  auto line = [&out](std::string_view label, const std::string& value) {
    out += fmt("%-15s", std::string(label).c_str()) + value + "\n";
  };
  line("model",
       options.model_name.empty() ? file.path() : options.model_name + "  (" + file.path() + ")");
  if (info.name) line("name", *info.name);
  line("architecture", info.architecture);
  line("parameters",
       human_count(info.parameter_count) + " (" + std::to_string(info.parameter_count) + ")");
  if (info.file_type) {
    std::string_view name = model::file_type_name(*info.file_type);
    line("file type", (name.empty() ? std::string("unknown") : std::string(name)) + " (" +
                          std::to_string(*info.file_type) + ")");
  } else {
    line("file type", "-");
  }
  line("file", human_bytes(file.file_size()) + ", GGUF v" + std::to_string(file.version()) + ", " +
                   std::to_string(file.metadata().size()) + " metadata keys, " +
                   std::to_string(info.tensor_count) + " tensors (" +
                   human_bytes(info.tensor_bytes) + ")");
  std::string mix;
  for (const model::TensorTypeCount& c : info.tensor_types) {
    if (!mix.empty()) mix += ", ";
    mix += std::string(tensor_type_name(c.type)) + " x" + std::to_string(c.tensors) + " (" +
           human_bytes(c.bytes) + ")";
  }
  line("tensor types", mix.empty() ? "-" : mix);
  line("context", or_dash(info.context_length));
  line("embedding", or_dash(info.embedding_length));
  line("layers", or_dash(info.block_count));
  line("feed forward", or_dash(info.feed_forward_length));
  std::string heads = counts(info.head_count) + ", kv " + counts(info.head_count_kv);
  if (info.key_length) heads += ", head dim " + std::to_string(*info.key_length);
  line("heads", heads);
  if (info.sliding_window) line("sliding window", std::to_string(*info.sliding_window));
  std::string rope = "freq_base " + (info.rope_freq_base ? number(*info.rope_freq_base) : "-") +
                     ", dims " + or_dash(info.rope_dimension_count) + ", scaling ";
  if (info.rope_scaling_type || info.rope_scaling_factor) {
    rope += info.rope_scaling_type.value_or("?");
    if (info.rope_scaling_factor) rope += " x" + number(*info.rope_scaling_factor);
    if (info.rope_scaling_original_context_length) {
      rope += " (from " + std::to_string(*info.rope_scaling_original_context_length) + ")";
    }
  } else {
    rope += "none";
  }
  line("rope", rope);
  std::string tok = info.tokenizer_model.value_or("-");
  if (info.tokenizer_pre) tok += " (pre " + *info.tokenizer_pre + ")";
  tok += ", vocab " + or_dash(info.vocab_size);
  line("tokenizer", tok);
  line("chat template", info.chat_template_bytes
                            ? "embedded (" + std::to_string(*info.chat_template_bytes) + " bytes)"
                            : std::string("none"));

  if (options.tensors) {
    out += fmt("\n%-40s %-7s %-22s %12s %12s\n", "tensor", "type", "shape", "bytes", "offset");
    for (const gguf::TensorInfo& t : file.tensors()) {
      out += fmt("%-40s %-7s %-22s %12" PRIu64 " %12" PRIu64 "\n", std::string(t.name).c_str(),
                 std::string(tensor_type_name(t.type)).c_str(), t.shape_string().c_str(), t.n_bytes,
                 t.offset);
    }
  }
  return out;
}

void register_inspect(CLI::App& app) {
  struct Args {
    std::string model;
    bool json = false;
    bool tensors = false;
  };
  auto args = std::make_shared<Args>();
  args->model = std::string(store::default_model().name);
  auto* cmd = app.add_subcommand("inspect",
                                 "Describe a GGUF model: architecture, size, "
                                 "hyper-parameters, tokenizer, tensor types");
  cmd->add_option("model", args->model,
                  "model name (" + store::known_model_names() + ") or path to a .gguf file")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "print JSON (schema: docs/inspect-json.md)");
  cmd->add_flag("--tensors", args->tensors, "list every tensor: name, type, shape, bytes, offset");
  cmd->callback([args] {
    auto resolved = store::resolve_model(args->model);
    if (!resolved) throw std::runtime_error(resolved.error());
    auto file = gguf::File::open(resolved->path);
    if (!file) throw std::runtime_error(file.error());
    auto info = model::describe(**file);
    if (!info) throw std::runtime_error(info.error());
    InspectOptions options;
    if (resolved->known) options.model_name = std::string(resolved->known->name);
    options.tensors = args->tensors;
    std::string out = args->json ? inspect_json(**file, *info, options).dump(2) + "\n"
                                 : inspect_text(**file, *info, options);
    std::fwrite(out.data(), 1, out.size(), stdout);
  });
}

}  // namespace minnow::cli
