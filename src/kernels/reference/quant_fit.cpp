// Scale searches for the quantizers without a closed form (k-quants, IQ4). Each one tries a
// fan of candidate scales around the "extreme value on the extreme level" guess, assigns
// levels by rounding, refits the scale (and offset) by least squares for those levels, and
// keeps the candidate with the smallest squared error; a short assign/refit loop polishes the
// winner. The plain guess is tried first and kept on ties, so data that already lies on the
// format's grid comes back exactly.
#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/reference/quant_ref_internal.h"

namespace minnow::kernels::ref {
namespace {

constexpr int kMaxN = 32;      // largest sub-block the searches see
constexpr int kFanSteps = 10;  // candidates on each side of the plain guess
constexpr int kPolishRounds = 2;

// Candidate k of the fan: 0, -1, +1, -2, +2, ... (the plain guess first).
int fan_offset(int k) { return (k % 2 == 1) ? -(k + 1) / 2 : k / 2; }

// ---- x ~ s * q, q in [lo, hi] ----

// Least-squares s for fixed q, and its squared error; false when q is all zero.
bool refit_symmetric(const float* x, int n, const int8_t* q, float* s, double* err) {
  double sxq = 0, sqq = 0;
  for (int i = 0; i < n; ++i) {
    sxq += static_cast<double>(x[i]) * q[i];
    sqq += static_cast<double>(q[i]) * q[i];
  }
  if (sqq <= 0) return false;
  *s = static_cast<float>(sxq / sqq);
  double e = 0;
  for (int i = 0; i < n; ++i) {
    const double diff = static_cast<double>(*s * static_cast<float>(q[i])) - x[i];
    e += diff * diff;
  }
  *err = e;
  return std::isfinite(*s);
}

}  // namespace

float fit_symmetric(const float* x, int n, int lo, int hi, int8_t* q) {
  const float max = signed_absmax(x, n), amax = std::fabs(max);
  std::fill_n(q, n, 0);
  if (!(amax > 0.0f)) return 0.0f;

  float best_s = 0.0f;
  double best_err = std::numeric_limits<double>::infinity();
  int8_t trial[kMaxN];
  // The largest-magnitude element goes to level lo (the side with more room) +- 0.1 * k.
  for (int k = 0; k <= 2 * kFanSteps; ++k) {
    const float iscale = (static_cast<float>(lo) - 0.1f * fan_offset(k)) / max;
    for (int i = 0; i < n; ++i)
      trial[i] = static_cast<int8_t>(round_even_clamped(iscale * x[i], lo, hi));
    float s;
    double err;
    if (refit_symmetric(x, n, trial, &s, &err) && err < best_err) {
      best_err = err;
      best_s = s;
      std::copy_n(trial, n, q);
    }
  }
  for (int round = 0; round < kPolishRounds && best_s != 0.0f; ++round) {
    const float inv = 1.0f / best_s;
    for (int i = 0; i < n; ++i)
      trial[i] = static_cast<int8_t>(round_even_clamped(x[i] * inv, lo, hi));
    float s;
    double err;
    if (!refit_symmetric(x, n, trial, &s, &err) || !(err < best_err)) break;
    best_err = err;
    best_s = s;
    std::copy_n(trial, n, q);
  }
  return best_s;
}

namespace {

// ---- x ~ s * q - m, q in [0, nmax], m >= 0 ----

double affine_error(const float* x, int n, const uint8_t* q, float s, float m) {
  double e = 0;
  for (int i = 0; i < n; ++i) {
    const double diff = static_cast<double>(s * static_cast<float>(q[i]) - m) - x[i];
    e += diff * diff;
  }
  return e;
}

// Least-squares (s, m) for fixed q with m >= 0; false when the levels do not pin a scale.
bool refit_affine(const float* x, int n, const uint8_t* q, float* s, float* m) {
  double sq = 0, sqq = 0, sx = 0, sxq = 0;
  for (int i = 0; i < n; ++i) {
    sq += q[i];
    sqq += static_cast<double>(q[i]) * q[i];
    sx += x[i];
    sxq += static_cast<double>(x[i]) * q[i];
  }
  const double det = n * sqq - sq * sq;
  if (!(det > 0)) return false;
  double scale = (n * sxq - sq * sx) / det;
  double offset = (sqq * sx - sq * sxq) / det;  // x ~ scale * q + offset
  if (offset > 0) {                             // the format cannot add: pin the offset at 0
    offset = 0;
    scale = sxq / sqq;
  }
  // Out-of-range doubles must not be narrowed to float (only reachable for |x| near FLT_MAX).
  constexpr double kFloatMax = std::numeric_limits<float>::max();
  if (!(scale >= 0 && scale <= kFloatMax && std::fabs(offset) <= kFloatMax)) return false;
  *s = static_cast<float>(scale);
  *m = static_cast<float>(-offset);
  return true;
}

void assign_affine(const float* x, int n, int nmax, float iscale, float min, uint8_t* q) {
  for (int i = 0; i < n; ++i)
    q[i] = static_cast<uint8_t>(round_even_clamped((x[i] - min) * iscale, 0, nmax));
}

}  // namespace

float fit_affine(const float* x, int n, int nmax, uint8_t* q, float* m_out) {
  float min = x[0], max = x[0];
  for (int i = 1; i < n; ++i) {
    min = std::fmin(min, x[i]);
    max = std::fmax(max, x[i]);
  }
  if (min > 0.0f) min = 0.0f;  // no positive offset: the grid must start at or below 0
  std::fill_n(q, n, 0);
  if (!(max > min)) {  // constant block <= 0 (all-zero included): q = 0, x = -m
    *m_out = std::isfinite(min) ? -min : 0.0f;
    return 0.0f;
  }

  // Plain guess: min on level 0, max on level nmax.
  float best_s = (max - min) / static_cast<float>(nmax), best_m = -min;
  assign_affine(x, n, nmax, 1.0f / best_s, min, q);
  double best_err = affine_error(x, n, q, best_s, best_m);
  if (std::isnan(best_err)) best_err = std::numeric_limits<double>::infinity();

  uint8_t trial[kMaxN];
  for (int k = 0; k <= 2 * kFanSteps; ++k) {
    const float iscale = (static_cast<float>(nmax) + 0.1f * fan_offset(k)) / (max - min);
    assign_affine(x, n, nmax, iscale, min, trial);
    float s, m;
    if (!refit_affine(x, n, trial, &s, &m)) continue;
    const double err = affine_error(x, n, trial, s, m);
    if (err < best_err) {
      best_err = err;
      best_s = s;
      best_m = m;
      std::copy_n(trial, n, q);
    }
  }
  for (int round = 0; round < kPolishRounds && best_s > 0.0f; ++round) {
    assign_affine(x, n, nmax, 1.0f / best_s, -best_m, trial);
    float s, m;
    if (!refit_affine(x, n, trial, &s, &m)) break;
    const double err = affine_error(x, n, trial, s, m);
    if (!(err < best_err)) break;
    best_err = err;
    best_s = s;
    best_m = m;
    std::copy_n(trial, n, q);
  }
  *m_out = best_m;
  return best_s;
}

int nearest_iq4_index(float v) {
  int best = 0;
  float best_dist = std::fabs(v - kIQ4NLValues[0]);
  for (int k = 1; k < 16; ++k) {
    const float dist = std::fabs(v - kIQ4NLValues[k]);
    if (dist < best_dist) {
      best_dist = dist;
      best = k;
    }
  }
  return best;
}

namespace {

// ---- x ~ s * kIQ4NLValues[q] ----

bool refit_iq4(const float* x, int n, const uint8_t* q, float* s, double* err) {
  double sxv = 0, svv = 0;
  for (int i = 0; i < n; ++i) {
    const double v = kIQ4NLValues[q[i]];
    sxv += x[i] * v;
    svv += v * v;
  }
  *s = static_cast<float>(sxv / svv);  // svv > 0: no code book value is 0
  double e = 0;
  for (int i = 0; i < n; ++i) {
    const double diff = static_cast<double>(*s * static_cast<float>(kIQ4NLValues[q[i]])) - x[i];
    e += diff * diff;
  }
  *err = e;
  return std::isfinite(*s);
}

void assign_iq4(const float* x, int n, float inv_scale, uint8_t* q) {
  for (int i = 0; i < n; ++i) q[i] = static_cast<uint8_t>(nearest_iq4_index(x[i] * inv_scale));
}

}  // namespace

float fit_iq4(const float* x, int n, uint8_t* q) {
  const float max = signed_absmax(x, n), amax = std::fabs(max);
  const uint8_t zero_index = static_cast<uint8_t>(nearest_iq4_index(0.0f));
  std::fill_n(q, n, zero_index);
  if (!(amax > 0.0f)) return 0.0f;

  // The code book is lopsided (-127 .. 113): try the largest element on either end, each
  // with a fan of +-2% steps.
  constexpr float kEnds[2] = {-127.0f, 113.0f};
  float best_s = 0.0f;
  double best_err = std::numeric_limits<double>::infinity();
  uint8_t trial[kMaxN];
  for (float end : kEnds) {
    for (int k = 0; k <= 2 * kFanSteps; ++k) {
      const float iscale = end * (1.0f + 0.02f * fan_offset(k)) / max;
      assign_iq4(x, n, iscale, trial);
      float s;
      double err;
      if (refit_iq4(x, n, trial, &s, &err) && err < best_err) {
        best_err = err;
        best_s = s;
        std::copy_n(trial, n, q);
      }
    }
  }
  for (int round = 0; round < kPolishRounds && best_s != 0.0f; ++round) {
    assign_iq4(x, n, 1.0f / best_s, trial);
    float s;
    double err;
    if (!refit_iq4(x, n, trial, &s, &err) || !(err < best_err)) break;
    best_err = err;
    best_s = s;
    std::copy_n(trial, n, q);
  }
  return best_s;
}

}  // namespace minnow::kernels::ref
