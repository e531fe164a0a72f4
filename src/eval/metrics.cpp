#include "eval/metrics.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace minnow::eval {

bool parse_metric(std::string_view name, Metric& out) {
  std::string n(name);
  for (char& c : n) {
    c = char(std::tolower(static_cast<unsigned char>(c)));
    if (c == '-' || c == ' ') c = '_';
  }
  if (n == "normalised_exact") n = "normalized_exact";
  static const std::map<std::string, Metric> kNames = {
      {"exact", Metric::kExact},           {"normalized_exact", Metric::kNormalizedExact},
      {"contains", Metric::kContains},     {"f1", Metric::kF1},
      {"json_fields", Metric::kJsonFields}, {"json_valid", Metric::kJsonValid}};
  auto it = kNames.find(n);
  if (it == kNames.end()) return false;
  out = it->second;
  return true;
}

const char* metric_name(Metric m) {
  switch (m) {
    case Metric::kExact: return "exact";
    case Metric::kNormalizedExact: return "normalized_exact";
    case Metric::kContains: return "contains";
    case Metric::kF1: return "f1";
    case Metric::kJsonFields: return "json_fields";
    case Metric::kJsonValid: return "json_valid";
  }
  return "?";
}

std::string normalize(std::string_view text) {
  std::string out;
  bool space = false;
  for (unsigned char c : text) {
    if (std::isspace(c)) {
      space = true;
      continue;
    }
    if (std::ispunct(c) && c != '_' && c != '@') continue;  // keep emails and snake_case labels
    if (space && !out.empty()) out += ' ';
    space = false;
    out += char(std::tolower(c));
  }
  return out;
}

namespace {

std::string trim(std::string_view s) {
  const auto a = s.find_first_not_of(" \t\r\n");
  if (a == std::string_view::npos) return {};
  const auto b = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(a, b - a + 1));
}

std::vector<std::string> words(std::string_view s) {
  std::vector<std::string> out;
  std::istringstream in(normalize(s));
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

bool same_value(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.is_string() && b.is_string())
    return normalize(a.get<std::string>()) == normalize(b.get<std::string>());
  if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
  return a == b;
}

}  // namespace

double score(Metric m, std::string_view answer, std::string_view expected) {
  switch (m) {
    case Metric::kExact:
      return trim(answer) == trim(expected) ? 1 : 0;
    case Metric::kNormalizedExact:
      return normalize(answer) == normalize(expected) ? 1 : 0;
    case Metric::kContains: {
      const std::string e = normalize(expected);
      return normalize(answer).find(e) != std::string::npos ? 1 : 0;
    }
    case Metric::kF1: {
      const auto a = words(answer), e = words(expected);
      if (a.empty() || e.empty()) return a.empty() && e.empty() ? 1 : 0;
      std::map<std::string, int> count;
      for (const auto& w : e) ++count[w];
      int common = 0;
      for (const auto& w : a) {
        if (count[w] > 0) {
          --count[w];
          ++common;
        }
      }
      if (common == 0) return 0;
      const double p = double(common) / a.size(), r = double(common) / e.size();
      return 2 * p * r / (p + r);
    }
    case Metric::kJsonFields: {
      const auto got = nlohmann::json::parse(answer, nullptr, false);
      const auto want = nlohmann::json::parse(expected, nullptr, false);
      if (got.is_discarded() || !got.is_object() || !want.is_object() || want.empty()) return 0;
      int same = 0;
      for (const auto& [k, v] : want.items()) {
        auto it = got.find(k);
        if (it != got.end() && same_value(*it, v)) ++same;
      }
      return double(same) / double(want.size());
    }
    case Metric::kJsonValid:
      return nlohmann::json::parse(answer, nullptr, false).is_discarded() ? 0 : 1;
  }
  return 0;
}

Interval wilson95(double k, double n) {
  if (n <= 0) return {0, 1};
  const double z = 1.959963984540054, p = k / n, z2 = z * z;
  const double centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const double half = z * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n);
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const double k = (v.size() - 1) * std::clamp(p, 0.0, 1.0);
  const size_t lo = size_t(k), hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (k - double(lo));
}

}  // namespace minnow::eval
