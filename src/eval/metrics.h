// Scoring one answer against what was expected, and the statistics of a run. Plain functions
// of text, so the tests can pin each rule down.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace minnow::eval {

enum class Metric { kExact, kNormalizedExact, kContains, kF1, kJsonFields, kJsonValid };

// "exact", "normalized_exact" (also "normalised exact", "normalized-exact"), "contains", "f1",
// "json_fields" / "json-fields", "json_valid" / "json-valid"; false when unknown.
bool parse_metric(std::string_view name, Metric& out);
const char* metric_name(Metric m);

// Lower case, punctuation dropped, runs of white space as one space, trimmed.
std::string normalize(std::string_view text);

// A score in [0, 1] (1: right) of `answer` against `expected`:
//   exact: byte equality after trimming white space; normalized exact: normalize() equal;
//   contains: normalize(expected) inside normalize(answer); f1: token-level F1 of the
//   normalized words (SQuAD's); json_fields: the answer parses as a JSON object and the share
//   of expected's fields it has with an equal value (strings compared normalized); json_valid:
//   the answer parses as JSON (expected ignored). `expected` is a JSON text for json_fields.
double score(Metric m, std::string_view answer, std::string_view expected);

// Wilson score interval of `successes` out of `n` at 95%: {low, high}.
struct Interval {
  double low = 0, high = 0;
};
Interval wilson95(double successes, double n);

// The p-quantile (0..1) by linear interpolation; NaN for no values.
double percentile(std::vector<double> values, double p);

}  // namespace minnow::eval
