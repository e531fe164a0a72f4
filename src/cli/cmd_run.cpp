// `minnow run MODEL [PROMPT]`: generate from a prompt (argument or stdin), streaming the text
// to stdout as it is produced; with no prompt on a terminal, an interactive chat.
// stdout carries only the generated text; diagnostics and timings (--verbose) go to stderr.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/load.h"
#include "constrain/constrain.h"
#include "constrain/json_schema.h"
#include "engine/chat.h"
#include "engine/session.h"
#include "router/config.h"
#include "router/router.h"

namespace minnow::cli {
namespace {

struct RunArgs {
  std::string model;
  std::string prompt;
  std::string system;
  bool raw = false;
  bool verbose = false;
  int threads = 0;
  int ctx = 0;
  std::string kv_type = "f16";
  engine::GenerateOptions gen;
  int64_t seed = -1;
  // Structured output (at most one): --format json|@schema.json, --grammar, --regex, --choice.
  std::string format;
  std::string grammar_file;
  std::string regex;
  std::vector<std::string> choices;
  std::shared_ptr<const constrain::Grammar> grammar;  // built from the above once per run
  std::shared_ptr<const constrain::Vocab> vocab;
  std::string router;  // --router FILE
};

std::atomic<bool> g_cancel{false};
extern "C" void on_sigint(int) { g_cancel.store(true); }

// SIGINT stops the generation in progress (chat), not the program, while this is alive.
class CancelOnSigint {
 public:
  CancelOnSigint() {
    g_cancel.store(false);
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_);
  }
  ~CancelOnSigint() { sigaction(SIGINT, &old_, nullptr); }

 private:
  struct sigaction old_ {};
};

void print_stats(const model::Model& m, const engine::GenerateResult& r) {
  std::fprintf(stderr, "\nload:       %.1f ms\n", m.load_ms());
  std::fprintf(stderr, "prompt:     %d tokens (%d evaluated) in %.1f ms, %.1f tokens/s\n",
               r.prompt_tokens, r.prompt_evaluated, r.prompt_ms,
               r.prompt_ms > 0 ? r.prompt_evaluated * 1000.0 / r.prompt_ms : 0.0);
  // The first token comes from the prompt's logits; the rate counts the decode steps after it.
  const int steps = r.generated_tokens - 1;
  std::fprintf(stderr, "generated:  %d tokens in %.1f ms, %.1f tokens/s\n", r.generated_tokens,
               r.generate_ms,
               steps > 0 && r.generate_ms > 0 ? steps * 1000.0 / r.generate_ms : 0.0);
  std::fprintf(stderr, "first token: %.1f ms, stop: %s\n", r.ttft_ms, r.done_reason.c_str());
}

std::vector<int32_t> prompt_tokens(const model::Model& m, const RunArgs& a,
                                   const text::ChatTemplate* tmpl,
                                   const std::vector<engine::ChatMessage>& history) {
  std::string text;
  if (a.raw) {
    text = history.back().content;
  } else {
    auto rendered = engine::render_chat(*tmpl, history, true);
    if (!rendered) throw std::runtime_error(rendered.error());
    text = *rendered;
  }
  auto ids = engine::tokenize_prompt(m, text);
  if (!ids) throw std::runtime_error(ids.error());
  return *ids;
}

std::string read_text_file(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(std::string(flag) + " " + path + ": cannot open the file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The grammar of the structured-output flags (GBNF text, then parsed), or nullptr without one.
std::shared_ptr<const constrain::Grammar> output_grammar(const RunArgs& a) {
  const int n_flags = !a.format.empty() + !a.grammar_file.empty() + !a.regex.empty() +
                      !a.choices.empty();
  if (n_flags == 0) return nullptr;
  if (n_flags > 1) {
    throw std::runtime_error("--format, --grammar, --regex and --choice are exclusive: give one");
  }
  std::string gbnf, what;
  if (a.format == "json") {
    gbnf = constrain::json_gbnf(/*object_only=*/true);  // Ollama's format "json": an object
    what = "--format json";
  } else if (!a.format.empty()) {
    if (a.format[0] != '@') {
      throw std::runtime_error("--format must be json or @FILE (a JSON Schema), not '" +
                               a.format + "'");
    }
    what = "--format " + a.format;
    auto g = constrain::json_schema_to_gbnf(read_text_file(a.format.substr(1), "--format"));
    if (!g) throw std::runtime_error(what + ": " + g.error());
    gbnf = *g;
  } else if (!a.grammar_file.empty()) {
    gbnf = read_text_file(a.grammar_file, "--grammar");
    what = "--grammar " + a.grammar_file;
  } else if (!a.regex.empty()) {
    auto g = constrain::regex_to_gbnf(a.regex);
    if (!g) throw std::runtime_error("--regex: " + g.error());
    gbnf = *g;
    what = "--regex";
  } else {
    gbnf = constrain::choice_to_gbnf(a.choices);
    what = "--choice";
  }
  auto g = constrain::Grammar::parse(gbnf);
  if (!g) throw std::runtime_error(what + ": " + g.error());
  return *g;
}

// Generates one answer, streamed to stdout; returns its text.
std::string answer(engine::Session& session, const RunArgs& a, const std::vector<int32_t>& ids) {
  std::string out;
  // A constraint is per answer: it starts from the grammar's start each time.
  std::unique_ptr<constrain::GrammarConstraint> constraint;
  engine::GenerateOptions gen = a.gen;
  if (a.grammar) {
    auto c = constrain::GrammarConstraint::create(a.grammar, a.vocab);
    if (!c) throw std::runtime_error(c.error());
    constraint = std::move(*c);
    gen.constraint = constraint.get();
  }
  auto r = session.generate(
      ids, gen,
      [&](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        out += piece;
        return true;
      },
      {}, &g_cancel);
  if (!r) throw std::runtime_error(r.error());
  if (constraint && !constraint->status().ok()) {
    throw std::runtime_error(constraint->status().message());
  }
  if (a.verbose) {
    print_stats(session.model(), *r);
    if (constraint) {
      const auto n = constraint->n_masks();
      std::fprintf(stderr, "constraint: %lld masks over %d tokens, %.3f ms each (%zu states)\n",
                   static_cast<long long>(n), r->generated_tokens,
                   n > 0 ? constraint->mask_ms_total() / double(n) : 0.0, constraint->n_states());
    }
  }
  return out;
}

bool set_parameter(RunArgs& a, const std::string& name, const std::string& value) {
  try {
    auto& s = a.gen.sampling;
    if (name == "temperature")
      s.temperature = std::stof(value);
    else if (name == "top_k")
      s.top_k = std::stoi(value);
    else if (name == "top_p")
      s.top_p = std::stof(value);
    else if (name == "min_p")
      s.min_p = std::stof(value);
    else if (name == "typical_p")
      s.typical_p = std::stof(value);
    else if (name == "repeat_penalty")
      s.repeat_penalty = std::stof(value);
    else if (name == "repeat_last_n")
      s.repeat_last_n = std::stoi(value);
    else if (name == "presence_penalty")
      s.presence_penalty = std::stof(value);
    else if (name == "frequency_penalty")
      s.frequency_penalty = std::stof(value);
    else if (name == "seed")
      s.seed = std::stoull(value);
    else if (name == "num_predict")
      a.gen.num_predict = std::stoi(value);
    else if (name == "stop")
      a.gen.stop.push_back(value);
    else
      return false;
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

void chat(const model::Model& m, engine::Session& session, RunArgs& a,
          const text::ChatTemplate* tmpl) {
  std::vector<engine::ChatMessage> history;
  if (!a.system.empty()) history.push_back({"system", a.system});
  std::fprintf(stderr, "Chatting with %s. /? for help, /bye to leave, \"\"\" for several lines.\n",
               a.model.c_str());
  std::string line;
  while (true) {
    std::fprintf(stderr, ">>> ");
    if (!std::getline(std::cin, line)) break;
    std::string input = line;
    if (line.rfind("\"\"\"", 0) == 0) {  // multi-line until a line ending with """
      input = line.substr(3);
      while (input.size() < 3 || input.compare(input.size() - 3, 3, "\"\"\"") != 0) {
        std::fprintf(stderr, "... ");
        if (!std::getline(std::cin, line)) break;
        input += "\n" + line;
      }
      if (input.size() >= 3 && input.compare(input.size() - 3, 3, "\"\"\"") == 0) {
        input.resize(input.size() - 3);
      }
    }
    if (input.empty()) continue;
    if (input[0] == '/') {
      std::istringstream cmd(input);
      std::string word, sub, name, value;
      cmd >> word;
      if (word == "/bye" || word == "/exit") break;
      if (word == "/clear") {
        history.clear();
        if (!a.system.empty()) history.push_back({"system", a.system});
        session.clear();
        std::fprintf(stderr, "Cleared session context\n");
      } else if (word == "/set") {
        cmd >> sub;
        if (sub == "parameter") {
          cmd >> name;
          std::getline(cmd >> std::ws, value);
          if (set_parameter(a, name, value)) {
            std::fprintf(stderr, "Set parameter '%s' to '%s'\n", name.c_str(), value.c_str());
          } else {
            std::fprintf(stderr, "Unknown parameter or bad value: %s %s\n", name.c_str(),
                         value.c_str());
          }
        } else if (sub == "system") {
          std::getline(cmd >> std::ws, a.system);
          if (!history.empty() && history[0].role == "system") history.erase(history.begin());
          history.insert(history.begin(), {"system", a.system});
          std::fprintf(stderr, "Set system message.\n");
        } else if (sub == "verbose") {
          a.verbose = true;
        } else if (sub == "quiet") {
          a.verbose = false;
        } else {
          std::fprintf(
              stderr,
              "Usage: /set parameter NAME VALUE | /set system TEXT | /set verbose | /set quiet\n");
        }
      } else {
        std::fprintf(
            stderr,
            "Commands:\n  /set parameter NAME VALUE  (temperature, top_k, top_p, min_p, "
            "typical_p, repeat_penalty, repeat_last_n, presence_penalty, "
            "frequency_penalty, seed, num_predict, stop)\n  /set system TEXT\n  /set "
            "verbose | /set quiet\n  /clear\n  /bye\n  \"\"\" begins and ends a multi-line "
            "message\n  Ctrl-C stops an answer, Ctrl-D leaves\n");
      }
      continue;
    }
    history.push_back({"user", input});
    std::string reply;
    {
      CancelOnSigint guard;
      try {
        reply = answer(session, a, prompt_tokens(m, a, tmpl, history));
      } catch (const std::exception& e) {
        history.pop_back();
        std::fprintf(stderr, "\nminnow: error: %s\n", e.what());
        continue;
      }
    }
    std::printf("\n\n");
    std::fflush(stdout);
    history.push_back({"assistant", reply});
  }
}

// A store model's Modelfile settings (PARAMETER, SYSTEM) for what the command line left unset.
void apply_model_defaults(RunArgs& a, const CLI::App& cmd) {
  auto r = store::resolve_model(a.model);
  if (!r.ok()) return;  // load_model reports it
  auto given = [&](const char* flag) { return cmd.count(flag) > 0; };
  const std::map<std::string, const char*> flags = {
      {"temperature", "--temperature"}, {"top_k", "--top-k"},
      {"top_p", "--top-p"},             {"min_p", "--min-p"},
      {"typical_p", "--typical-p"},     {"repeat_penalty", "--repeat-penalty"},
      {"repeat_last_n", "--repeat-last-n"}, {"seed", "--seed"},
      {"num_predict", "--num-predict"}, {"stop", "--stop"},
      {"num_ctx", "--ctx"},             {"num_thread", "--threads"}};
  for (const auto& [name, values] : r->parameters) {
    auto flag = flags.find(name);
    if (values.empty() || (flag != flags.end() && given(flag->second))) continue;
    if (name == "num_ctx") {
      a.ctx = std::stoi(values.back());
    } else if (name == "num_thread") {
      a.threads = std::stoi(values.back());
    } else if (name == "seed") {
      a.seed = std::stoll(values.back());  // -1: random, as on the command line
    } else {
      for (const auto& v : values) set_parameter(a, name, v);
    }
  }
  if (!given("--system") && !r->system.empty()) a.system = r->system;
}

// The router's local tiers in the CLI: each model loaded once, the prompt through its chat
// template, the request's constraint and sampling.
class CliRunner : public router::LocalRunner {
 public:
  CliRunner(const RunArgs& a, std::vector<engine::ChatMessage> history)
      : a_(a), history_(std::move(history)), pool_(thread_count(a.threads)) {}

  Result<router::LocalResult> run(const std::string& name, bool want_mass,
                                  router::TokenSink& sink,
                                  const std::atomic<bool>* cancel) override {
    try {
      Loaded& l = models_[name];
      if (!l.model) {
        l.model = load_model(name);
        model::ContextOptions copts;
        copts.n_ctx = a_.ctx;
        auto session = engine::Session::create(*l.model, pool_, copts);
        if (!session) return Status::error(session.error());
        l.session = std::move(*session);
        if (!a_.raw) {
          auto t = engine::chat_template_for(*l.model);
          if (!t) return Status::error(t.error());
          l.tmpl.emplace(std::move(*t));
        }
        if (a_.grammar) l.vocab = constrain::Vocab::from_tokenizer(*l.model->tokenizer());
      }
      std::unique_ptr<constrain::GrammarConstraint> constraint;
      engine::GenerateOptions gen = a_.gen;
      gen.sampling.constraint_mass = want_mass;
      if (a_.grammar) {
        auto c = constrain::GrammarConstraint::create(a_.grammar, l.vocab);
        if (!c) return Status::error(c.error());
        constraint = std::move(*c);
        gen.constraint = constraint.get();
      }
      const auto ids = prompt_tokens(*l.model, a_, l.tmpl ? &*l.tmpl : nullptr, history_);
      auto r = l.session->generate(
          ids, gen, [&](std::string_view p) { return sink.text(p); },
          [&](const engine::TokenEvent& e) {
            return sink.token(e.sample->logprob, e.sample->allowed_mass,
                              e.sample->token == sampling::kNoToken);
          },
          cancel);
      if (!r) return Status::error(r.error());
      return router::LocalResult{r->prompt_tokens, r->generated_tokens, r->done_reason};
    } catch (const std::exception& e) {
      return Status::error(e.what());
    }
  }

 private:
  struct Loaded {
    std::unique_ptr<model::Model> model;
    std::unique_ptr<engine::Session> session;
    std::optional<text::ChatTemplate> tmpl;
    std::shared_ptr<const constrain::Vocab> vocab;
  };
  const RunArgs& a_;
  std::vector<engine::ChatMessage> history_;
  ThreadPool pool_;
  std::map<std::string, Loaded> models_;
};

// The router file for `minnow run NAME`: --router, else the default one when NAME is its
// virtual model.
std::optional<router::RouterConfig> router_for(const RunArgs& a) {
  std::string path = a.router;
  if (path.empty()) {
    path = router::default_router_config_path();
    if (!std::ifstream(path)) return std::nullopt;
  }
  auto cfg = router::load_router_config(path);
  if (!cfg) throw std::runtime_error(cfg.error());
  if (cfg->name != a.model) {
    if (!a.router.empty())
      throw std::runtime_error(path + " defines the router '" + cfg->name + "', not '" +
                               a.model + "'");
    return std::nullopt;
  }
  return std::move(*cfg);
}

// One prompt through the router: the kept answer on stdout, who answered on stderr.
void run_routed(RunArgs& a, router::RouterConfig cfg) {
  std::string prompt = a.prompt;
  if (prompt.empty()) {
    if (isatty(STDIN_FILENO))
      throw std::runtime_error(a.model + " is a router: give a prompt (no interactive chat)");
    std::cin >> std::noskipws;
    prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  if (prompt.empty()) throw std::runtime_error("no prompt: give one as an argument or on stdin");
  a.grammar = output_grammar(a);
  std::vector<engine::ChatMessage> history;
  if (!a.system.empty()) history.push_back({"system", a.system});
  history.push_back({"user", prompt});
  router::RouteRequest req;
  nlohmann::json msgs = nlohmann::json::array();
  for (const auto& m : history) msgs.push_back({{"role", m.role}, {"content", m.content}});
  req.openai_body = {{"messages", msgs}, {"temperature", a.gen.sampling.temperature}};
  if (a.gen.num_predict > 0) req.openai_body["max_tokens"] = a.gen.num_predict;
  if (a.gen.sampling.seed) req.openai_body["seed"] = *a.gen.sampling.seed;
  std::string task = "chat";
  if (!a.choices.empty()) {
    req.openai_body["choice"] = a.choices;
    task = "choice";
  } else if (!a.regex.empty()) {
    req.openai_body["regex"] = a.regex;
    task = "regex";
  } else if (!a.grammar_file.empty()) {
    req.openai_body["grammar"] = read_text_file(a.grammar_file, "--grammar");
    task = "grammar";
  } else if (a.format == "json") {
    req.openai_body["response_format"] = {{"type", "json_object"}};
    task = "json";
  } else if (!a.format.empty()) {
    req.openai_body["response_format"] = {
        {"type", "json_schema"},
        {"json_schema",
         {{"name", "answer"},
          {"schema", nlohmann::json::parse(read_text_file(a.format.substr(1), "--format"))},
          {"strict", true}}}};
    task = "schema";
  }
  req.features.task = task;
  req.features.has_schema = task != "chat";
  req.features.text = prompt;
  req.features.prompt_chars = prompt.size() + a.system.size();
  req.grammar = a.grammar;
  req.choice = !a.choices.empty();
  req.stream = true;
  req.api = "cli";
  cfg.log_path.clear();  // the CLI is not traffic
  auto router = router::Router::create(std::move(cfg));
  if (!router) throw std::runtime_error(router.error());
  CliRunner runner(a, history);
  CancelOnSigint guard;
  auto out = (*router)->route(
      req, runner,
      [](std::string_view piece) {
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
        return true;
      },
      &g_cancel);
  std::printf("\n");
  std::fflush(stdout);
  if (!out) throw std::runtime_error(out.error());
  std::fprintf(stderr, "minnow: %s\n", router::route_header(out->record).c_str());
}

void run(RunArgs& a) {
  if (a.seed >= 0) a.gen.sampling.seed = static_cast<uint64_t>(a.seed);
  if (auto cfg = router_for(a)) return run_routed(a, std::move(*cfg));
  auto m = load_model(a.model);
  if (!m->tokenizer()) throw std::runtime_error(m->path() + ": the file has no tokenizer");
  ThreadPool pool(thread_count(a.threads));
  model::ContextOptions copts;
  copts.n_ctx = a.ctx;
  if (a.kv_type == "q8_0")
    copts.kv_type = model::KvType::kQ8_0;
  else if (a.kv_type != "f16")
    throw std::runtime_error("--kv-type must be f16 or q8_0");
  auto session = engine::Session::create(*m, pool, copts);
  if (!session) throw std::runtime_error(session.error());
  a.grammar = output_grammar(a);
  if (a.grammar) a.vocab = constrain::Vocab::from_tokenizer(*m->tokenizer());

  std::optional<text::ChatTemplate> tmpl;
  if (!a.raw) {
    auto t = engine::chat_template_for(*m);
    if (!t) throw std::runtime_error(t.error());
    tmpl = std::move(*t);
    if (!tmpl->warning().empty())
      std::fprintf(stderr, "minnow: warning: %s\n", tmpl->warning().c_str());
  }
  if (a.verbose) {
    std::fprintf(stderr, "model %s: %s, %d layers, context %d, %d threads\n", a.model.c_str(),
                 m->config().arch.c_str(), m->config().n_layer, (*session)->n_ctx(),
                 pool.n_threads());
  }

  std::string prompt = a.prompt;
  if (prompt.empty()) {
    if (isatty(STDIN_FILENO)) return chat(*m, **session, a, tmpl ? &*tmpl : nullptr);
    std::cin >> std::noskipws;
    prompt.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (prompt.empty()) throw std::runtime_error("no prompt: give one as an argument or on stdin");
  }
  std::vector<engine::ChatMessage> history;
  if (!a.system.empty()) history.push_back({"system", a.system});
  history.push_back({"user", prompt});
  {
    CancelOnSigint guard;
    answer(**session, a, prompt_tokens(*m, a, tmpl ? &*tmpl : nullptr, history));
  }
  std::printf("\n");
}

}  // namespace

void register_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  CLI::App* cmd =
      app.add_subcommand("run", "Generate text from a prompt, or chat (no prompt, on a terminal)");
  cmd->add_option("model", a->model, "Model name or .gguf path")->required();
  cmd->add_option("prompt", a->prompt, "Prompt (default: stdin; none on a terminal: chat)");
  cmd->add_option("--system", a->system, "System message");
  cmd->add_flag("--raw", a->raw, "Use the prompt as is, without the chat template");
  auto& s = a->gen.sampling;
  cmd->add_option("--temperature", s.temperature, "Sampling temperature (0 = greedy)")
      ->capture_default_str();
  cmd->add_option("--top-k", s.top_k, "Top-k (0 = off)")->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "Top-p (1 = off)")->capture_default_str();
  cmd->add_option("--min-p", s.min_p, "Min-p (0 = off)")->capture_default_str();
  cmd->add_option("--typical-p", s.typical_p, "Typical-p (1 = off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", s.repeat_penalty, "Repeat penalty (1 = off)")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", s.repeat_last_n, "Tokens the penalties look back on")
      ->capture_default_str();
  cmd->add_option("--seed", a->seed, "Random seed (default: random)");
  cmd->add_option("-n,--num-predict", a->gen.num_predict,
                  "Tokens to generate at most (-1 = no limit)")
      ->capture_default_str();
  cmd->add_option("--ctx", a->ctx,
                  "Context size in tokens (default: the model's, capped to fit 1 GiB of KV cache)");
  cmd->add_option("--threads", a->threads, "Threads (0 = one per core)")->capture_default_str();
  cmd->add_option("--stop", a->gen.stop, "Stop string (repeatable)");
  cmd->add_option("--kv-type", a->kv_type, "KV cache type: f16 or q8_0")->capture_default_str();
  cmd->add_flag("--context-shift", a->gen.context_shift,
                "When the context is full, drop the oldest half (after --keep tokens) and go on "
                "instead of stopping; a too-long prompt keeps its start and end");
  cmd->add_option("--keep", a->gen.n_keep, "Tokens kept at the start on a context shift")
      ->capture_default_str();
  cmd->add_flag("--verbose", a->verbose, "Print load time, prompt and generation speed to stderr");
  cmd->add_option("--format", a->format,
                  "Constrain the output: json (a JSON object) or @FILE (a JSON Schema)");
  cmd->add_option("--grammar", a->grammar_file, "Constrain the output to a GBNF grammar file");
  cmd->add_option("--regex", a->regex, "Constrain the output to match a regular expression");
  cmd->add_option("--choice", a->choices, "Constrain the output to one of these strings (a,b,c)")
      ->delimiter(',');
  cmd->add_option("--router", a->router,
                  "Router file whose virtual model MODEL is (default: $MINNOW_ROUTER or "
                  "~/.minnow/router.toml when MODEL is its name)");
  cmd->callback([a, cmd] {
    apply_model_defaults(*a, *cmd);
    run(*a);
  });
}

}  // namespace minnow::cli
