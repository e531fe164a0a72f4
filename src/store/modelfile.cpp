#include "store/modelfile.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace minnow::store {
namespace {

struct ParamSpec {
  std::string_view name;
  ParamType type;
  double min, max;  // inclusive bounds
};

constexpr double kInf = 1e300;
// The parameters Ollama's Modelfile documents for its runner, with the bounds that make sense.
constexpr ParamSpec kParams[] = {
    {"temperature", ParamType::kFloat, 0, kInf},
    {"top_k", ParamType::kInt, 0, kInf},
    {"top_p", ParamType::kFloat, 0, 1},
    {"min_p", ParamType::kFloat, 0, 1},
    {"typical_p", ParamType::kFloat, 0, 1},
    {"num_predict", ParamType::kInt, -2, kInf},
    {"num_ctx", ParamType::kInt, 1, kInf},
    {"seed", ParamType::kInt, -kInf, kInf},
    {"stop", ParamType::kStringList, 0, 0},
    {"repeat_penalty", ParamType::kFloat, 0, kInf},
    {"repeat_last_n", ParamType::kInt, -1, kInf},
    {"presence_penalty", ParamType::kFloat, -kInf, kInf},
    {"frequency_penalty", ParamType::kFloat, -kInf, kInf},
    {"num_thread", ParamType::kInt, 0, kInf},
};

std::string known_parameter_names() {
  std::string out;
  for (const auto& p : kParams) out += (out.empty() ? "" : ", ") + std::string(p.name);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string at_line(int line) { return "Modelfile line " + std::to_string(line) + ": "; }

// Reads the text of a Modelfile line by line, with values that may span lines.
class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text) {}
  bool done() const { return pos_ >= text_.size(); }
  int line() const { return line_; }

  std::string_view next_line() {
    const size_t end = std::min(text_.find('\n', pos_), text_.size());
    std::string_view l = text_.substr(pos_, end - pos_);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    pos_ = end + 1;
    ++line_;
    return l;
  }

  // The value that starts at `rest` (the remainder of the current line): """...""" (possibly
  // over several lines), "..." (escapes \" and \\, possibly over lines) or the trimmed rest.
  Result<std::string> value(std::string_view rest, int start_line) {
    rest = trim(rest);
    if (rest.starts_with("\"\"\"")) {
      std::string out;
      std::string_view cur = rest.substr(3);
      while (true) {
        const size_t close = cur.find("\"\"\"");
        if (close != std::string_view::npos) {
          out += cur.substr(0, close);
          if (!trim(cur.substr(close + 3)).empty())
            return Status::error(at_line(line_) + "text after the closing \"\"\"");
          return out;
        }
        out += cur;
        if (done())
          return Status::error(at_line(start_line) + "unterminated \"\"\" (no closing \"\"\")");
        out += '\n';
        cur = next_line();
      }
    }
    if (rest.starts_with("\"")) {
      std::string out;
      std::string_view cur = rest.substr(1);
      while (true) {
        for (size_t i = 0; i < cur.size(); ++i) {
          if (cur[i] == '\\' && i + 1 < cur.size()) {
            out += cur[++i];
          } else if (cur[i] == '"') {
            if (!trim(cur.substr(i + 1)).empty())
              return Status::error(at_line(line_) + "text after the closing quote");
            return out;
          } else {
            out += cur[i];
          }
        }
        if (done()) return Status::error(at_line(start_line) + "unterminated quoted value");
        out += '\n';
        cur = next_line();
      }
    }
    return std::string(rest);
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  int line_ = 0;
};

// Splits "word rest" at the first run of spaces.
std::pair<std::string_view, std::string_view> split_word(std::string_view s) {
  s = trim(s);
  size_t sp = 0;
  while (sp < s.size() && !std::isspace(static_cast<unsigned char>(s[sp]))) ++sp;
  return {s.substr(0, sp), trim(s.substr(sp))};
}

// Quotes a value so that Reader::value reads it back unchanged: bare when it is one line
// without quotes or surrounding spaces, else """...""", else "..." with escapes.
std::string quote(const std::string& v) {
  if (!v.empty() && v.find_first_of("\n\r\"") == std::string::npos && trim(v) == v) return v;
  if (v.find("\"\"\"") == std::string::npos && !v.ends_with("\"") && !v.ends_with("\\"))
    return "\"\"\"" + v + "\"\"\"";
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

Result<ParamType> parameter_type(std::string_view name) {
  for (const auto& p : kParams) {
    if (p.name == name) return p.type;
  }
  return Status::error("unknown parameter '" + std::string(name) +
                       "' (known: " + known_parameter_names() + ")");
}

Result<std::string> check_parameter(std::string_view name, std::string_view raw) {
  const ParamSpec* spec = nullptr;
  for (const auto& p : kParams) {
    if (p.name == name) spec = &p;
  }
  if (!spec) {
    return Status::error("unknown parameter '" + std::string(name) +
                         "' (known: " + known_parameter_names() + ")");
  }
  std::string_view value = trim(raw);
  if (spec->type == ParamType::kStringList) {
    if (raw.empty()) return Status::error("parameter 'stop': empty stop string");
    return std::string(raw);  // stop strings keep their spaces
  }
  const std::string v(value);
  auto bad = [&](const std::string& why) {
    return Status::error("parameter '" + std::string(name) + "': '" + v + "' " + why);
  };
  double d = 0;
  if (spec->type == ParamType::kInt) {
    int64_t i = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), i);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size()) return bad("is not an integer");
    d = static_cast<double>(i);
  } else {
    char* end = nullptr;
    d = std::strtod(v.c_str(), &end);
    if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(d))
      return bad("is not a number");
  }
  if (d < spec->min || d > spec->max) {
    std::string range = spec->max >= kInf
                            ? ">= " + std::to_string(static_cast<int64_t>(spec->min))
                            : "between " + std::to_string(static_cast<int>(spec->min)) + " and " +
                                  std::to_string(static_cast<int>(spec->max));
    return bad("is out of range (must be " + range + ")");
  }
  return v;
}

Status add_parameter(Parameters& params, std::string_view name, std::string_view value) {
  auto v = check_parameter(name, value);
  if (!v.ok()) return v.status();
  auto& values = params[std::string(name)];
  if (name != "stop") values.clear();
  values.push_back(std::move(*v));
  return Status();
}

Result<Modelfile> parse_modelfile(std::string_view text) {
  Modelfile mf;
  bool have_from = false;
  Reader r(text);
  while (!r.done()) {
    std::string_view line = trim(r.next_line());
    const int n = r.line();
    if (line.empty() || line.front() == '#') continue;
    auto [word, rest] = split_word(line);
    const std::string instr = lower(word);
    auto need_args = [&]() -> Status {
      if (rest.empty()) return Status::error(at_line(n) + instr + " needs an argument");
      return Status();
    };
    if (instr == "from") {
      MINNOW_RETURN_IF_ERROR(need_args());
      if (have_from) return Status::error(at_line(n) + "FROM given twice");
      auto v = r.value(rest, n);
      if (!v.ok()) return v.status();
      mf.from = *v;
      have_from = true;
    } else if (instr == "parameter") {
      auto [name, value] = split_word(rest);
      if (name.empty() || value.empty())
        return Status::error(at_line(n) + "PARAMETER needs a name and a value");
      auto v = r.value(value, n);
      if (!v.ok()) return v.status();
      Status s = add_parameter(mf.parameters, lower(name), *v);
      if (!s.ok()) return Status::error(at_line(n) + s.message());
    } else if (instr == "template" || instr == "system" || instr == "license") {
      auto v = r.value(rest, n);
      if (!v.ok()) return v.status();
      if (instr == "template")
        mf.template_text = *v;
      else if (instr == "system")
        mf.system = *v;
      else
        mf.licenses.push_back(*v);
    } else if (instr == "message") {
      auto [role, content] = split_word(rest);
      const std::string role_l = lower(role);
      if (role_l != "system" && role_l != "user" && role_l != "assistant") {
        return Status::error(at_line(n) + "MESSAGE role '" + std::string(role) +
                             "' (expected system, user or assistant)");
      }
      auto v = r.value(content, n);
      if (!v.ok()) return v.status();
      mf.messages.push_back({role_l, *v});
    } else if (instr == "adapter") {
      return Status::error(at_line(n) + "ADAPTER is reserved for LoRA adapters, not supported yet");
    } else {
      return Status::error(at_line(n) + "unknown instruction '" + std::string(word) +
                           "' (expected FROM, PARAMETER, TEMPLATE, SYSTEM, MESSAGE, LICENSE)");
    }
  }
  if (!have_from || mf.from.empty()) return Status::error("Modelfile: no FROM line");
  return mf;
}

std::string render_modelfile(const std::string& from, const Parameters& params,
                             const std::string& template_text, const std::string& system,
                             const std::vector<Message>& messages,
                             const std::vector<std::string>& licenses) {
  std::string out = "FROM " + from + "\n";
  if (!template_text.empty()) out += "TEMPLATE " + quote(template_text) + "\n";
  if (!system.empty()) out += "SYSTEM " + quote(system) + "\n";
  for (const auto& [name, values] : params) {
    for (const auto& v : values) out += "PARAMETER " + name + " " + quote(v) + "\n";
  }
  for (const auto& m : messages) out += "MESSAGE " + m.role + " " + quote(m.content) + "\n";
  for (const auto& l : licenses) out += "LICENSE " + quote(l) + "\n";
  return out;
}

std::string render_parameters(const Parameters& params) {
  std::string out;
  for (const auto& [name, values] : params) {
    for (const auto& v : values) {
      std::string padded = name;
      padded.resize(std::max<size_t>(padded.size() + 1, 30), ' ');
      out += padded + (name == "stop" ? "\"" + v + "\"" : v) + "\n";
    }
  }
  return out;
}

}  // namespace minnow::store
