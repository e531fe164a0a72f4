// `minnow tokenize MODEL [TEXT]` and `minnow detokenize MODEL [IDS...]`: the model's own
// tokenizer from the command line (text from the argument or stdin; ids from arguments or
// stdin, separated by spaces, commas or brackets, so `tokenize --ids | detokenize` works).
#include <cstdio>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "store/registry.h"
#include "text/tokenizer.h"
#include "text/unicode.h"

namespace minnow::cli {
namespace {

std::unique_ptr<text::Tokenizer> load_tokenizer(const std::string& model) {
  auto resolved = store::resolve_model(model);
  if (!resolved) throw std::runtime_error(resolved.error());
  auto tok = text::Tokenizer::load(resolved->path);
  if (!tok) throw std::runtime_error(tok.error());
  return std::move(*tok);
}

std::string read_stdin() {
  std::cin >> std::noskipws;
  return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
}

// A piece for people: valid UTF-8, with control characters escaped.
std::string show(std::string_view piece) {
  std::string valid;
  text::append_valid_utf8(piece, valid);
  std::string out;
  for (char c : valid) {
    switch (c) {
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::vector<text::TokenId> parse_ids(const std::vector<std::string>& args) {
  std::vector<text::TokenId> ids;
  for (const std::string& arg : args) {
    size_t i = 0;
    while (i < arg.size()) {
      const char c = arg[i];
      if (c == ' ' || c == ',' || c == '[' || c == ']' || c == '\n' || c == '\t' || c == '\r') {
        ++i;
        continue;
      }
      size_t used = 0;
      long long v = 0;
      try {
        v = std::stoll(arg.substr(i), &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || v < INT32_MIN || v > INT32_MAX) {
        throw std::runtime_error("not a token id: '" +
                                 arg.substr(i, arg.find_first_of(" ,]", i) - i) + "'");
      }
      ids.push_back(static_cast<text::TokenId>(v));
      i += used;
    }
  }
  return ids;
}

}  // namespace

void register_tokenize(CLI::App& app) {
  struct Args {
    std::string model;
    std::string text;
    bool json = false;
    bool ids_only = false;
    bool no_add_special = false;
    bool parse_special = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("tokenize", "Turn text into the model's token ids");
  cmd->add_option("model", args->model,
                  "model name (" + store::known_model_names() + ") or path to a .gguf file")
      ->required();
  auto* text_opt = cmd->add_option("text", args->text, "text to tokenize (default: stdin)");
  cmd->add_flag("--json", args->json, "print {\"ids\": [...], \"pieces\": [...]}");
  cmd->add_flag("--ids", args->ids_only, "print only the ids, space separated");
  cmd->add_flag("--no-add-special", args->no_add_special,
                "do not add the BOS/EOS tokens the model asks for");
  cmd->add_flag("--parse-special", args->parse_special,
                "recognise control tokens written in the text (e.g. <|im_start|>)");
  cmd->callback([args, text_opt] {
    const auto tok = load_tokenizer(args->model);
    const std::string input = text_opt->count() ? args->text : read_stdin();
    auto ids = tok->tokenize(input, !args->no_add_special, args->parse_special);
    if (!ids) throw std::runtime_error(ids.error());
    std::string out;
    if (args->json) {
      nlohmann::json j;
      j["ids"] = *ids;
      j["pieces"] = nlohmann::json::array();
      for (text::TokenId id : *ids) j["pieces"].push_back(std::string(tok->piece(id, true)));
      // Pieces of byte tokens can be parts of a character: those bytes become U+FFFD.
      out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    } else if (args->ids_only) {
      for (size_t i = 0; i < ids->size(); ++i) out += (i ? " " : "") + std::to_string((*ids)[i]);
      out += "\n";
    } else {
      for (text::TokenId id : *ids) {
        out += std::to_string(id) + "\t" + show(tok->piece(id, true)) + "\n";
      }
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
  });
}

void register_detokenize(CLI::App& app) {
  struct Args {
    std::string model;
    std::vector<std::string> ids;
    bool special = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("detokenize", "Turn token ids back into text");
  cmd->add_option("model", args->model,
                  "model name (" + store::known_model_names() + ") or path to a .gguf file")
      ->required();
  cmd->add_option("ids", args->ids, "token ids (default: stdin), e.g. 1 2 3 or 1,2,3");
  cmd->add_flag("--special", args->special,
                "print control tokens (BOS, <|im_end|>...) as text instead of dropping them");
  cmd->callback([args] {
    const auto tok = load_tokenizer(args->model);
    const std::vector<text::TokenId> ids =
        parse_ids(args->ids.empty() ? std::vector<std::string>{read_stdin()} : args->ids);
    auto text = tok->detokenize(ids, /*remove_special=*/!args->special, args->special);
    if (!text) throw std::runtime_error(text.error());
    std::string out = *text + "\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  });
}

}  // namespace minnow::cli
