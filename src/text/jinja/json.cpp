// tojson: Python's json.dumps as Hugging Face's chat-template tojson calls it
// (ensure_ascii=False, optional indent / separators / sort_keys).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "text/jinja/builtins.h"
#include "text/jinja/unicode.h"

namespace minnow::text::jinja {

namespace {

constexpr uint32_t kMaxJsonDepth = 512;

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out.push_back('"');
  auto escape_u = [&](uint32_t u) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "\\u%04x", u);
    out += buf;
  };
  if (!ensure_ascii || is_ascii(s)) {
    for (char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (c < 0x20) {
            escape_u(c);
          } else {
            out.push_back(ch);
          }
      }
    }
  } else {
    for (char32_t cp : utf8_decode(s)) {
      if (cp < 0x80) {
        const std::string one(1, static_cast<char>(cp));
        std::string tmp;
        append_json_string(tmp, one, false);
        out.append(tmp, 1, tmp.size() - 2);
      } else if (cp < 0x10000) {
        escape_u(cp);
      } else {
        const uint32_t v = cp - 0x10000;
        escape_u(0xD800 + (v >> 10));
        escape_u(0xDC00 + (v & 0x3FF));
      }
    }
  }
  out.push_back('"');
}

std::string json_float(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d < 0 ? "-Infinity" : "Infinity";
  return format_float(d);
}

class JsonWriter {
 public:
  JsonWriter(const JsonOptions& o, size_t max_bytes) : o_(o), max_bytes_(max_bytes) {}

  Status write(const Value& v, uint32_t level) {
    if (level > kMaxJsonDepth) return Status::error("tojson: value nested too deeply");
    if (out.size() > max_bytes_) {
      return Status::error("tojson: output exceeds the sandbox limit of " +
                           std::to_string(max_bytes_) + " bytes");
    }
    switch (v.kind()) {
      case Kind::kNone:
        out += "null";
        return Status();
      case Kind::kBool:
        out += v.as_bool() ? "true" : "false";
        return Status();
      case Kind::kInt:
        out += std::to_string(v.as_int());
        return Status();
      case Kind::kFloat:
        out += json_float(v.as_float());
        return Status();
      case Kind::kString:
        append_json_string(out, v.as_string(), o_.ensure_ascii);
        return Status();
      case Kind::kList: {
        const auto& items = v.items();
        if (items.empty()) {
          out += "[]";
          return Status();
        }
        out.push_back('[');
        for (size_t i = 0; i < items.size(); ++i) {
          if (i > 0) out += o_.item_separator;
          newline(level + 1);
          MINNOW_RETURN_IF_ERROR(write(items[i], level + 1));
        }
        newline(level);
        out.push_back(']');
        return Status();
      }
      case Kind::kDict: {
        const Dict& d = v.as_dict();
        if (d.empty()) {
          out += "{}";
          return Status();
        }
        std::vector<std::pair<std::string, const Value*>> entries;
        entries.reserve(d.size());
        for (const auto& [k, val] : d.entries()) {
          std::string key;
          switch (k.kind()) {
            case Kind::kString:
              key = k.as_string();
              break;
            case Kind::kInt:
              key = std::to_string(k.as_int());
              break;
            case Kind::kBool:
              key = k.as_bool() ? "true" : "false";
              break;
            case Kind::kNone:
              key = "null";
              break;
            case Kind::kFloat:
              key = json_float(k.as_float());
              break;
            default:
              return Status::error("keys must be str, int, float, bool or None, not " +
                                   type_name(k));
          }
          entries.emplace_back(std::move(key), &val);
        }
        if (o_.sort_keys) {
          std::stable_sort(entries.begin(), entries.end(),
                           [](const auto& a, const auto& b) { return a.first < b.first; });
        }
        out.push_back('{');
        for (size_t i = 0; i < entries.size(); ++i) {
          if (i > 0) out += o_.item_separator;
          newline(level + 1);
          append_json_string(out, entries[i].first, o_.ensure_ascii);
          out += o_.key_separator;
          MINNOW_RETURN_IF_ERROR(write(*entries[i].second, level + 1));
        }
        newline(level);
        out.push_back('}');
        return Status();
      }
      default:
        return Status::error("Object of type " + type_name(v) + " is not JSON serializable");
    }
  }

  std::string out;

 private:
  void newline(uint32_t level) {
    if (!o_.has_indent) return;
    out.push_back('\n');
    for (uint32_t i = 0; i < level; ++i) out += o_.indent;
  }

  const JsonOptions& o_;
  size_t max_bytes_;
};

}  // namespace

Result<std::string> to_json(const Value& v, const JsonOptions& options, size_t max_bytes) {
  JsonWriter w(options, max_bytes);
  MINNOW_RETURN_IF_ERROR(w.write(v, 0));
  if (w.out.size() > max_bytes) {
    return Status::error("tojson: output exceeds the sandbox limit of " +
                         std::to_string(max_bytes) + " bytes");
  }
  return std::move(w.out);
}

}  // namespace minnow::text::jinja
