// The fast matmul kernels against the scalar reference, on every kernel target this CPU
// supports: activation quantizers bit for bit, matmul against dot_ref (same quantized
// activations: float rounding only) and against an f64 dequantize-then-dot of the unquantized
// activations (within the activation quantization error), on odd shapes, 1 and 2 threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gguf/gguf.h"
#include "kernels/matmul.h"
#include "kernels/matmul_kernels.h"
#include "kernels/quant_blocks.h"
#include "kernels/quants.h"
#include "kernels/reference/dot_ref.h"
#include "util/cpu_features.h"
#include "util/thread_pool.h"

namespace minnow::kernels {
namespace {

std::vector<KernelTarget> supported_targets() {
  std::vector<KernelTarget> out;
  for (int i = 0; i < kNumKernelTargets; ++i) {
    if (cpu_supports(static_cast<KernelTarget>(i))) out.push_back(static_cast<KernelTarget>(i));
  }
  return out;
}

// ---- CPU features and target choice ----

CpuFeatures all_features() {
  CpuFeatures f;
  f.avx2 = f.fma = f.f16c = f.bmi2 = f.avxvnni = true;
  f.avx512f = f.avx512bw = f.avx512vl = f.avx512dq = f.avx512vnni = true;
  return f;
}

TEST(CpuFeatures, TargetNamesRoundTrip) {
  for (int i = 0; i < kNumKernelTargets; ++i) {
    auto t = static_cast<KernelTarget>(i);
    EXPECT_EQ(kernel_target_from_name(kernel_target_name(t)), t);
  }
  EXPECT_FALSE(kernel_target_from_name("sse9").has_value());
}

TEST(CpuFeatures, ChoosesWidestSupported) {
  CpuFeatures f = all_features();
  EXPECT_EQ(choose_kernel_target(f, nullptr), KernelTarget::kAvx512);
  f.avx512vnni = false;
  EXPECT_EQ(choose_kernel_target(f, nullptr), KernelTarget::kAvxVnni);
  f.avxvnni = false;
  EXPECT_EQ(choose_kernel_target(f, nullptr), KernelTarget::kAvx2);
  f.fma = false;  // AVX2 without FMA (some VMs mask it) is not enough for the AVX2 kernels
  EXPECT_EQ(choose_kernel_target(f, nullptr), KernelTarget::kScalar);
  EXPECT_EQ(choose_kernel_target(CpuFeatures{}, nullptr), KernelTarget::kScalar);
}

TEST(CpuFeatures, EnvironmentOnlyLowers) {
  CpuFeatures f = all_features();
  EXPECT_EQ(choose_kernel_target(f, "scalar"), KernelTarget::kScalar);
  EXPECT_EQ(choose_kernel_target(f, "avx2"), KernelTarget::kAvx2);
  EXPECT_EQ(choose_kernel_target(f, "avxvnni"), KernelTarget::kAvxVnni);
  EXPECT_EQ(choose_kernel_target(f, "bogus"), KernelTarget::kAvx512);
  CpuFeatures no512 = f;
  no512.avx512f = false;
  EXPECT_EQ(choose_kernel_target(no512, "avx512"), KernelTarget::kAvxVnni);
  // AVX512-VNNI without AVX-VNNI (Ice Lake): asking for avxvnni falls to avx2.
  CpuFeatures icl = f;
  icl.avxvnni = false;
  EXPECT_EQ(choose_kernel_target(icl, "avxvnni"), KernelTarget::kAvx2);
  EXPECT_EQ(choose_kernel_target(icl, nullptr), KernelTarget::kAvx512);
}

TEST(CpuFeatures, DetectedTargetIsSupported) {
  EXPECT_TRUE(cpu_supports(KernelTarget::kScalar));
  EXPECT_TRUE(cpu_supports(selected_kernel_target()));
  EXPECT_EQ(matmul_target(), selected_kernel_target());
  const CpuFeatures& f = cpu_features();
  if (cpu_supports(KernelTarget::kAvx512)) {
    EXPECT_TRUE(f.avx512f && f.avx512bw && f.avx2);
  }
  if (cpu_supports(KernelTarget::kAvxVnni)) {
    EXPECT_TRUE(f.avxvnni && f.avx2);
  }
  for (KernelTarget t : supported_targets()) {
    ASSERT_NE(detail::kernel_table(t), nullptr) << kernel_target_name(t);
    EXPECT_EQ(detail::kernel_table(t)->target, t);
  }
}

// ---- activation quantizers: bit-identical to the reference ----

std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Rows that exercise the rounding edges: exact halves (ties), all-zero blocks, equal and
// opposite extremes (the Q8_K sign choice), tiny values.
std::vector<std::vector<float>> quantizer_inputs(int64_t n) {
  std::vector<std::vector<float>> rows;
  rows.push_back(random_floats(n, 1));
  rows.push_back(random_floats(n, 2, 1e-3f));
  std::vector<float> ties(n);
  for (int64_t i = 0; i < n; ++i)
    ties[i] = (i % 32 == 0) ? 127.0f : static_cast<float>(i % 7) - 3.5f;
  rows.push_back(ties);
  std::vector<float> ties_k(n);
  for (int64_t i = 0; i < n; ++i)
    ties_k[i] = (i % 256 == 0) ? -127.0f : static_cast<float>(i % 9) - 4.5f;
  rows.push_back(ties_k);
  rows.push_back(std::vector<float>(n, 0.0f));
  std::vector<float> opposite(n, 0.25f);
  for (int64_t i = 0; i < n; i += 2) opposite[i] = (i / 2) % 2 ? 3.0f : -3.0f;
  rows.push_back(opposite);
  std::vector<float> mixed = random_floats(n, 3, 10.0f);
  for (int64_t i = 0; i < n / 2; ++i) mixed[i] = 0.0f;  // zero blocks next to normal ones
  rows.push_back(mixed);
  return rows;
}

TEST(ActivationQuantizers, BitIdenticalToReference) {
  constexpr int64_t n = 1024;
  ASSERT_TRUE(has_reference_quantize(TensorType::Q8_0));
  ASSERT_TRUE(has_reference_quantize(TensorType::Q8_K));
  for (KernelTarget t : supported_targets()) {
    const detail::KernelTable* table = detail::kernel_table(t);
    int row = 0;
    for (const auto& x : quantizer_inputs(n)) {
      SCOPED_TRACE(std::string(kernel_target_name(t)) + " input " + std::to_string(row++));
      const int64_t nb = n / kQK, stride = nb + 8;  // a stride past nb: padding must be zeroed
      std::vector<uint8_t> want(nb * sizeof(BlockQ8_0)), got(stride * sizeof(BlockQ8_0), 0xAA);
      quantize_row_ref(TensorType::Q8_0, x.data(), want.data(), n);
      std::vector<float> d(stride, 1.0f), s(stride, 1.0f);
      std::vector<int32_t> sum(stride, 1);
      table->quantize_q8_0(x.data(), n, stride, got.data(), d.data(), s.data(), sum.data());
      for (int64_t b = 0; b < nb; ++b) {
        BlockQ8_0 blk;
        std::memcpy(&blk, want.data() + b * sizeof blk, sizeof blk);
        for (int i = 0; i < kQK; ++i) {
          // kBlocks: BlockQ8_0 after BlockQ8_0. kTransposed: group b / 8, vector i / 4, lane b % 8.
          const size_t at = table->q8_0_layout == detail::Q8Layout::kBlocks
                                ? b * sizeof(BlockQ8_0) + offsetof(BlockQ8_0, qs) + i
                                : (b / 8) * 256 + (i / 4) * 32 + (b % 8) * 4 + i % 4;
          ASSERT_EQ(static_cast<int8_t>(got[at]), blk.qs[i]) << "block " << b << " element " << i;
        }
        if (table->q8_0_layout == detail::Q8Layout::kBlocks) {
          ASSERT_EQ(std::memcmp(got.data() + b * sizeof blk, &blk.d, 2), 0);
        }
        int isum = 0;
        for (int8_t v : blk.qs) isum += v;
        ASSERT_EQ(sum[b], isum);
        ASSERT_EQ(d[b], fp16_to_fp32(blk.d));
        ASSERT_EQ(s[b], d[b] * static_cast<float>(isum));
      }
      for (int64_t b = nb; b < stride; ++b) {
        ASSERT_EQ(d[b], 0.0f);
        ASSERT_EQ(s[b], 0.0f);
        ASSERT_EQ(sum[b], 0);
      }
      std::vector<uint8_t> want_k(n / kQK_K * sizeof(BlockQ8_K)), got_k(want_k.size());
      quantize_row_ref(TensorType::Q8_K, x.data(), want_k.data(), n);
      table->quantize_q8_k(x.data(), n, got_k.data());
      ASSERT_EQ(std::memcmp(want_k.data(), got_k.data(), want_k.size()), 0) << "Q8_K bytes differ";
    }
  }
}

// ---- matmul against the references ----

struct Problem {
  TensorType type;
  int64_t rows, cols, batch;
  std::vector<uint8_t> w;    // (rows, cols) in GGUF layout
  std::vector<float> w_deq;  // (rows, cols) dequantized
  std::vector<float> x;      // (batch, cols)
};

Problem make_problem(TensorType type, int64_t rows, int64_t cols, int64_t batch, uint32_t seed) {
  Problem p{type, rows, cols, batch, {}, {}, {}};
  const size_t rb = row_bytes(traits(type), cols);
  p.w.resize(rb * rows);
  p.w_deq.resize(rows * cols);
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> src(cols);
  for (int64_t r = 0; r < rows; ++r) {
    // Rows with an offset exercise the minimum of the affine formats.
    const float shift = (r % 3 == 1) ? 0.7f : 0.0f;
    for (auto& v : src) v = dist(rng) + shift;
    quantize_row_ref(type, src.data(), p.w.data() + r * rb, cols);
    dequantize_row_ref(type, p.w.data() + r * rb, p.w_deq.data() + r * cols, cols);
  }
  p.x.resize(batch * cols);
  for (auto& v : p.x) v = dist(rng);
  return p;
}

// Expected results and tolerances, computed once per problem.
struct Expected {
  std::vector<float> dot;         // dot_ref on reference-quantized activations
  std::vector<double> dot_tol;    // float rounding of the block sums
  std::vector<double> exact;      // f64 dot of dequantized weights and unquantized x
  std::vector<double> exact_tol;  // + the activation quantization error bound
};

// Per-element bound of |x - dequantized activation| for the block holding each element:
// Q8_0: |x - d16·q| <= d/2 + 127·|d - d16| <= amax/254 + amax·2^-11 (f16 rounding of d);
// Q8_K: d is f32, |x - d·q| <= amax/254 (+ f32 rounding, covered by the slack factor).
std::vector<double> activation_error_bound(TensorType act, const float* x, int64_t cols) {
  std::vector<double> e(cols, 0.0);
  if (act == TensorType::F32) return e;
  const int64_t blk = act == TensorType::Q8_K ? kQK_K : kQK;
  for (int64_t b = 0; b < cols; b += blk) {
    double amax = 0;
    for (int64_t i = b; i < b + blk; ++i)
      amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
    const double bound =
        amax * (1.0 / 254 + (act == TensorType::Q8_0 ? std::ldexp(1.0, -11) : 0.0)) * 1.0001;
    for (int64_t i = b; i < b + blk; ++i) e[i] = bound;
  }
  return e;
}

Expected expected_for(const Problem& p) {
  Expected e;
  const TensorType act = activation_type(p.type);
  const size_t wrb = row_bytes(traits(p.type), p.cols);
  const size_t arb =
      act == TensorType::F32 ? p.cols * sizeof(float) : row_bytes(traits(act), p.cols);
  std::vector<uint8_t> aq(arb);
  std::vector<float> a_deq(p.cols);
  for (int64_t b = 0; b < p.batch; ++b) {
    const float* x = p.x.data() + b * p.cols;
    quantize_activation_ref(p.type, x, p.cols, aq.data());
    if (act == TensorType::F32) {
      std::memcpy(a_deq.data(), x, p.cols * sizeof(float));
    } else {
      dequantize_row_ref(act, aq.data(), a_deq.data(), p.cols);
    }
    const std::vector<double> err = activation_error_bound(act, x, p.cols);
    for (int64_t r = 0; r < p.rows; ++r) {
      const float* w = p.w_deq.data() + r * p.cols;
      double exact = 0, mag = 0, qerr = 0;
      for (int64_t i = 0; i < p.cols; ++i) {
        exact += static_cast<double>(w[i]) * x[i];
        mag += std::fabs(static_cast<double>(w[i]) * a_deq[i]);
        qerr += std::fabs(static_cast<double>(w[i])) * err[i];
      }
      e.dot.push_back(dot_ref(p.type, p.cols, p.w.data() + r * wrb, aq.data()));
      // Both sides sum per-block products in f32 in different orders: a few ulps of the
      // magnitude per block, 1e-5 relative covers up to ~100 blocks comfortably.
      e.dot_tol.push_back(1e-5 * mag + 1e-30);
      e.exact.push_back(exact);
      e.exact_tol.push_back(qerr + 2e-5 * mag + 1e-30);
    }
  }
  return e;
}

void check_matmul(const Problem& p, const Expected& e, KernelTarget target, int threads) {
  ThreadPool pool(threads);
  MatmulScratch scratch;
  std::vector<float> y(p.batch * p.rows, NAN);
  const WeightView w{p.type, p.w.data(), p.rows, p.cols};
  Status st = matmul(target, w, p.x.data(), p.batch, y.data(), pool,
                     scratch.get(matmul_scratch_bytes(p.type, p.cols, p.batch)));
  ASSERT_TRUE(st.ok()) << st.message();
  int failures = 0;
  for (int64_t b = 0; b < p.batch; ++b) {
    for (int64_t r = 0; r < p.rows; ++r) {
      const size_t k = b * p.rows + r;
      const double got = y[k];
      if (!(std::fabs(got - e.dot[k]) <= e.dot_tol[k]) ||
          !(std::fabs(got - e.exact[k]) <= e.exact_tol[k])) {
        if (++failures <= 5) {
          ADD_FAILURE() << tensor_type_name(p.type) << " " << kernel_target_name(target) << " t"
                        << threads << " rows=" << p.rows << " cols=" << p.cols
                        << " batch=" << p.batch << " at (b=" << b << ", r=" << r << "): got " << got
                        << ", dot_ref " << e.dot[k] << " (tol " << e.dot_tol[k] << "), f64 "
                        << e.exact[k] << " (tol " << e.exact_tol[k] << ")";
        }
      }
    }
  }
  ASSERT_EQ(failures, 0);
}

class MatmulTypeTest : public ::testing::TestWithParam<TensorType> {};

TEST_P(MatmulTypeTest, AllTargetsMatchReference) {
  const TensorType type = GetParam();
  ASSERT_TRUE(matmul_supports(type));
  ASSERT_TRUE(has_reference_quantize(type)) << "no reference quantizer yet";
  const int64_t blk = std::max<int64_t>(traits(type).block_elems,
                                        activation_type(type) == TensorType::Q8_K ? kQK_K : kQK);
  const bool is_float = activation_type(type) == TensorType::F32;
  // cols: one block, a few blocks, and more than the kernels' 64-block scale chunk.
  std::vector<int64_t> col_options =
      is_float ? std::vector<int64_t>{1, 13, 200}
               : std::vector<int64_t>{blk, 3 * blk, (blk == 32 ? 70 : 9) * blk};
  struct Shape {
    int64_t rows, batch;
  };
  // rows: 1, not a multiple of any tile (7, 33); batch: 1 (decode), 3, 8, 33 (prefill edges).
  const Shape shapes[] = {{1, 1}, {7, 1}, {33, 1}, {7, 3}, {33, 3}, {5, 8}, {33, 8}, {7, 33}};
  uint32_t seed = 100;
  for (int64_t cols : col_options) {
    for (const Shape& s : shapes) {
      if (cols > 1000 && s.rows * s.batch > 64) continue;  // keep the big-cols cases cheap
      const Problem p = make_problem(type, s.rows, cols, s.batch, seed++);
      const Expected e = expected_for(p);
      for (KernelTarget t : supported_targets()) {
        for (int threads : {1, 2}) {
          check_matmul(p, e, t, threads);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

// A big enough matrix that the work is split into several chunks per thread.
TEST_P(MatmulTypeTest, ManyChunksAcrossThreads) {
  const TensorType type = GetParam();
  const int64_t cols = activation_type(type) == TensorType::Q8_K ? 512 : 256;
  const Problem p = make_problem(type, 300, cols, 2, 7);
  const Expected e = expected_for(p);
  for (KernelTarget t : supported_targets()) {
    if (t == KernelTarget::kScalar) continue;
    check_matmul(p, e, t, 2);
    check_matmul(p, e, t, 3);
  }
}

std::string type_name(const ::testing::TestParamInfo<TensorType>& info) {
  return std::string(tensor_type_name(info.param));
}

INSTANTIATE_TEST_SUITE_P(Types, MatmulTypeTest,
                         ::testing::Values(TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0,
                                           TensorType::Q5_1, TensorType::Q8_0, TensorType::Q2_K,
                                           TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K,
                                           TensorType::Q6_K, TensorType::IQ4_NL, TensorType::IQ4_XS,
                                           TensorType::F32, TensorType::F16, TensorType::BF16),
                         type_name);

// ---- errors ----

TEST(Matmul, RejectsBadArguments) {
  ThreadPool pool(1);
  MatmulScratch scratch;
  std::vector<uint8_t> w(4096);
  std::vector<float> x(1024), y(1024);
  auto span = scratch.get(1 << 16);
  EXPECT_FALSE(
      matmul(WeightView{TensorType::Q8_1, w.data(), 2, 32}, x.data(), 1, y.data(), pool, span)
          .ok());
  EXPECT_FALSE(
      matmul(WeightView{TensorType::I32, w.data(), 2, 32}, x.data(), 1, y.data(), pool, span).ok());
  EXPECT_FALSE(
      matmul(WeightView{TensorType::Q4_0, w.data(), 2, 48}, x.data(), 1, y.data(), pool, span)
          .ok());
  EXPECT_FALSE(
      matmul(WeightView{TensorType::Q4_K, w.data(), 2, 32}, x.data(), 1, y.data(), pool, span)
          .ok());
  Status small = matmul(WeightView{TensorType::Q4_0, w.data(), 2, 64}, x.data(), 4, y.data(), pool,
                        span.first(matmul_scratch_bytes(TensorType::Q4_0, 64, 4) - 1));
  EXPECT_FALSE(small.ok());
  EXPECT_NE(small.message().find("scratch"), std::string::npos) << small.message();
  EXPECT_TRUE(
      matmul(WeightView{TensorType::Q4_0, w.data(), 0, 64}, x.data(), 1, y.data(), pool, span)
          .ok());
  EXPECT_EQ(matmul_scratch_bytes(TensorType::F32, 64, 4), 0u);
}

// ---- real weights ----

// A few rows of each weight type the real models contain, through every target, against
// dot_ref: catches layout assumptions that random data produced by our own quantizers would
// share with the kernels.
TEST(Matmul, RealModelWeights) {
  const char* cache_env = std::getenv("MINNOW_CACHE");
  const char* home = std::getenv("HOME");
  const std::string cache =
      cache_env ? cache_env : std::string(home ? home : "") + "/.cache/minnow/models";
  int checked = 0;
  for (const char* name : {"SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"}) {
    auto file = gguf::File::open(cache + "/" + name);
    if (!file.ok()) continue;
    std::vector<bool> seen(detail::kTypeSlots, false);
    for (const auto& t : (*file)->tensors()) {
      if (t.n_dims != 2 || seen[static_cast<int>(t.type)] || !matmul_supports(t.type)) continue;
      seen[static_cast<int>(t.type)] = true;
      const int64_t cols = static_cast<int64_t>(t.ne[0]);
      const int64_t rows = std::min<int64_t>(static_cast<int64_t>(t.ne[1]), 37);
      Problem p{t.type, rows, cols, 3, {}, {}, {}};
      const size_t rb = row_bytes(traits(t.type), cols);
      p.w.assign(t.data, t.data + rb * rows);
      p.w_deq.resize(rows * cols);
      for (int64_t r = 0; r < rows; ++r)
        dequantize_row_ref(t.type, p.w.data() + r * rb, p.w_deq.data() + r * cols, cols);
      p.x = random_floats(3 * cols, 11);
      const Expected e = expected_for(p);
      for (KernelTarget target : supported_targets()) {
        SCOPED_TRACE(std::string(name) + " " + std::string(t.name));
        check_matmul(p, e, target, 2);
      }
      ++checked;
    }
  }
  if (checked == 0) GTEST_SKIP() << "real models not found in " << cache;
}

}  // namespace
}  // namespace minnow::kernels
