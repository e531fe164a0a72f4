// Scalar half / bfloat16 conversions (bit manipulation, no hardware instructions), used by
// the reference kernels and as the portable fallback.
#include <cstring>

#include "kernels/quants.h"

namespace minnow::kernels {
namespace {

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace

float fp16_to_fp32(f16_bits h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  if (exp == 0x1f) return bits_float(sign | 0x7f800000 | (mant << 13));  // Inf / NaN
  if (exp != 0) return bits_float(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return bits_float(sign);  // +-0
  // Subnormal: value = mant * 2^-24, exact in float.
  float v = static_cast<float>(mant) * bits_float(0x33800000);  // 2^-24
  return sign ? -v : v;
}

f16_bits fp32_to_fp16(float f) {
  uint32_t x = float_bits(f);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t abs = x & 0x7fffffff;
  if (abs >= 0x7f800000) {  // Inf or NaN (keep NaN quiet and non-zero)
    return static_cast<f16_bits>(sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 | ((abs >> 13) & 0x3ff) : 0));
  }
  if (abs >= 0x477ff000) return static_cast<f16_bits>(sign | 0x7c00);  // rounds to >= 65520: Inf
  if (abs < 0x38800000) {
    // Result is subnormal (or zero): round abs * 2^24 to the nearest integer, ties to even.
    // Adding 0.5 (as float 2^-1 scaled) via the float unit does the rounding for us.
    float v = bits_float(abs) * bits_float(0x4b800000);  // * 2^24, exact
    // nearbyint with ties-to-even: adding and subtracting 2^23 rounds a value < 2^23.
    float r = (v + 8388608.0f) - 8388608.0f;
    return static_cast<f16_bits>(sign | static_cast<uint32_t>(r));
  }
  // Normal: rebias exponent (127 -> 15) and round the 13 dropped mantissa bits to even.
  uint32_t mant_odd = (abs >> 13) & 1;
  abs += 0xfff + mant_odd;
  return static_cast<f16_bits>(sign | ((abs - 0x38000000) >> 13));
}

float bf16_to_fp32(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

uint16_t fp32_to_bf16(float f) {
  uint32_t x = float_bits(f);
  if ((x & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((x >> 16) | 0x40);  // quiet NaN
  return static_cast<uint16_t>((x + 0x7fff + ((x >> 16) & 1)) >> 16);
}

}  // namespace minnow::kernels
