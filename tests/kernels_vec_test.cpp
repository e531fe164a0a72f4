// Each fast vector op (kernels/vec.h) against the scalar reference, on random data and lengths
// that are not multiples of the vector width.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/quants.h"
#include "kernels/vec.h"

namespace minnow::kernels {
namespace {

class VecTest : public ::testing::TestWithParam<KernelTarget> {
 protected:
  void SetUp() override {
    fast_ = vec_ops(GetParam());
    if (!fast_) GTEST_SKIP() << "target not supported by this CPU";
    ref_ = vec_ops(KernelTarget::kScalar);
  }
  std::vector<float> random(int n, float scale, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = d(rng);
    return v;
  }
  const VecOps* fast_ = nullptr;
  const VecOps* ref_ = nullptr;
};

const int kLengths[] = {1, 7, 8, 15, 16, 17, 64, 100, 256, 1000};

TEST_P(VecTest, DotAndAxpyF16) {
  for (int n : kLengths) {
    auto x = random(n, 1.0f, n), y = random(n, 1.0f, n + 1);
    std::vector<f16_t> xh(n);
    ref_->to_f16(x.data(), xh.data(), n);
    std::vector<f16_t> xh2(n);
    fast_->to_f16(x.data(), xh2.data(), n);
    EXPECT_EQ(xh, xh2) << "to_f16 n=" << n;
    const float want = ref_->dot_f16(xh.data(), y.data(), n);
    EXPECT_NEAR(fast_->dot_f16(xh.data(), y.data(), n), want, 1e-4f * std::sqrt(float(n)) + 1e-5f);
    auto a = y, b = y;
    ref_->axpy_f16(n, 0.37f, xh.data(), a.data());
    fast_->axpy_f16(n, 0.37f, xh.data(), b.data());
    for (int i = 0; i < n; ++i) EXPECT_NEAR(a[i], b[i], 1e-6f);
  }
}

TEST_P(VecTest, ExpShiftedAndActivations) {
  for (int n : kLengths) {
    auto x = random(n, 4.0f, 10 * n);
    x[0] = -200.0f;  // underflows to 0
    auto a = x, b = x;
    const float sa = ref_->exp_shifted(a.data(), n, 3.0f);
    const float sb = fast_->exp_shifted(b.data(), n, 3.0f);
    EXPECT_NEAR(sa, sb, 2e-6f * sa);
    for (int i = 0; i < n; ++i) EXPECT_NEAR(a[i], b[i], 2e-6f * a[i] + 1e-30f) << i;
    EXPECT_EQ(b[0], 0.0f);

    auto u = random(n, 1.0f, 7 * n);
    for (auto op : {&VecOps::silu_mul, &VecOps::gelu_mul}) {
      auto g1 = random(n, 3.0f, 3 * n), g2 = g1;
      g1[0] = -100.0f;
      g2[0] = -100.0f;
      (ref_->*op)(g1.data(), u.data(), n);
      (fast_->*op)(g2.data(), u.data(), n);
      for (int i = 0; i < n; ++i) EXPECT_NEAR(g1[i], g2[i], 1e-5f * (1 + std::fabs(g1[i]))) << i;
    }
  }
}

TEST_P(VecTest, NormParts) {
  for (int n : kLengths) {
    auto x = random(n, 2.0f, n), w = random(n, 1.0f, 2 * n);
    EXPECT_NEAR(fast_->sum_sq(x.data(), n), ref_->sum_sq(x.data(), n), 1e-5f * 4 * n);
    std::vector<float> a(n), b(n);
    ref_->scale_mul(x.data(), w.data(), 0.5f, a.data(), n);
    fast_->scale_mul(x.data(), w.data(), 0.5f, b.data(), n);
    for (int i = 0; i < n; ++i) EXPECT_NEAR(a[i], b[i], 1e-6f * (1 + std::fabs(a[i])));
  }
}

INSTANTIATE_TEST_SUITE_P(Targets, VecTest,
                         ::testing::Values(KernelTarget::kAvx2, KernelTarget::kAvx512),
                         [](const auto& info) {
                           return std::string(kernel_target_name(info.param));
                         });

}  // namespace
}  // namespace minnow::kernels
