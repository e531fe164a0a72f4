#include "store/names.h"

#include <cctype>

namespace minnow::store {
namespace {

// Bounds as Ollama's registry sets them, so names that work there work here.
constexpr size_t kMaxHost = 350;
constexpr size_t kMaxPart = 80;

// 'text', built by appends: GCC 12 warns (-Wrestrict, a false positive) on "'" + std::string.
std::string quoted(std::string_view text) {
  std::string q;
  q.reserve(text.size() + 2);
  q += '\'';
  q.append(text);
  q += '\'';
  return q;
}

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// A namespace, model or tag: starts with a letter or digit, then letters, digits, '_', '-', '.'.
// No '/', ':' or '..' can appear, so a part never leaves its directory.
Status check_part(std::string_view what, std::string_view part, std::string_view full) {
  auto bad = [&](const std::string& why) {
    return Status::error("invalid model name '" + std::string(full) + "': " + std::string(what) +
                         " " + why);
  };
  if (part.empty()) return bad("is empty");
  if (part.size() > kMaxPart)
    return bad("is longer than " + std::to_string(kMaxPart) + " characters");
  if (!is_alnum(part[0])) return bad(quoted(part) + " must start with a letter or digit");
  for (char c : part) {
    if (!is_alnum(c) && c != '_' && c != '-' && c != '.') {
      return bad(quoted(part) + " has the character " + quoted(std::string_view(&c, 1)) +
                 " (allowed: letters, digits, '_', '-', '.')");
    }
  }
  if (part.find("..") != std::string_view::npos) return bad(quoted(part) + " contains '..'");
  return Status();
}

// A host: letters, digits, '-', '.', '_' (up to kMaxHost), then an optional ":port".
Status check_host(std::string_view host, std::string_view full) {
  auto bad = [&](const std::string& why) {
    return Status::error("invalid model name '" + std::string(full) + "': host " + why);
  };
  std::string_view name = host;
  if (size_t colon = host.find(':'); colon != std::string_view::npos) {
    std::string_view port = host.substr(colon + 1);
    name = host.substr(0, colon);
    bool digits = !port.empty() && port.size() <= 5;
    for (char c : port) digits = digits && std::isdigit(static_cast<unsigned char>(c));
    if (!digits) return bad("port " + quoted(port) + " is not a number");
  }
  if (name.empty()) return bad("is empty");
  if (name.size() > kMaxHost)
    return bad("is longer than " + std::to_string(kMaxHost) + " characters");
  if (!is_alnum(name[0])) return bad(quoted(name) + " must start with a letter or digit");
  for (char c : name) {
    if (!is_alnum(c) && c != '-' && c != '.' && c != '_')
      return bad(quoted(name) + " has the character " + quoted(std::string_view(&c, 1)));
  }
  if (name.find("..") != std::string_view::npos) return bad("contains '..'");
  return Status();
}

}  // namespace

std::string ModelName::display() const {
  std::string out;
  if (host != kDefaultHost)
    out += host + "/" + ns + "/";
  else if (ns != kDefaultNamespace)
    out += ns + "/";
  return out + model + ":" + tag;
}

std::string ModelName::manifest_path() const { return host + "/" + ns + "/" + model + "/" + tag; }

Result<ModelName> parse_model_name(std::string_view text) {
  if (text.empty()) return Status::error("invalid model name: it is empty");
  if (text.size() > kMaxHost + 3 * kMaxPart + 3) {
    return Status::error("invalid model name: longer than " +
                         std::to_string(kMaxHost + 3 * kMaxPart + 3) + " characters");
  }
  if (text.front() == '/') {
    return Status::error("invalid model name '" + std::string(text) +
                         "': an absolute path is not a name");
  }
  ModelName n;
  std::string_view rest = text;
  // The tag is what follows the last ':' after the last '/' (a host may carry ":port").
  const size_t slash = rest.rfind('/');
  const size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    n.tag = std::string(rest.substr(colon + 1));
    rest = rest.substr(0, colon);
    MINNOW_RETURN_IF_ERROR(check_part("tag", n.tag, text));
  }
  std::string_view parts[3];
  int count = 0;
  while (true) {
    const size_t s = rest.find('/');
    if (count == 3) {
      return Status::error("invalid model name '" + std::string(text) +
                           "': at most host/namespace/model");
    }
    parts[count++] = rest.substr(0, s);
    if (s == std::string_view::npos) break;
    rest = rest.substr(s + 1);
  }
  if (count == 3) {
    n.host = std::string(parts[0]);
    n.ns = std::string(parts[1]);
    n.model = std::string(parts[2]);
    MINNOW_RETURN_IF_ERROR(check_host(n.host, text));
  } else if (count == 2) {
    n.ns = std::string(parts[0]);
    n.model = std::string(parts[1]);
  } else {
    n.model = std::string(parts[0]);
  }
  MINNOW_RETURN_IF_ERROR(check_part("namespace", n.ns, text));
  MINNOW_RETURN_IF_ERROR(check_part("model", n.model, text));
  return n;
}

Result<std::string> parse_digest(std::string_view digest) {
  constexpr std::string_view kPrefix = "sha256:";
  auto bad = [&](const char* why) {
    return Status::error("invalid digest '" + std::string(digest.substr(0, 100)) + "': " + why +
                         " (expected sha256:<64 lowercase hex digits>)");
  };
  if (!digest.starts_with(kPrefix)) return bad("does not start with 'sha256:'");
  std::string_view hex = digest.substr(kPrefix.size());
  if (hex.size() != 64) return bad("wrong length");
  for (char c : hex) {
    if (!(std::isdigit(static_cast<unsigned char>(c)) || (c >= 'a' && c <= 'f')))
      return bad("not lowercase hex");
  }
  return std::string(hex);
}

std::string blob_file_name(std::string_view hex) { return "sha256-" + std::string(hex); }

}  // namespace minnow::store
