// matmul_multi (one quantization, one dispatch for several weights) and strided weight views
// against plain matmul calls.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "kernels/matmul.h"
#include "kernels/quants.h"

namespace minnow::kernels {
namespace {

std::vector<uint8_t> random_weight(TensorType type, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> f(cols);
  const size_t rb = row_bytes(traits(type), cols);
  std::vector<uint8_t> out(rb * rows);
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : f) v = d(rng);
    quantize_row_ref(type, f.data(), out.data() + r * rb, cols);
  }
  return out;
}

TEST(MatmulMulti, EqualsSeparateCalls) {
  ThreadPool pool(2);
  MatmulScratch scratch;
  for (TensorType t : {TensorType::Q4_1, TensorType::Q8_0, TensorType::Q4_K, TensorType::F16}) {
    const int64_t cols = 256;
    const int64_t rows[3] = {96, 32, 48};
    std::vector<std::vector<uint8_t>> data;
    WeightView ws[3];
    for (int i = 0; i < 3; ++i) {
      data.push_back(random_weight(t, rows[i], cols, 10 + i));
      ws[i] = WeightView{t, data[i].data(), rows[i], cols};
    }
    for (int64_t batch : {1, 5, 40}) {
      std::mt19937 rng(batch);
      std::normal_distribution<float> d(0.0f, 1.0f);
      std::vector<float> x(batch * cols);
      for (auto& v : x) v = d(rng);
      std::vector<float> want[3], got[3];
      float* ys[3];
      for (int i = 0; i < 3; ++i) {
        want[i].resize(batch * rows[i]);
        got[i].assign(batch * rows[i], -1.0f);
        ys[i] = got[i].data();
        ASSERT_TRUE(matmul(ws[i], x.data(), batch, want[i].data(), pool,
                           scratch.get(matmul_scratch_bytes(t, cols, batch)))
                        .ok());
      }
      ASSERT_TRUE(matmul_multi(ws, x.data(), batch, ys, pool,
                               scratch.get(matmul_scratch_bytes(t, cols, batch)))
                      .ok());
      for (int i = 0; i < 3; ++i)
        EXPECT_EQ(want[i], got[i]) << tensor_type_name(t) << " batch " << batch;
    }
  }
}

TEST(MatmulStride, ViewOfSomeColumnsEqualsPackedCopy) {
  ThreadPool pool(2);
  MatmulScratch scratch;
  // Rows of 3 heads of 64 f16; a view of head 1 only.
  const int64_t rows = 50, head = 64, width = 3 * head;
  auto wide = random_weight(TensorType::F16, rows, width, 3);
  std::vector<uint8_t> packed(rows * head * 2);
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(wide.data() + r * width * 2 + head * 2, head * 2, packed.data() + r * head * 2);
  }
  std::vector<float> x(4 * head);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i % 7) - 3.0f;
  std::vector<float> a(4 * rows), b(4 * rows);
  WeightView view{TensorType::F16, wide.data() + head * 2, rows, head, size_t(width * 2)};
  WeightView copy{TensorType::F16, packed.data(), rows, head};
  ASSERT_TRUE(matmul(view, x.data(), 4, a.data(), pool, scratch.get(64)).ok());
  ASSERT_TRUE(matmul(copy, x.data(), 4, b.data(), pool, scratch.get(64)).ok());
  EXPECT_EQ(a, b);
  WeightView bad = view;
  bad.row_stride = 10;
  EXPECT_FALSE(matmul(bad, x.data(), 4, a.data(), pool, scratch.get(64)).ok());
}

}  // namespace
}  // namespace minnow::kernels
