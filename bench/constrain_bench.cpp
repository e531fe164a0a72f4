// Constrained decoding: what a grammar costs per token.
//
//   BM_Mask/<model>/<state>: one mask() over the whole vocabulary in a JSON grammar state
//     (warm: the DFA rows the walk needs are cached, as after the first few tokens of a request);
//   BM_MaskCold/<model>: the first mask() of a fresh request (every DFA row built on the way);
//   BM_AllowsAccept/<model>: allows() + accept() per token along a tokenized JSON document (the
//     path of every token the sampler's first draw gets right);
//   BM_Generate/<model>/<none|json|schema>: end to end, engine::Session::generate, greedy,
//     decode tokens/s (counter tok_s) without a constraint, with --format json's grammar, and
//     with a JSON Schema; mask_ms is the mean time of the masks that ran.
//
// Models come from $MINNOW_CACHE (~/.cache/minnow/models); a model that is absent is skipped.
// Run: build/minnow_constrain_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "constrain/constrain.h"
#include "constrain/json_schema.h"
#include "engine/chat.h"
#include "engine/session.h"
#include "model/model.h"
#include "util/thread_pool.h"

namespace mc = minnow::constrain;

namespace {

std::string models_dir() {
  if (const char* c = std::getenv("MINNOW_CACHE"); c && *c) return c;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.cache/minnow/models";
}

struct Loaded {
  std::unique_ptr<minnow::model::Model> model;
  std::shared_ptr<const mc::Vocab> vocab;
};

const std::map<std::string, std::string> kModels = {
    {"smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"},
    {"gemma3", "gemma-3-270m-q4_k_m.gguf"},
};

Loaded* loaded(const std::string& name) {
  static std::map<std::string, Loaded> cache;
  if (auto it = cache.find(name); it != cache.end())
    return it->second.model ? &it->second : nullptr;
  Loaded& l = cache[name];
  const std::string path = models_dir() + "/" + kModels.at(name);
  if (!std::filesystem::exists(path)) return nullptr;
  auto m = minnow::model::Model::load(path);
  if (!m) return nullptr;
  l.model = std::move(*m);
  l.vocab = mc::Vocab::from_tokenizer(*l.model->tokenizer());
  return &l;
}

std::shared_ptr<const mc::Grammar> json_grammar() {
  static auto g = *mc::Grammar::parse(mc::json_gbnf(true));
  return g;
}

const char* kSchema = R"({"type": "object", "properties": {
  "name": {"type": "string", "maxLength": 40},
  "email": {"type": "string", "format": "email"},
  "company": {"type": "string", "maxLength": 40}},
  "required": ["name", "email", "company"], "additionalProperties": false})";

std::shared_ptr<const mc::Grammar> schema_grammar() {
  static std::shared_ptr<const mc::Grammar> g = [] {
    auto gbnf = mc::json_schema_to_gbnf(kSchema);
    if (!gbnf) return std::shared_ptr<const mc::Grammar>();
    auto p = mc::Grammar::parse(*gbnf);
    return p ? *p : std::shared_ptr<const mc::Grammar>();
  }();
  return g;
}

// A constraint advanced over `prefix` (tokenized by the model).
std::unique_ptr<mc::GrammarConstraint> at_prefix(Loaded& l, std::string_view prefix) {
  auto c = mc::GrammarConstraint::create(json_grammar(), l.vocab);
  if (!c) return nullptr;
  auto ids = l.model->tokenizer()->tokenize(prefix, false, false);
  if (!ids) return nullptr;
  for (int32_t t : *ids) (*c)->accept(t);
  if (!(*c)->status().ok()) return nullptr;
  return std::move(*c);
}

// JSON states: the start, a value to come, inside a string, after a number.
const std::map<std::string, std::string> kStates = {
    {"start", ""},
    {"value", "{\"name\": "},
    {"in_string", "{\"name\": \"Sarah Ch"},
    {"after_number", "{\"age\": 4"},
};

void BM_Mask(benchmark::State& state, std::string model, std::string where) {
  Loaded* l = loaded(model);
  if (!l) return state.SkipWithError((model + " absent").c_str());
  auto c = at_prefix(*l, kStates.at(where));
  if (!c) return state.SkipWithError("could not reach the state");
  std::vector<float> logits(size_t(l->vocab->n_tokens()), 0.0f);
  c->mask(logits);  // warm the DFA rows
  size_t allowed = 0;
  for (auto _ : state) {
    std::fill(logits.begin(), logits.end(), 0.0f);
    c->mask(logits);
    benchmark::DoNotOptimize(logits.data());
  }
  for (float x : logits) allowed += x == 0.0f;
  state.counters["allowed"] = double(allowed);
  state.counters["n_vocab"] = double(logits.size());
}

void BM_MaskCold(benchmark::State& state, std::string model) {
  Loaded* l = loaded(model);
  if (!l) return state.SkipWithError((model + " absent").c_str());
  std::vector<float> logits(size_t(l->vocab->n_tokens()), 0.0f);
  for (auto _ : state) {
    state.PauseTiming();
    auto c = mc::GrammarConstraint::create(json_grammar(), l->vocab);
    state.ResumeTiming();
    (*c)->mask(logits);
    benchmark::DoNotOptimize(logits.data());
  }
}

void BM_AllowsAccept(benchmark::State& state, std::string model) {
  Loaded* l = loaded(model);
  if (!l) return state.SkipWithError((model + " absent").c_str());
  const std::string doc =
      "{\"name\": \"Sarah Chen\", \"email\": \"sarah@acme.com\", \"company\": \"Acme Corp\", "
      "\"tags\": [\"customer\", \"vip\"], \"age\": 34, \"score\": -1.5e3, \"active\": true}";
  auto ids = *l->model->tokenizer()->tokenize(doc, false, false);
  int64_t n = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto c = mc::GrammarConstraint::create(json_grammar(), l->vocab).value();
    // Warm pass: the steady state of a request is a cached DFA.
    for (int32_t t : ids) c->accept(t);
    c = mc::GrammarConstraint::create(json_grammar(), l->vocab).value();
    state.ResumeTiming();
    for (int32_t t : ids) {
      benchmark::DoNotOptimize(c->allows(t));
      c->accept(t);
    }
    n += int64_t(ids.size());
  }
  state.SetItemsProcessed(n);
}

void BM_Generate(benchmark::State& state, std::string model, std::string kind) {
  Loaded* l = loaded(model);
  if (!l) return state.SkipWithError((model + " absent").c_str());
  std::shared_ptr<const mc::Grammar> g;
  if (kind == "json") g = json_grammar();
  if (kind == "schema") g = schema_grammar();
  if (kind != "none" && !g) return state.SkipWithError("grammar failed");
  static minnow::ThreadPool pool(int(std::max(1u, std::thread::hardware_concurrency())));
  auto session = minnow::engine::Session::create(*l->model, pool);
  if (!session) return state.SkipWithError(session.error().c_str());
  auto tmpl = minnow::engine::chat_template_for(*l->model);
  if (!tmpl) return state.SkipWithError(tmpl.error().c_str());
  auto text = minnow::engine::render_chat(
      *tmpl,
      {{"user",
        "Extract the name, email and company as JSON: Hi, I'm Sarah Chen from Acme Corp. Reach "
        "me at sarah@acme.com. Then describe the company in detail."}},
      true);
  auto prompt = *minnow::engine::tokenize_prompt(*l->model, *text);
  double steps = 0, ms = 0, mask_ms = 0;
  int64_t masks = 0;
  for (auto _ : state) {
    std::unique_ptr<mc::GrammarConstraint> c;
    minnow::engine::GenerateOptions opt;
    opt.sampling.temperature = 0;
    opt.num_predict = 64;
    if (g) {
      c = mc::GrammarConstraint::create(g, l->vocab).value();
      opt.constraint = c.get();
    }
    auto r = (*session)->generate(prompt, opt, [](std::string_view) { return true; });
    if (!r) return state.SkipWithError(r.error().c_str());
    steps += r->generated_tokens - 1;
    ms += r->generate_ms;
    if (c) {
      masks += c->n_masks();
      mask_ms += c->mask_ms_total();
    }
  }
  state.counters["tok_s"] = ms > 0 ? steps * 1000.0 / ms : 0.0;
  state.counters["tokens"] = steps / double(state.iterations());
  state.counters["masks_per_tok"] = steps > 0 ? double(masks) / steps : 0.0;
  state.counters["mask_ms"] = masks > 0 ? mask_ms / double(masks) : 0.0;
}

void register_all() {
  for (const auto& [name, file] : kModels) {
    for (const auto& [where, prefix] : kStates) {
      benchmark::RegisterBenchmark(("BM_Mask/" + name + "/" + where).c_str(), BM_Mask, name, where)
          ->Unit(benchmark::kMicrosecond);
    }
    benchmark::RegisterBenchmark(("BM_MaskCold/" + name).c_str(), BM_MaskCold, name)
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("BM_AllowsAccept/" + name).c_str(), BM_AllowsAccept, name)
        ->Unit(benchmark::kMicrosecond);
    for (const char* kind : {"none", "json", "schema"}) {
      benchmark::RegisterBenchmark(("BM_Generate/" + name + "/" + kind).c_str(), BM_Generate, name,
                                   std::string(kind))
          ->Unit(benchmark::kMillisecond)
          ->Iterations(3);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
