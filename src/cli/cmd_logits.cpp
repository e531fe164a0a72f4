// `minnow logits MODEL ...`: the raw logits of greedy steps, as JSON, for the fidelity tests
// against llama.cpp (tests/python/test_engine_fidelity.py) and the numpy reference
// (tests/python/test_engine_tiny.py). A developer command: no sampling, no chat loop.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/load.h"
#include "engine/chat.h"
#include "model/context.h"

namespace minnow::cli {
namespace {

struct LogitsArgs {
  std::string model;
  std::string tokens;
  std::string prompt;
  bool chat = false;
  int generate = 1;
  int top = 10;
  std::string dump;
  int batch = 512;
  int threads = 0;
  int ctx = 0;
  std::string kv_type = "f16";
};

std::vector<int32_t> parse_token_list(const std::string& s) {
  std::vector<int32_t> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || v < 0 || v > INT32_MAX) {
      throw std::runtime_error("--tokens: '" + item + "' is not a token id");
    }
    out.push_back(static_cast<int32_t>(v));
  }
  return out;
}

void run_logits(const LogitsArgs& a) {
  const bool use_text = !a.prompt.empty();
  if (use_text == !a.tokens.empty())
    throw std::runtime_error("give exactly one of --tokens and --prompt");
  if (a.generate < 1) throw std::runtime_error("--generate must be at least 1");
  auto m = load_model(a.model, model::LoadOptions{use_text});
  std::vector<int32_t> prompt;
  if (use_text) {
    if (!m->tokenizer()) throw std::runtime_error(m->path() + ": the file has no tokenizer");
    std::string text = a.prompt;
    if (a.chat) {
      auto tmpl = engine::chat_template_for(*m);
      if (!tmpl) throw std::runtime_error(tmpl.error());
      auto rendered = engine::render_chat(*tmpl, {{"user", a.prompt}}, true);
      if (!rendered) throw std::runtime_error(rendered.error());
      text = *rendered;
    }
    auto ids = engine::tokenize_prompt(*m, text);
    if (!ids) throw std::runtime_error(ids.error());
    prompt = *ids;
  } else {
    prompt = parse_token_list(a.tokens);
  }
  if (prompt.empty()) throw std::runtime_error("the prompt has no tokens");

  ThreadPool pool(thread_count(a.threads));
  model::ContextOptions opts;
  opts.n_batch = a.batch;
  opts.n_ctx = a.ctx > 0 ? a.ctx : static_cast<int>(prompt.size()) + a.generate;
  if (a.kv_type == "q8_0")
    opts.kv_type = model::KvType::kQ8_0;
  else if (a.kv_type != "f16")
    throw std::runtime_error("--kv-type must be f16 or q8_0");
  auto ctx = model::Context::create(*m, pool, opts);
  if (!ctx) throw std::runtime_error(ctx.error());

  std::ofstream dump;
  if (!a.dump.empty()) {
    dump.open(a.dump, std::ios::binary);
    if (!dump) throw std::runtime_error("cannot write " + a.dump);
  }
  const int n_vocab = m->config().n_vocab;
  const int top = std::clamp(a.top, 0, n_vocab);
  nlohmann::ordered_json steps = nlohmann::ordered_json::array();
  std::vector<int32_t> next = prompt;
  std::vector<int32_t> order(n_vocab);
  for (int step = 0; step < a.generate; ++step) {
    auto logits = (*ctx)->eval(next);
    if (!logits) throw std::runtime_error(logits.error());
    const float* l = logits->data();
    if (dump) dump.write(reinterpret_cast<const char*>(l), sizeof(float) * n_vocab);
    std::iota(order.begin(), order.end(), 0);
    // Largest first, ties to the lower id (argmax = first of them).
    auto cmp = [&](int32_t x, int32_t y) { return l[x] > l[y] || (l[x] == l[y] && x < y); };
    std::partial_sort(order.begin(), order.begin() + std::max(top, 1), order.end(), cmp);
    nlohmann::ordered_json tops = nlohmann::ordered_json::array();
    for (int i = 0; i < top; ++i) tops.push_back({order[i], l[order[i]]});
    steps.push_back({{"token", order[0]}, {"top", tops}});
    next.assign(1, order[0]);
  }
  if (dump && !dump.flush()) throw std::runtime_error("writing " + a.dump + " failed");
  nlohmann::ordered_json out = {{"model", a.model},
                                {"arch", m->config().arch},
                                {"n_vocab", n_vocab},
                                {"prompt_tokens", prompt},
                                {"steps", steps}};
  std::cout << out.dump() << "\n";
}

}  // namespace

void register_logits(CLI::App& app) {
  auto a = std::make_shared<LogitsArgs>();
  CLI::App* cmd = app.add_subcommand(
      "logits", "Greedy steps with their raw logits, as JSON (for fidelity tests)");
  cmd->add_option("model", a->model, "Model name or .gguf path")->required();
  cmd->add_option("--tokens", a->tokens, "Comma-separated prompt token ids (no BOS added)");
  cmd->add_option("--prompt", a->prompt, "Prompt text (tokenized with BOS and special tokens)");
  cmd->add_flag("--chat", a->chat, "Render --prompt as a user message through the chat template");
  cmd->add_option("--generate", a->generate, "Greedy steps")->capture_default_str();
  cmd->add_option("--top", a->top, "Largest logits listed per step")->capture_default_str();
  cmd->add_option("--dump-logits", a->dump,
                  "Write every step's full logits (f32, steps x n_vocab)");
  cmd->add_option("--batch", a->batch, "Prefill batch size")->capture_default_str();
  cmd->add_option("--threads", a->threads, "Threads (0 = one per core)")->capture_default_str();
  cmd->add_option("--ctx", a->ctx, "Context size (default: prompt + steps)");
  cmd->add_option("--kv-type", a->kv_type, "KV cache type: f16 or q8_0")->capture_default_str();
  cmd->callback([a] { run_logits(*a); });
}

}  // namespace minnow::cli
