// The sampler chain (see sampler.h for the order and why).
#include "sampling/sampler.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <random>
#include <string>

#include "sampling/fast_math.h"

namespace minnow::sampling {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// More overrides than this and the chain copies the vocabulary once instead of widening the
// selection by |overrides| (a k + 256 heap still costs little; a k + 50,000 one does not).
constexpr size_t kMaxSparseOverrides = 256;

// With top_k off, top_p first looks at this many of the best tokens (one selection pass).
constexpr int kTopPFirstPrefix = 256;
// Failing that, a histogram of the mass: buckets of 1/kBucketsPerNat nat below the max logit,
// kBuckets of them, the rest (below e^-32 each) in one more.
constexpr float kBucketsPerNat = 32.0f;
constexpr size_t kBuckets = 1024;

// a ranks before b: higher logit first, ties to the lower id (so greedy picks the lowest id).
inline bool better(const Candidate& a, const Candidate& b) {
  return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

std::string fmt(float v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", double(v));
  return buf;
}

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

int32_t effective_top_k(const SamplingParams& p, int32_t n_vocab) {
  if (p.temperature <= 0.0f) return 1;
  if (p.top_k <= 0 || p.top_k >= n_vocab) return n_vocab;
  return p.top_k;
}

}  // namespace

Status validate(const SamplingParams& p, int32_t n_vocab) {
  auto bad = [](const std::string& field, const std::string& value, const std::string& rule) {
    return Status::error("sampling: " + field + " = " + value + " " + rule);
  };
  if (n_vocab <= 0) return bad("n_vocab", std::to_string(n_vocab), "must be > 0");
  if (std::isnan(p.temperature) || std::isinf(p.temperature))
    return bad("temperature", fmt(p.temperature), "must be a finite number (<= 0: greedy)");
  if (p.top_k < 0) return bad("top_k", std::to_string(p.top_k), "must be >= 0 (0: off)");
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f))
    return bad("top_p", fmt(p.top_p), "is outside (0, 1] (1: off)");
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f))
    return bad("min_p", fmt(p.min_p), "is outside [0, 1] (0: off)");
  if (!(p.typical_p > 0.0f && p.typical_p <= 1.0f))
    return bad("typical_p", fmt(p.typical_p), "is outside (0, 1] (1: off)");
  if (!(p.repeat_penalty > 0.0f) || std::isinf(p.repeat_penalty))
    return bad("repeat_penalty", fmt(p.repeat_penalty), "must be a finite number > 0 (1: off)");
  if (p.repeat_last_n < -1)
    return bad("repeat_last_n", std::to_string(p.repeat_last_n),
               "must be >= -1 (0: off, -1: the whole history)");
  if (!std::isfinite(p.presence_penalty))
    return bad("presence_penalty", fmt(p.presence_penalty), "must be finite");
  if (!std::isfinite(p.frequency_penalty))
    return bad("frequency_penalty", fmt(p.frequency_penalty), "must be finite");
  if (p.n_logprobs < 0 || p.n_logprobs > kMaxLogprobs)
    return bad("n_logprobs", std::to_string(p.n_logprobs),
               "is outside [0, " + std::to_string(kMaxLogprobs) + "]");
  for (size_t i = 0; i < p.logit_bias.size(); ++i) {
    const auto [id, bias] = p.logit_bias[i];
    const std::string field = "logit_bias[" + std::to_string(i) + "]";
    if (id < 0 || id >= n_vocab)
      return bad(field + ".token", std::to_string(id),
                 "is outside the vocabulary [0, " + std::to_string(n_vocab) + ")");
    // -inf bans; +inf or NaN would turn the softmax into NaN.
    if (std::isnan(bias) || bias == std::numeric_limits<float>::infinity())
      return bad(field + ".bias", fmt(bias), "must be a number or -inf");
    for (size_t j = 0; j < i; ++j)
      if (p.logit_bias[j].first == id)
        return bad(field + ".token", std::to_string(id),
                   "appears twice (first at logit_bias[" + std::to_string(j) + "])");
  }
  return Status();
}

// Everything the chain writes, sized once in create(). The vocabulary-sized arrays come from
// make_unique_for_overwrite: the pages of a path that never runs (no constraint, top_k on) are
// never touched, so they cost address space, not memory.
struct Sampler::Buffers {
  // Penalty history (only when penalties are on). counts[t] is the number of times t is in the
  // window; kInList marks that t is in `distinct` (removal from it is lazy, at sample time).
  static constexpr uint32_t kInList = 0x80000000u;
  std::vector<uint32_t> counts;         // (n_vocab)
  std::unique_ptr<int32_t[]> distinct;  // (n_vocab) tokens with counts > 0 (and some with 0)
  size_t n_distinct = 0;
  std::vector<int32_t> ring;  // (repeat_last_n) the window, oldest at ring_head once full
  size_t ring_head = 0;
  size_t ring_size = 0;

  std::vector<std::pair<int32_t, float>> bias;  // logit_bias sorted by token
  std::vector<Candidate> overrides;     // (id, biased and penalised logit), at most |bias|+n_vocab
  std::vector<uint64_t> override_mark;  // (n_vocab / 64) bitmap of the override ids

  std::unique_ptr<float[]> work;      // (n_vocab) raw logits with overrides / the constraint's mask
  std::unique_ptr<Candidate[]> cand;  // (cand_capacity) the candidates of the truncation stages
  std::unique_ptr<float[]> weight;    // (cand_capacity) exp of the candidates for the draw
  struct Scored {
    float score;
    Candidate c;
  };
  std::unique_ptr<Scored[]> scored;  // (cand_capacity) typical_p's ordering
  size_t cand_capacity = 0;
  std::unique_ptr<double[]> bucket_mass;  // (kBuckets + 1) top_p's histogram, top_k off only
  std::array<Candidate, kMaxLogprobs> raw_top{};
};

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab, uint64_t seed)
    : params_(params), n_vocab_(n_vocab), seed_(seed), buf_(std::make_unique<Buffers>()) {
  Buffers& b = *buf_;
  const size_t n = size_t(n_vocab);
  if (penalties_on()) {
    b.counts.assign(n, 0);
    b.distinct = std::make_unique_for_overwrite<int32_t[]>(n);
    if (params_.repeat_last_n > 0) b.ring.resize(size_t(params_.repeat_last_n));
  }
  b.bias = params_.logit_bias;
  std::sort(b.bias.begin(), b.bias.end());
  b.overrides.reserve(b.bias.size() + (penalties_on() ? n : 0));
  b.override_mark.assign((n + 63) / 64, 0);
  b.work = std::make_unique_for_overwrite<float[]>(n);
  const int32_t k = effective_top_k(params_, n_vocab);
  b.cand_capacity = k >= n_vocab ? n : std::min(n, size_t(k) + kMaxSparseOverrides);
  b.cand = std::make_unique_for_overwrite<Candidate[]>(b.cand_capacity);
  b.weight = std::make_unique_for_overwrite<float[]>(b.cand_capacity);
  if (k >= n_vocab) b.bucket_mass = std::make_unique<double[]>(kBuckets + 1);
  if (params_.typical_p < 1.0f)
    b.scored = std::make_unique_for_overwrite<Buffers::Scored[]>(b.cand_capacity);
  reset();
}

Sampler::Sampler(Sampler&&) noexcept = default;
Sampler& Sampler::operator=(Sampler&&) noexcept = default;
Sampler::~Sampler() = default;

Result<Sampler> Sampler::create(const SamplingParams& params, int32_t n_vocab) {
  MINNOW_RETURN_IF_ERROR(validate(params, n_vocab));
  uint64_t seed;
  if (params.seed) {
    seed = *params.seed;
  } else {
    try {
      std::random_device rd;
      seed = (uint64_t(rd()) << 32) ^ uint64_t(rd());
    } catch (const std::exception&) {  // no entropy source: the clock still differs per call
      seed = uint64_t(std::chrono::high_resolution_clock::now().time_since_epoch().count());
    }
  }
  return Sampler(params, n_vocab, seed);
}

bool Sampler::penalties_on() const {
  return params_.repeat_last_n != 0 &&
         (params_.repeat_penalty != 1.0f || params_.presence_penalty != 0.0f ||
          params_.frequency_penalty != 0.0f);
}

void Sampler::reset() {
  uint64_t x = seed_;
  for (auto& s : rng_) s = splitmix64(x);
  Buffers& b = *buf_;
  if (!b.counts.empty()) std::fill(b.counts.begin(), b.counts.end(), 0u);
  b.n_distinct = 0;
  b.ring_head = b.ring_size = 0;
  last_ = SampleResult();
  status_ = Status();
}

void Sampler::set_constraint(Constraint* constraint) { constraint_ = constraint; }

// xoshiro256** (Blackman & Vigna), a uniform double in [0, 1) from its top 53 bits.
double Sampler::next_uniform() {
  auto rotl = [](uint64_t v, int s) { return (v << s) | (v >> (64 - s)); };
  const uint64_t out = rotl(rng_[1] * 5, 7) * 9;
  const uint64_t t = rng_[1] << 17;
  rng_[2] ^= rng_[0];
  rng_[3] ^= rng_[1];
  rng_[1] ^= rng_[2];
  rng_[0] ^= rng_[3];
  rng_[2] ^= t;
  rng_[3] = rotl(rng_[3], 45);
  return double(out >> 11) * 0x1.0p-53;
}

void Sampler::accept_prompt(std::span<const int32_t> tokens) {
  if (!penalties_on()) return;
  Buffers& b = *buf_;
  for (int32_t t : tokens) {
    if (t < 0 || t >= n_vocab_) continue;  // not a token of this vocabulary: nothing to penalise
    if (!b.ring.empty()) {
      const size_t cap = b.ring.size();
      if (b.ring_size == cap) {
        const int32_t old = b.ring[b.ring_head];
        --b.counts[size_t(old)];  // the flag stays: `distinct` is compacted at sample time
        b.ring[b.ring_head] = t;
        b.ring_head = (b.ring_head + 1) % cap;
      } else {
        b.ring[(b.ring_head + b.ring_size++) % cap] = t;
      }
    }
    uint32_t& c = b.counts[size_t(t)];
    if (!(c & Buffers::kInList)) {
      c |= Buffers::kInList;
      b.distinct[b.n_distinct++] = t;  // each token at most once: n_distinct <= n_vocab
    }
    ++c;
  }
}

void Sampler::accept(int32_t token) {
  accept_prompt(std::span<const int32_t>(&token, 1));
  if (constraint_) constraint_->accept(token);
}

// The sparse part of the chain: logit_bias then the penalties, as (id, new logit) pairs.
void Sampler::build_overrides(std::span<const float> raw) {
  Buffers& b = *buf_;
  b.overrides.clear();
  auto bias_of = [&](int32_t id) -> float {
    auto it =
        std::lower_bound(b.bias.begin(), b.bias.end(), std::pair<int32_t, float>(id, kNegInf));
    return it != b.bias.end() && it->first == id ? it->second : 0.0f;
  };
  const bool pen = penalties_on();
  for (const auto& [id, bias] : b.bias) {
    if (pen && (b.counts[size_t(id)] & ~Buffers::kInList) != 0) continue;  // done below
    b.overrides.push_back({raw[size_t(id)] + bias, id});
  }
  if (!pen) return;
  size_t kept = 0;
  for (size_t i = 0; i < b.n_distinct; ++i) {
    const int32_t id = b.distinct[i];
    uint32_t& c = b.counts[size_t(id)];
    const uint32_t count = c & ~Buffers::kInList;
    if (count == 0) {  // left the window since the last sample
      c = 0;
      continue;
    }
    b.distinct[kept++] = id;
    // llama.cpp's repeat penalty: a positive logit is divided, a negative one multiplied, so
    // that the penalty always lowers it. Then OpenAI's presence and frequency penalties.
    float v = raw[size_t(id)] + bias_of(id);
    v = v <= 0.0f ? v * params_.repeat_penalty : v / params_.repeat_penalty;
    v -= float(count) * params_.frequency_penalty + params_.presence_penalty;
    b.overrides.push_back({v, id});
  }
  b.n_distinct = kept;
}

int select_top_k(std::span<const float> logits, int k, Candidate* out) {
  const size_t n = logits.size();
  const float* x = logits.data();
  if (k <= 0) return 0;
  // A heap whose front is the worst kept candidate. Ids arrive in increasing order, so a later
  // value equal to the front's loses the tie: strict > is the whole test.
  int size = 0;
  size_t i = 0;
  for (; i < n && size < k; ++i) {
    if (!(x[i] > kNegInf)) continue;  // -inf and NaN are never candidates
    out[size++] = {x[i], int32_t(i)};
    std::push_heap(out, out + size, better);
  }
  if (size < k) {
    std::sort_heap(out, out + size, better);
    return size;
  }
  float thr = out[0].logit;
  auto take = [&](size_t j) {
    std::pop_heap(out, out + k, better);
    out[k - 1] = {x[j], int32_t(j)};
    std::push_heap(out, out + k, better);
    thr = out[0].logit;
  };
  // Blocks of 16: one vectorised "any above the threshold" test skips most of the vocabulary.
  constexpr size_t kBlock = 16;
  for (; i < n && i % kBlock != 0; ++i)
    if (x[i] > thr) take(i);
  for (; i + kBlock <= n; i += kBlock) {
    if (!any_greater16(x + i, thr)) continue;
    for (size_t j = i; j < i + kBlock; ++j)
      if (x[j] > thr) take(j);
  }
  for (; i < n; ++i)
    if (x[i] > thr) take(i);
  std::sort_heap(out, out + k, better);
  return k;
}

float Sampler::compute_raw_logprobs(std::span<const float> raw) {
  const float lse = log_sum_exp(raw);
  const int n = params_.n_logprobs;
  if (n == 0) return lse;
  Buffers& b = *buf_;
  const int got = select_top_k(raw, n, b.raw_top.data());
  last_.n_top = got;
  for (int i = 0; i < got; ++i)
    last_.top_storage[size_t(i)] = {b.raw_top[size_t(i)].id, b.raw_top[size_t(i)].logit - lse};
  return lse;
}

int32_t Sampler::run_chain(std::span<const float> base, bool apply_overrides) {
  Buffers& b = *buf_;
  Candidate* cand = b.cand.get();
  const std::span<const Candidate> over =
      apply_overrides ? std::span<const Candidate>(b.overrides) : std::span<const Candidate>();
  const int32_t k = effective_top_k(params_, n_vocab_);
  size_t n = 0;
  bool sorted = true;
  bool top_p_done = false;
  if (k < n_vocab_) {
    if (over.empty()) {
      n = size_t(select_top_k(base, k, cand));
    } else {
      // The k best after the overrides are among the k + |over| best raw values plus the
      // overridden tokens themselves: take those, replace the overridden ones, keep k.
      const int wide = int(std::min(size_t(n_vocab_), size_t(k) + over.size()));
      n = size_t(select_top_k(base, wide, cand));
      for (const Candidate& o : over) b.override_mark[size_t(o.id) / 64] |= 1ull << (o.id % 64);
      size_t m = 0;
      for (size_t j = 0; j < n; ++j) {
        const int32_t id = cand[j].id;
        if (!(b.override_mark[size_t(id) / 64] & (1ull << (id % 64)))) cand[m++] = cand[j];
      }
      for (const Candidate& o : over) {
        b.override_mark[size_t(o.id) / 64] = 0;
        if (o.logit > kNegInf) cand[m++] = o;
      }
      n = m;
      if (n > size_t(k)) {
        std::nth_element(cand, cand + k, cand + n, better);
        n = size_t(k);
      }
      std::sort(cand, cand + n, better);
    }
  } else {
    // top_k off: the whole vocabulary is a candidate.
    std::span<const float> row = base;
    if (!over.empty()) {
      std::memcpy(b.work.get(), base.data(), base.size_bytes());
      for (const Candidate& o : over) b.work[size_t(o.id)] = o.logit;
      row = std::span<const float>(b.work.get(), base.size());
    }
    if (params_.top_p < 1.0f && params_.typical_p >= 1.0f) {
      // top_p comes next: when the best 256 (one selection pass, the normaliser from one
      // log-sum-exp pass) already hold top_p of the mass, as they do on a peaked distribution,
      // nothing else is needed.
      const double lse = log_sum_exp(row);
      n = size_t(
          select_top_k(row, int(std::min(size_t(kTopPFirstPrefix), size_t(n_vocab_))), cand));
      double cum = 0.0;
      size_t j = 0;
      for (; j < n && cum < params_.top_p; ++j) cum += std::exp(double(cand[j].logit) - lse);
      if (cum >= params_.top_p || n < size_t(kTopPFirstPrefix)) {
        n = j;
        top_p_done = true;
      }
    }
    if (!top_p_done) {  // unsorted until a stage needs order
      n = 0;
      for (size_t j = 0; j < size_t(n_vocab_); ++j)
        if (row[j] > kNegInf) cand[n++] = {row[j], int32_t(j)};
      sorted = false;
    }
  }
  if (n == 0) return kNoToken;

  if (params_.temperature <= 0.0f) {
    last_.sample_prob = 1.0f;
    last_.n_candidates = 1;
    return cand[0].id;  // k == 1 here, so the selection was the argmax
  }

  auto max_logit = [&] {
    if (sorted) return cand[0].logit;
    float m = kNegInf;
    for (size_t j = 0; j < n; ++j) m = std::max(m, cand[j].logit);
    return m;
  };

  // typical_p (Meister et al. 2022): keep the tokens whose surprise -log p is closest to the
  // entropy, until their mass reaches typical_p; then back to logit order for top_p.
  if (params_.typical_p < 1.0f && n > 1) {
    const float m = max_logit();
    double z = 0.0;
    for (size_t j = 0; j < n; ++j) z += std::exp(double(cand[j].logit - m));
    const double log_z = std::log(z);
    double entropy = 0.0;
    for (size_t j = 0; j < n; ++j) {
      const double lp = double(cand[j].logit - m) - log_z;
      entropy -= std::exp(lp) * lp;
    }
    auto* sc = b.scored.get();
    for (size_t j = 0; j < n; ++j) {
      const double lp = double(cand[j].logit - m) - log_z;
      sc[j] = {float(std::abs(-lp - entropy)), cand[j]};
    }
    std::sort(sc, sc + n, [](const Buffers::Scored& a, const Buffers::Scored& c) {
      return a.score < c.score || (a.score == c.score && better(a.c, c.c));
    });
    double cum = 0.0;
    size_t keep = n;
    for (size_t j = 0; j < n; ++j) {
      cum += std::exp(double(sc[j].c.logit - m) - log_z);
      if (cum >= params_.typical_p) {
        keep = j + 1;
        break;
      }
    }
    for (size_t j = 0; j < keep; ++j) cand[j] = sc[j].c;
    n = keep;
    std::sort(cand, cand + n, better);
    sorted = true;
  }

  // top_p: the smallest prefix (by logit) whose mass reaches top_p.
  if (params_.top_p < 1.0f && n > 1 && !top_p_done) {
    const float m = max_logit();
    double z = 0.0;
    double cum = 0.0;
    size_t lo = 0;  // candidates [0, lo) are kept whole, their mass is in `cum`
    size_t hi = n;  // [lo, hi) sorted: the cut falls among them
    if (!sorted) {
      // top_k off: a histogram of the mass over the distance to the max (buckets of 1/32 nat)
      // finds the bucket where the cumulative mass crosses top_p; only that bucket is sorted.
      // Buckets are monotone in the logit, so the kept set is the prefix a full sort would give.
      double* mass = b.bucket_mass.get();
      std::fill(mass, mass + kBuckets + 1, 0.0);
      auto bucket = [m](float logit) {
        const float d = (m - logit) * kBucketsPerNat;
        return d < float(kBuckets) ? size_t(d) : size_t(kBuckets);
      };
      for (size_t j = 0; j < n; ++j) {
        const double e = exp_nonpositive(cand[j].logit - m);
        mass[bucket(cand[j].logit)] += e;
        z += e;
      }
      size_t c = 0;
      for (; c < kBuckets && (cum + mass[c]) / z < params_.top_p; ++c) cum += mass[c];
      for (size_t j = 0; j < n; ++j)
        if (bucket(cand[j].logit) < c) std::swap(cand[lo++], cand[j]);
      hi = lo;
      for (size_t j = lo; j < n; ++j)
        if (bucket(cand[j].logit) == c) std::swap(cand[hi++], cand[j]);
      std::sort(cand + lo, cand + hi, better);
    } else {
      for (size_t j = 0; j < n; ++j) z += exp_nonpositive(cand[j].logit - m);
    }
    size_t keep = hi;
    for (size_t j = lo; j < hi; ++j) {
      cum += exp_nonpositive(cand[j].logit - m);
      if (cum / z >= params_.top_p) {
        keep = j + 1;
        break;
      }
    }
    n = keep;
  }

  // min_p: keep p >= min_p * p_max, i.e. logit >= max_logit + log(min_p).
  if (params_.min_p > 0.0f && n > 1) {
    const float thr = max_logit() + std::log(params_.min_p);
    size_t m = 0;
    for (size_t j = 0; j < n; ++j)
      if (cand[j].logit >= thr) cand[m++] = cand[j];
    n = m;
  }

  // Temperature, softmax and the draw.
  const float m = max_logit();
  const float inv_t = 1.0f / params_.temperature;
  float* w = b.weight.get();
  double total = 0.0;
  for (size_t j = 0; j < n; ++j) {
    w[j] = exp_nonpositive((cand[j].logit - m) * inv_t);
    total += w[j];
  }
  const double target = next_uniform() * total;
  double cum = 0.0;
  size_t pick = n - 1;  // rounding can leave target just above the last partial sum
  for (size_t j = 0; j < n; ++j) {
    cum += w[j];
    if (target < cum) {
      pick = j;
      break;
    }
  }
  last_.sample_prob = float(w[pick] / total);
  last_.n_candidates = int(n);
  return cand[pick].id;
}

int32_t Sampler::sample(std::span<const float> logits) {
  last_ = SampleResult();
  status_ = Status();
  if (logits.size() != size_t(n_vocab_)) {
    status_ = Status::error("sampling: got " + std::to_string(logits.size()) +
                            " logits, the vocabulary has " + std::to_string(n_vocab_));
    return kNoToken;
  }
  const float lse = compute_raw_logprobs(logits);
  build_overrides(logits);

  Buffers& b = *buf_;
  bool materialised = false;
  auto materialise = [&] {
    if (materialised) return;
    std::memcpy(b.work.get(), logits.data(), logits.size_bytes());
    for (const Candidate& o : b.overrides) b.work[size_t(o.id)] = o.logit;
    materialised = true;
  };
  const std::span<const float> work(b.work.get(), size_t(n_vocab_));
  if (b.overrides.size() > kMaxSparseOverrides) materialise();

  int32_t token = materialised ? run_chain(work, false) : run_chain(logits, true);
  if (token == kNoToken) {
    status_ = Status::error(
        "sampling: no token left: every logit is -inf or NaN after logit_bias and penalties");
    return kNoToken;
  }
  if (constraint_ && params_.constraint_mass) {
    // Mask first, then sum the raw probabilities of what is left: the allowed mass.
    materialise();
    constraint_->mask(std::span<float>(b.work.get(), size_t(n_vocab_)));
    double mass = 0;
    for (int32_t i = 0; i < n_vocab_; ++i) {
      if (b.work[size_t(i)] != -INFINITY) mass += std::exp(double(logits[size_t(i)]) - lse);
    }
    last_.allowed_mass = float(std::min(1.0, mass));
    if (!constraint_->allows(token)) {
      last_.resampled = true;
      token = run_chain(work, false);
      if (token == kNoToken) {
        status_ = Status::error("sampling: the constraint allows no token in its current state");
        return kNoToken;
      }
    }
  } else if (constraint_ && !constraint_->allows(token)) {
    materialise();
    constraint_->mask(std::span<float>(b.work.get(), size_t(n_vocab_)));
    last_.resampled = true;
    token = run_chain(work, false);
    if (token == kNoToken) {
      status_ = Status::error("sampling: the constraint allows no token in its current state");
      return kNoToken;
    }
    if (!constraint_->allows(token)) {  // a constraint whose mask and allows() disagree
      status_ = Status::error("sampling: the constraint's mask left token " +
                              std::to_string(token) + ", which allows() rejects");
      return kNoToken;
    }
  }
  last_.token = token;
  last_.logprob = logits[size_t(token)] - lse;
  last_.prob = std::exp(last_.logprob);
  return token;
}

}  // namespace minnow::sampling
