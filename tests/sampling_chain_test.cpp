#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <new>
#include <random>
#include <vector>

#include "sampling/fast_math.h"
#include "sampling/sampler.h"

// Counts the heap allocations of this thread while `armed`, to check that the hot path
// allocates nothing. The replacement pairs malloc with free; GCC's pairing check cannot see
// that both operators are replaced.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace alloc_count {
thread_local bool armed = false;
thread_local long count = 0;
}  // namespace alloc_count

// Every non-aligned form is replaced, so that no allocation from the runtime's own operator new
// (ASan's, say) is ever released by free() here.
static void* counted_alloc(std::size_t n) noexcept {
  if (alloc_count::armed) ++alloc_count::count;
  return std::malloc(n ? n : 1);
}
void* operator new(std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_alloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace {

using minnow::sampling::Candidate;
using minnow::sampling::Constraint;
using minnow::sampling::kNoToken;
using minnow::sampling::Sampler;
using minnow::sampling::SamplingParams;

constexpr float kInf = std::numeric_limits<float>::infinity();

// Plain params: no truncation, no penalty, temperature 1.
SamplingParams plain(float temperature = 1.0f) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.typical_p = 1.0f;
  p.repeat_penalty = 1.0f;
  p.seed = 7;
  return p;
}

Sampler make(const SamplingParams& p, int32_t n_vocab) {
  auto s = Sampler::create(p, n_vocab);
  EXPECT_TRUE(s.ok()) << s.status().message();
  return std::move(s).value();
}

std::vector<float> random_logits(size_t n, uint32_t seed, float sd = 3.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sd);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

std::vector<float> logs(const std::vector<double>& probs) {
  std::vector<float> v;
  for (double p : probs) v.push_back(float(std::log(p)));
  return v;
}

std::vector<double> softmax(const std::vector<float>& l, double temperature = 1.0) {
  double m = -kInf;
  for (float x : l) m = std::max(m, double(x));
  std::vector<double> p(l.size());
  double z = 0;
  for (size_t i = 0; i < l.size(); ++i) z += p[i] = std::exp((double(l[i]) - m) / temperature);
  for (double& x : p) x /= z;
  return p;
}

double chi_square(const std::vector<int>& observed, const std::vector<double>& probs, int n) {
  double chi = 0;
  for (size_t i = 0; i < probs.size(); ++i) {
    if (probs[i] == 0) {
      if (observed[i] != 0) return kInf;
      continue;
    }
    const double e = probs[i] * n;
    chi += (observed[i] - e) * (observed[i] - e) / e;
  }
  return chi;
}

TEST(SamplingParams, ValidationNamesFieldAndValue) {
  struct Case {
    void (*edit)(SamplingParams&);
    const char* field;
    const char* value;
  };
  const Case cases[] = {
      {[](SamplingParams& p) { p.top_k = -1; }, "top_k", "-1"},
      {[](SamplingParams& p) { p.top_p = 1.5f; }, "top_p", "1.5"},
      {[](SamplingParams& p) { p.top_p = 0.0f; }, "top_p", "0"},
      {[](SamplingParams& p) { p.min_p = -0.1f; }, "min_p", "-0.1"},
      {[](SamplingParams& p) { p.typical_p = 2.0f; }, "typical_p", "2"},
      {[](SamplingParams& p) { p.temperature = NAN; }, "temperature", "nan"},
      {[](SamplingParams& p) { p.repeat_penalty = 0.0f; }, "repeat_penalty", "0"},
      {[](SamplingParams& p) { p.repeat_last_n = -2; }, "repeat_last_n", "-2"},
      {[](SamplingParams& p) { p.presence_penalty = kInf; }, "presence_penalty", "inf"},
      {[](SamplingParams& p) { p.frequency_penalty = NAN; }, "frequency_penalty", "nan"},
      {[](SamplingParams& p) { p.n_logprobs = 21; }, "n_logprobs", "21"},
      {[](SamplingParams& p) {
         p.logit_bias = {{100, 1.0f}};
       },
       "logit_bias[0].token", "100"},
      {[](SamplingParams& p) {
         p.logit_bias = {{1, kInf}};
       },
       "logit_bias[0].bias", "inf"},
      {[](SamplingParams& p) {
         p.logit_bias = {{1, 1.0f}, {1, 2.0f}};
       },
       "logit_bias[1].token", "1"},
  };
  for (const Case& c : cases) {
    SamplingParams p;
    c.edit(p);
    auto s = Sampler::create(p, 100);
    ASSERT_FALSE(s.ok()) << c.field;
    EXPECT_NE(s.error().find(std::string(c.field) + " = " + c.value), std::string::npos)
        << s.error();
  }
  EXPECT_FALSE(Sampler::create(SamplingParams(), 0).ok());
  SamplingParams ok;
  ok.temperature = -1.0f;  // greedy
  ok.logit_bias = {{3, -kInf}, {4, -100.0f}};
  EXPECT_TRUE(Sampler::create(ok, 100).ok());
}

TEST(Sampler, DefaultsAreOllamas) {
  const SamplingParams p;
  EXPECT_FLOAT_EQ(p.temperature, 0.8f);
  EXPECT_EQ(p.top_k, 40);
  EXPECT_FLOAT_EQ(p.top_p, 0.9f);
  EXPECT_FLOAT_EQ(p.min_p, 0.0f);
  EXPECT_FLOAT_EQ(p.typical_p, 1.0f);
  EXPECT_FLOAT_EQ(p.repeat_penalty, 1.1f);
  EXPECT_EQ(p.repeat_last_n, 64);
  EXPECT_FALSE(p.seed.has_value());
}

TEST(SelectTopK, MatchesFullSortWithTiesNanAndInf) {
  std::mt19937 rng(3);
  for (size_t n : {0, 1, 15, 16, 17, 100, 1000, 4097}) {
    std::vector<float> x(n);
    for (float& v : x) v = float(std::uniform_int_distribution<int>(-20, 20)(rng)) * 0.25f;
    for (size_t i = 0; i < n; i += 7) x[i] = -kInf;
    for (size_t i = 3; i < n; i += 11) x[i] = NAN;
    std::vector<Candidate> ref;
    for (size_t i = 0; i < n; ++i)
      if (x[i] > -kInf) ref.push_back({x[i], int32_t(i)});
    std::sort(ref.begin(), ref.end(), [](const Candidate& a, const Candidate& b) {
      return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
    });
    for (int k : {1, 2, 5, 40, int(n), int(n) + 3}) {
      std::vector<Candidate> out(size_t(std::max(k, 1)));
      const int got = minnow::sampling::select_top_k(x, k, out.data());
      ASSERT_EQ(got, std::min(k, int(ref.size()))) << "n " << n << " k " << k;
      for (int i = 0; i < got; ++i) {
        ASSERT_EQ(out[size_t(i)].id, ref[size_t(i)].id) << "n " << n << " k " << k << " i " << i;
        ASSERT_EQ(out[size_t(i)].logit, ref[size_t(i)].logit);
      }
    }
  }
}

TEST(FastMath, ExpAndLogSumExp) {
  double worst = 0;
  for (double x = -87.0; x <= 0.0; x += 0.00137) {
    const double want = std::exp(double(float(x)));
    worst = std::max(worst, std::abs(minnow::sampling::exp_nonpositive(float(x)) - want) / want);
  }
  EXPECT_LT(worst, 3e-7);
  EXPECT_EQ(minnow::sampling::exp_nonpositive(0.0f), 1.0f);
  EXPECT_LT(minnow::sampling::exp_nonpositive(-kInf), 1e-37f);
  EXPECT_TRUE(std::isnan(minnow::sampling::exp_nonpositive(NAN)));

  const auto l = random_logits(262144, 5);
  double m = -kInf, z = 0;
  for (float x : l) m = std::max(m, double(x));
  for (float x : l) z += std::exp(double(x) - m);
  EXPECT_NEAR(minnow::sampling::log_sum_exp(l), m + std::log(z), 2e-5);
  std::vector<float> all_inf(10, -kInf);
  EXPECT_EQ(minnow::sampling::log_sum_exp(all_inf), -kInf);
}

TEST(Sampler, GreedyIsArgmaxTiesToLowestId) {
  auto s = make(plain(0.0f), 5000);
  for (uint32_t seed = 0; seed < 20; ++seed) {
    const auto l = random_logits(5000, seed);
    const auto want = std::max_element(l.begin(), l.end()) - l.begin();
    EXPECT_EQ(s.sample(l), want);
    EXPECT_EQ(s.last().n_candidates, 1);
    EXPECT_EQ(s.last().sample_prob, 1.0f);
  }
  auto small = make(plain(0.0f), 100);
  std::vector<float> tie(100, 0.0f);
  tie[17] = tie[42] = tie[99] = 3.0f;
  EXPECT_EQ(small.sample(tie), 17);
  tie[17] = -kInf;
  EXPECT_EQ(small.sample(tie), 42);
}

TEST(Sampler, TopK1EqualsGreedy) {
  SamplingParams p;  // defaults, including the repeat penalty
  p.top_k = 1;
  p.seed = 99;
  SamplingParams g = p;
  g.temperature = 0.0f;
  auto s = make(p, 2000);
  auto greedy = make(g, 2000);
  for (uint32_t seed = 0; seed < 50; ++seed) {
    const auto l = random_logits(2000, seed, 1.0f);
    const int32_t a = s.sample(l);
    const int32_t b = greedy.sample(l);
    ASSERT_EQ(a, b);
    s.accept(a);
    greedy.accept(b);
  }
}

TEST(Sampler, SeedReproducibleAndDifferentSeedsDiffer) {
  auto draws = [](std::optional<uint64_t> seed, Sampler* keep = nullptr) {
    SamplingParams p;
    p.seed = seed;
    auto s = make(p, 1000);
    std::vector<int32_t> out;
    for (uint32_t i = 0; i < 100; ++i) {
      const int32_t t = s.sample(random_logits(1000, i, 0.5f));
      s.accept(t);
      out.push_back(t);
    }
    if (keep) *keep = std::move(s);
    return out;
  };
  const auto a = draws(42);
  EXPECT_EQ(a, draws(42));
  EXPECT_NE(a, draws(43));
  EXPECT_NE(draws(std::nullopt), draws(std::nullopt));

  // reset() replays the same tokens.
  SamplingParams p;
  p.seed = 42;
  auto s = make(p, 1000);
  std::vector<int32_t> first, second;
  for (int pass = 0; pass < 2; ++pass) {
    for (uint32_t i = 0; i < 30; ++i) {
      const int32_t t = s.sample(random_logits(1000, i, 0.5f));
      s.accept(t);
      (pass ? second : first).push_back(t);
    }
    s.reset();
  }
  EXPECT_EQ(first, second);
  EXPECT_EQ(first, std::vector<int32_t>(a.begin(), a.begin() + 30));
}

TEST(Sampler, TemperatureMatchesSoftmax) {
  const std::vector<float> l = {2.0f, 1.5f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -2.0f};
  const float t = 0.7f;
  auto s = make(plain(t), int32_t(l.size()));
  constexpr int kDraws = 20000;
  std::vector<int> counts(l.size());
  for (int i = 0; i < kDraws; ++i) ++counts[size_t(s.sample(l))];
  // 7 degrees of freedom: chi-square above 24.3 has probability 0.001.
  EXPECT_LT(chi_square(counts, softmax(l, t), kDraws), 24.3);
  // The test can tell temperature 0.7 from 1.
  EXPECT_GT(chi_square(counts, softmax(l, 1.0), kDraws), 200.0);
  // sample_prob is the drawn token's probability in that distribution.
  const int32_t tok = s.sample(l);
  EXPECT_NEAR(s.last().sample_prob, softmax(l, t)[size_t(tok)], 1e-6);
}

// Returns the set of tokens drawn over many samples and checks sample_prob against `want`.
std::vector<int32_t> support(Sampler& s, const std::vector<float>& l,
                             const std::vector<double>& want) {
  std::vector<int32_t> seen;
  for (int i = 0; i < 2000; ++i) {
    const int32_t t = s.sample(l);
    EXPECT_NEAR(s.last().sample_prob, want[size_t(t)], 1e-5) << "token " << t;
    if (std::find(seen.begin(), seen.end(), t) == seen.end()) seen.push_back(t);
  }
  std::sort(seen.begin(), seen.end());
  return seen;
}

TEST(Sampler, TopPCutByHand) {
  // p = 0.5, 0.25, 0.15, 0.1 (in scrambled positions): top_p 0.7 keeps 0.5 + 0.25.
  const auto l = logs({0.15, 0.5, 0.1, 0.25});
  for (int32_t top_k : {0, 3}) {  // the unsorted whole-vocabulary path and the top_k path
    SamplingParams p = plain();
    p.top_p = 0.7f;
    p.top_k = top_k;
    auto s = make(p, 4);
    EXPECT_EQ(support(s, l, {0, 2.0 / 3, 0, 1.0 / 3}), (std::vector<int32_t>{1, 3}));
    EXPECT_EQ(s.last().n_candidates, 2);
  }
}

TEST(Sampler, MinPCutByHand) {
  // min_p 0.25 of p_max 0.5: keeps p >= 0.125, i.e. 0.5, 0.25, 0.15.
  const auto l = logs({0.15, 0.5, 0.1, 0.25});
  SamplingParams p = plain();
  p.min_p = 0.25f;
  auto s = make(p, 4);
  EXPECT_EQ(support(s, l, {0.15 / 0.9, 0.5 / 0.9, 0, 0.25 / 0.9}), (std::vector<int32_t>{0, 1, 3}));
  EXPECT_EQ(s.last().n_candidates, 3);
}

TEST(Sampler, TypicalPCutByHand) {
  // p = 0.4, 0.3, 0.2, 0.1: entropy H = 1.2799 nats; |-log p - H| = 0.364, 0.076, 0.330,
  // 1.023. In that order the mass reaches 0.45 with {0.3, 0.2}: the most likely token is cut.
  const auto l = logs({0.4, 0.3, 0.2, 0.1});
  SamplingParams p = plain();
  p.typical_p = 0.45f;
  auto s = make(p, 4);
  EXPECT_EQ(support(s, l, {0, 0.6, 0.4, 0}), (std::vector<int32_t>{1, 2}));
  p.typical_p = 0.55f;  // then 0.4 joins
  auto s2 = make(p, 4);
  EXPECT_EQ(support(s2, l, {0.4 / 0.9, 0.3 / 0.9, 0.2 / 0.9, 0}), (std::vector<int32_t>{0, 1, 2}));
}

TEST(Sampler, RepeatPenaltyDividesPositiveMultipliesNegative) {
  SamplingParams p = plain();
  p.repeat_penalty = 1.25f;
  auto s = make(p, 3);
  s.accept(0);
  s.accept(1);
  // Penalised: 2 / 1.25 = 1.6 and -1 * 1.25 = -1.25; token 2 untouched.
  const std::vector<float> l = {2.0f, -1.0f, 0.5f};
  EXPECT_EQ(support(s, l, softmax({1.6f, -1.25f, 0.5f})).size(), 3u);
  // Repeats in the window count once for the repeat penalty.
  s.accept(0);
  EXPECT_EQ(support(s, l, softmax({1.6f, -1.25f, 0.5f})).size(), 3u);
}

TEST(Sampler, PresenceAndFrequencyPenalties) {
  SamplingParams p = plain();
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  auto s = make(p, 3);
  for (int i = 0; i < 3; ++i) s.accept(0);
  s.accept(2);
  // 1 - 3 * 0.25 - 0.5 = -0.25;  0 - 1 * 0.25 - 0.5 = -0.75.
  support(s, {1.0f, 0.0f, 0.0f}, softmax({-0.25f, 0.0f, -0.75f}));
}

TEST(Sampler, PenaltyWindowEvicts) {
  SamplingParams p = plain(0.0f);
  p.repeat_penalty = 2.0f;
  p.repeat_last_n = 2;
  auto s = make(p, 4);
  const std::vector<float> l = {1.0f, 0.9f, 0.8f, 0.0f};
  EXPECT_EQ(s.sample(l), 0);
  s.accept(0);
  EXPECT_EQ(s.sample(l), 1);  // 0 -> 0.5
  s.accept(1);
  EXPECT_EQ(s.sample(l), 2);  // 0 and 1 halved
  s.accept(3);                // window {1, 3}: 0 is out
  EXPECT_EQ(s.sample(l), 0);
  s.accept(3);  // window {3, 3}
  EXPECT_EQ(s.sample(l), 0);
  s.reset();
  s.accept_prompt(std::vector<int32_t>{2, 0, 1, 3});  // the prompt's tail {1, 3} only
  EXPECT_EQ(s.sample(l), 0);

  p.repeat_last_n = 0;  // off
  auto off = make(p, 4);
  off.accept(0);
  EXPECT_EQ(off.sample(l), 0);
  p.repeat_last_n = -1;  // the whole history
  auto all = make(p, 4);
  for (int32_t t : {0, 1, 3, 3, 3, 3, 3, 3, 3}) all.accept(t);
  EXPECT_EQ(all.sample(l), 2);
}

TEST(Sampler, LogitBiasBansAndBoosts) {
  auto l = random_logits(1000, 11);
  const auto top = std::max_element(l.begin(), l.end()) - l.begin();
  SamplingParams p = plain(0.0f);
  p.logit_bias = {{int32_t(top), -kInf}, {5, 100.0f}};
  auto s = make(p, 1000);
  EXPECT_EQ(s.sample(l), 5);
  p.logit_bias = {{int32_t(top), -kInf}};
  auto ban = make(p, 1000);
  std::vector<float> rest = l;
  rest[size_t(top)] = -kInf;
  EXPECT_EQ(ban.sample(l), std::max_element(rest.begin(), rest.end()) - rest.begin());
  // A sampled chain never draws a banned token.
  SamplingParams q = plain(2.0f);
  for (int32_t i = 0; i < 1000; i += 2) q.logit_bias.push_back({i, -kInf});  // 500: the copy path
  auto odd = make(q, 1000);
  for (int i = 0; i < 500; ++i) ASSERT_EQ(odd.sample(l) % 2, 1);
  // Everything banned: a clear error, not a crash.
  SamplingParams all = plain(0.0f);
  for (int32_t i = 0; i < 10; ++i) all.logit_bias.push_back({i, -kInf});
  auto none = make(all, 10);
  EXPECT_EQ(none.sample(std::vector<float>(10, 1.0f)), kNoToken);
  EXPECT_NE(none.status().message().find("no token left"), std::string::npos);
}

TEST(Sampler, LogprobsAreRawLogSoftmax) {
  const auto l = random_logits(49152, 21);
  SamplingParams p;  // defaults: penalties, top_k, temperature; none of them may change logprobs
  p.n_logprobs = 20;
  p.seed = 1;
  p.logit_bias = {{7, 5.0f}};
  auto s = make(p, 49152);
  s.accept(123);
  double m = -kInf, z = 0;
  for (float x : l) m = std::max(m, double(x));
  for (float x : l) z += std::exp(double(x) - m);
  const double lse = m + std::log(z);
  std::vector<int32_t> order(l.size());
  for (size_t i = 0; i < l.size(); ++i) order[i] = int32_t(i);
  std::partial_sort(order.begin(), order.begin() + 20, order.end(),
                    [&](int32_t a, int32_t b) { return l[size_t(a)] > l[size_t(b)]; });
  for (int rep = 0; rep < 5; ++rep) {
    const int32_t t = s.sample(l);
    const auto& r = s.last();
    ASSERT_EQ(r.token, t);
    EXPECT_NEAR(r.logprob, double(l[size_t(t)]) - lse, 2e-5);
    EXPECT_NEAR(r.prob, std::exp(double(l[size_t(t)]) - lse), 1e-6);
    ASSERT_EQ(r.top().size(), 20u);
    for (size_t i = 0; i < 20; ++i) {
      EXPECT_EQ(r.top()[i].id, order[i]);
      EXPECT_NEAR(r.top()[i].logprob, double(l[size_t(order[i])]) - lse, 2e-5);
    }
  }
  auto quiet = make(plain(), 49152);
  quiet.sample(l);
  EXPECT_TRUE(quiet.last().top().empty());
}

// Bans odd ids without recording anything (EvenOnly records accepted tokens in a vector).
class OddBanned : public Constraint {
 public:
  void mask(std::span<float> logits) override {
    for (size_t i = 1; i < logits.size(); i += 2) logits[i] = -kInf;
  }
  bool allows(int32_t token) override { return token % 2 == 0; }
  void accept(int32_t) override {}
};

TEST(Sampler, HotPathDoesNotAllocate) {
  struct Config {
    int32_t top_k;
    float top_p, typical_p;
    int n_bias;
  };
  for (const Config c : {Config{40, 0.9f, 1.0f, 2}, Config{0, 0.9f, 1.0f, 2},
                         Config{0, 1.0f, 0.9f, 0}, Config{40, 0.9f, 0.5f, 400}}) {
    SamplingParams p;
    p.seed = 3;
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.typical_p = c.typical_p;
    p.n_logprobs = 5;
    p.presence_penalty = 0.1f;
    p.repeat_last_n = -1;
    for (int32_t i = 0; i < c.n_bias; ++i) p.logit_bias.push_back({i * 7, -1.0f});
    auto s = make(p, 5000);
    OddBanned constraint;
    s.set_constraint(&constraint);
    std::vector<std::vector<float>> rows;
    for (uint32_t i = 0; i < 8; ++i) rows.push_back(random_logits(5000, i, 1.0f));
    std::vector<int32_t> prompt(300);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = int32_t(i * 13 % 5000);
    alloc_count::count = 0;
    alloc_count::armed = true;
    s.accept_prompt(prompt);
    for (int step = 0; step < 40; ++step) {
      const int32_t t = s.sample(rows[size_t(step) % rows.size()]);
      if (t == kNoToken) break;
      s.accept(t);
    }
    alloc_count::armed = false;
    EXPECT_EQ(alloc_count::count, 0) << "top_k " << c.top_k << " typical " << c.typical_p;
    EXPECT_TRUE(s.status().ok()) << s.status().message();
  }
}

TEST(Sampler, BadInputIsAnErrorNotACrash) {
  auto s = make(plain(), 10);
  EXPECT_EQ(s.sample(std::vector<float>(9, 0.0f)), kNoToken);
  EXPECT_NE(s.status().message().find("9 logits"), std::string::npos);
  EXPECT_EQ(s.sample(std::vector<float>(10, -kInf)), kNoToken);
  EXPECT_EQ(s.sample(std::vector<float>(10, NAN)), kNoToken);
  std::vector<float> one_nan(10, NAN);
  one_nan[4] = 0.0f;
  EXPECT_EQ(s.sample(one_nan), 4);
  EXPECT_TRUE(s.status().ok());
  s.accept(-5);  // out of range: ignored, no crash
  s.accept(10);
}

class EvenOnly : public Constraint {
 public:
  void mask(std::span<float> logits) override {
    ++mask_calls;
    for (size_t i = 0; i < logits.size(); ++i)
      if (none || i % 2 == 1) logits[i] = -kInf;
  }
  bool allows(int32_t token) override { return !none && token % 2 == 0; }
  void accept(int32_t token) override { accepted.push_back(token); }
  int mask_calls = 0;
  bool none = false;
  std::vector<int32_t> accepted;
};

TEST(Sampler, ConstraintCheapPathThenMaskedResample) {
  EvenOnly even;
  auto s = make(plain(0.0f), 6);
  s.set_constraint(&even);
  EXPECT_EQ(s.sample(std::vector<float>{0, 1, 5, 2, 0, 0}), 2);  // argmax allowed: no mask
  EXPECT_EQ(even.mask_calls, 0);
  EXPECT_FALSE(s.last().resampled);
  EXPECT_EQ(s.sample(std::vector<float>{0, 1, 2, 5, 3, 0}), 4);  // argmax 3 rejected
  EXPECT_EQ(even.mask_calls, 1);
  EXPECT_TRUE(s.last().resampled);
  s.accept(4);
  EXPECT_EQ(even.accepted, std::vector<int32_t>{4});
  s.accept_prompt(std::vector<int32_t>{1, 2});  // the prompt does not reach the constraint
  EXPECT_EQ(even.accepted, std::vector<int32_t>{4});

  even.none = true;
  EXPECT_EQ(s.sample(std::vector<float>{0, 1, 2, 5, 3, 0}), kNoToken);
  EXPECT_NE(s.status().message().find("constraint allows no token"), std::string::npos);
  s.set_constraint(nullptr);
  EXPECT_EQ(s.sample(std::vector<float>{0, 1, 2, 5, 3, 0}), 3);
}

TEST(Sampler, ConstraintMassIsTheRawMassOfTheAllowedTokens) {
  // constraint_mass: every step is masked and the raw probability of the allowed tokens is
  // reported; the tokens drawn are the ones the cheap path draws.
  const std::vector<float> l = {0.5f, 1.0f, 0.0f, 2.0f, 1.0f, -1.0f};
  const std::vector<double> p = softmax(l);
  EvenOnly even;
  auto params = plain(0.0f);
  params.constraint_mass = true;
  auto s = make(params, 6);
  s.set_constraint(&even);
  EXPECT_EQ(s.sample(l), 4);  // argmax 3 is odd: the best even one
  EXPECT_NEAR(s.last().allowed_mass, p[0] + p[2] + p[4], 1e-6);
  EXPECT_NEAR(s.last().prob / s.last().allowed_mass, p[4] / (p[0] + p[2] + p[4]), 1e-6);
  EXPECT_EQ(even.mask_calls, 1);
  EXPECT_EQ(s.sample(std::vector<float>{0, 1, 5, 2, 0, 0}), 2);  // allowed at once: masked anyway
  EXPECT_EQ(even.mask_calls, 2);
  EXPECT_LT(s.last().allowed_mass, 1.0f);
  auto off = make(plain(0.0f), 6);  // without it: not computed
  off.set_constraint(&even);
  EXPECT_EQ(off.sample(std::vector<float>{0, 1, 5, 2, 0, 0}), 2);
  EXPECT_EQ(off.last().allowed_mass, 1.0f);
}

TEST(Sampler, ConstrainedDrawHasTheMaskedDistribution) {
  // Without truncation the cheap path (draw, check, mask and redraw if rejected) draws from
  // exactly the masked softmax.
  const std::vector<float> l = {0.5f, 1.0f, 0.0f, 2.0f, 1.0f, -1.0f};
  EvenOnly even;
  auto s = make(plain(), 6);
  s.set_constraint(&even);
  constexpr int kDraws = 20000;
  std::vector<int> counts(6);
  for (int i = 0; i < kDraws; ++i) ++counts[size_t(s.sample(l))];
  EXPECT_EQ(counts[1] + counts[3] + counts[5], 0);
  auto masked = l;
  for (size_t i = 1; i < 6; i += 2) masked[i] = -kInf;
  EXPECT_LT(chi_square(counts, softmax(masked), kDraws), 13.8);  // 2 dof, p = 0.001
  EXPECT_GT(even.mask_calls, 0);
  EXPECT_LT(even.mask_calls, kDraws);
}

// A straightforward chain: copy, bias, penalties, full sort, then the stages on the sorted
// list. Returns the kept tokens and their final probabilities (by token id).
struct RefOut {
  std::vector<int32_t> kept;
  std::map<int32_t, double> prob;
};
RefOut reference_chain(const SamplingParams& p, std::vector<float> l,
                       const std::vector<int32_t>& window) {
  for (const auto& [id, b] : p.logit_bias) l[size_t(id)] += b;
  std::map<int32_t, int> counts;
  for (int32_t t : window) ++counts[t];
  if (p.repeat_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) {
    for (const auto& [id, c] : counts) {
      float& v = l[size_t(id)];
      v = v <= 0.0f ? v * p.repeat_penalty : v / p.repeat_penalty;
      v -= float(c) * p.frequency_penalty + p.presence_penalty;
    }
  }
  std::vector<Candidate> c;
  for (size_t i = 0; i < l.size(); ++i)
    if (l[i] > -kInf) c.push_back({l[i], int32_t(i)});
  auto better = [](const Candidate& a, const Candidate& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  };
  std::sort(c.begin(), c.end(), better);
  RefOut out;
  if (p.temperature <= 0) {
    out.kept = {c[0].id};
    out.prob[c[0].id] = 1.0;
    return out;
  }
  if (p.top_k > 0 && size_t(p.top_k) < c.size()) c.resize(size_t(p.top_k));
  auto probs = [](const std::vector<Candidate>& v) {
    std::vector<double> pr;
    double z = 0;
    for (const auto& x : v) z += std::exp(double(x.logit - v[0].logit));
    for (const auto& x : v) pr.push_back(std::exp(double(x.logit - v[0].logit)) / z);
    return pr;
  };
  if (p.typical_p < 1.0f && c.size() > 1) {
    const auto pr = probs(c);
    double h = 0;
    for (double x : pr) h -= x * std::log(x);
    std::vector<std::pair<float, size_t>> sc;
    for (size_t i = 0; i < c.size(); ++i) sc.push_back({float(std::abs(-std::log(pr[i]) - h)), i});
    std::stable_sort(sc.begin(), sc.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<Candidate> kept;
    double cum = 0;
    for (const auto& [s, i] : sc) {
      kept.push_back(c[i]);
      cum += pr[i];
      if (cum >= p.typical_p) break;
    }
    std::sort(kept.begin(), kept.end(), better);
    c = kept;
  }
  if (p.top_p < 1.0f && c.size() > 1) {
    const auto pr = probs(c);
    double cum = 0;
    size_t keep = c.size();
    for (size_t i = 0; i < c.size(); ++i) {
      cum += pr[i];
      if (cum >= p.top_p) {
        keep = i + 1;
        break;
      }
    }
    c.resize(keep);
  }
  if (p.min_p > 0.0f && c.size() > 1) {
    const float thr = c[0].logit + std::log(p.min_p);
    std::vector<Candidate> kept;
    for (const auto& x : c)
      if (x.logit >= thr) kept.push_back(x);
    c = kept;
  }
  std::vector<float> scaled;
  for (const auto& x : c) scaled.push_back(x.logit);
  const auto pr = softmax(scaled, p.temperature);
  for (size_t i = 0; i < c.size(); ++i) {
    out.kept.push_back(c[i].id);
    out.prob[c[i].id] = pr[i];
  }
  return out;
}

TEST(Sampler, RandomParamsMatchReferenceChain) {
  std::mt19937 rng(77);
  auto pick = [&](auto... v) {
    const std::vector<std::common_type_t<decltype(v)...>> opts{v...};
    return opts[std::uniform_int_distribution<size_t>(0, opts.size() - 1)(rng)];
  };
  int resamples_seen = 0, copies_seen = 0;
  for (int iter = 0; iter < 300; ++iter) {
    const int32_t n_vocab = pick(50, 1000, 3000);
    SamplingParams p;
    p.seed = uint64_t(iter);
    p.temperature = pick(0.0f, 0.5f, 1.0f, 1.5f);
    p.top_k = pick(0, 1, 5, 40, n_vocab + 10);
    p.top_p = pick(1.0f, 0.9f, 0.5f, 0.99f);
    p.min_p = pick(0.0f, 0.05f, 0.2f);
    p.typical_p = pick(1.0f, 0.9f, 0.5f);
    p.repeat_penalty = pick(1.0f, 1.1f, 1.5f);
    p.repeat_last_n = pick(0, -1, 3, 64);
    p.presence_penalty = pick(0.0f, 0.5f);
    p.frequency_penalty = pick(0.0f, 0.3f);
    std::vector<float> l(static_cast<size_t>(n_vocab));
    std::normal_distribution<float> d(0.0f, pick(0.5f, 2.0f, 5.0f));
    for (float& x : l) x = d(rng);
    for (size_t i = 0; i < l.size(); i += 13) l[i] = std::round(l[i]);  // ties
    for (size_t i = 5; i < l.size(); i += 97) l[i] = -kInf;
    std::vector<int32_t> by_logit(static_cast<size_t>(n_vocab));
    for (int32_t i = 0; i < n_vocab; ++i) by_logit[size_t(i)] = i;
    std::sort(by_logit.begin(), by_logit.end(),
              [&](int32_t a, int32_t b) { return l[size_t(a)] > l[size_t(b)]; });
    const int n_bias = pick(0, 3, 300);
    if (n_bias == 300) ++copies_seen;
    std::vector<int32_t> ids(static_cast<size_t>(n_vocab));
    for (int32_t i = 0; i < n_vocab; ++i) ids[size_t(i)] = i;
    std::shuffle(ids.begin(), ids.end(), rng);
    // The 3 best raw tokens first (so that bias changes the top), then random others.
    std::vector<int32_t> biased(by_logit.begin(), by_logit.begin() + 3);
    for (int32_t id : ids)
      if (std::find(biased.begin(), biased.begin() + 3, id) == biased.begin() + 3)
        biased.push_back(id);
    for (int i = 0; i < std::min(n_bias, n_vocab / 2); ++i)
      p.logit_bias.push_back({biased[size_t(i)], pick(-kInf, -2.0f, 1.5f)});
    auto s = make(p, n_vocab);
    EvenOnly even;
    const bool constrained = pick(false, false, true);
    if (constrained) s.set_constraint(&even);

    std::vector<int32_t> history;
    for (int step = 0; step < 4; ++step) {
      std::vector<int32_t> window;
      const size_t w =
          p.repeat_last_n < 0 ? history.size() : std::min(history.size(), size_t(p.repeat_last_n));
      window.assign(history.end() - long(w), history.end());
      auto base = l;
      if (constrained)
        for (size_t i = 1; i < base.size(); i += 2) base[i] = -kInf;
      const RefOut ref = reference_chain(p, base, window);
      const int32_t t = s.sample(l);
      ASSERT_NE(t, kNoToken) << s.status().message();
      if (s.last().resampled) ++resamples_seen;
      // With a constraint the reference is the masked chain; the sampler agrees with it when
      // it had to resample, and otherwise its token is at least allowed.
      if (!constrained || s.last().resampled) {
        ASSERT_EQ(s.last().n_candidates, int(ref.kept.size()))
            << "iter " << iter << " step " << step;
        ASSERT_TRUE(ref.prob.count(t)) << "iter " << iter << " token " << t;
        ASSERT_NEAR(s.last().sample_prob, ref.prob.at(t), 1e-4) << "iter " << iter;
      } else {
        ASSERT_EQ(t % 2, 0);
      }
      // Feed tokens the penalties will see: mostly the current best ones.
      for (int a = 0; a < 3; ++a) {
        const int32_t tok = by_logit[std::uniform_int_distribution<size_t>(0, 10)(rng)];
        s.accept(tok);
        history.push_back(tok);
      }
      s.accept(t);
      history.push_back(t);
    }
  }
  EXPECT_GT(resamples_seen, 10);
  EXPECT_GT(copies_seen, 10);
}

}  // namespace

namespace {

// top_k off on a flat row: the best 256 hold too little mass, so the histogram path cuts.
TEST(Sampler, TopPWithoutTopKOnAFlatRow) {
  const auto l = random_logits(30000, 8, 1.5f);
  for (float top_p : {0.3f, 0.9f, 0.99f}) {
    SamplingParams p = plain();
    p.top_p = top_p;
    auto s = make(p, 30000);
    const RefOut ref = reference_chain(p, l, {});
    ASSERT_GT(ref.kept.size(), 256u);
    for (int i = 0; i < 20; ++i) {
      const int32_t t = s.sample(l);
      ASSERT_EQ(s.last().n_candidates, int(ref.kept.size())) << "top_p " << top_p;
      ASSERT_TRUE(ref.prob.count(t));
      EXPECT_NEAR(s.last().sample_prob, ref.prob.at(t), 1e-6);
    }
  }
}

}  // namespace
