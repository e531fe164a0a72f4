// Matrix multiplication of a (possibly quantized) weight matrix with f32 activations:
//
//   y (batch, rows) = x (batch, cols) · Wᵀ,   W (rows, cols) in its GGUF layout.
//
// batch == 1 is the decode step (matrix × vector, bound by the bandwidth of reading W);
// batch > 1 is prefill (matrix × matrix), where each block of W is loaded once into registers
// and used against several activation rows, which makes it compute-bound.
//
// Quantized weights are multiplied in the integer domain: x is first quantized, once per
// call, into the 8-bit activation format that pairs with the weight type (Q8_0, Q8_1 or Q8_K,
// see activation_type()), and the kernels sum int8 × int{4,5,6,8} products per block before
// applying the f16/f32 scales. Float weights (F32, F16, BF16) use x as is.
//
// The kernel set (scalar, AVX2, AVX-VNNI, AVX512) is picked once, at first use, from the CPU
// features (util/cpu_features.h, $MINNOW_KERNELS lowers it); every call then goes through a
// function table. The hot path never allocates: the caller passes a scratch buffer sized by
// matmul_scratch_bytes(), typically allocated once at model load (MatmulScratch below).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "gguf/tensor_type.h"
#include "util/cpu_features.h"
#include "util/status.h"
#include "util/thread_pool.h"

namespace minnow::kernels {

// A weight matrix as stored in a GGUF file: `rows` rows of `cols` elements, each row
// row_bytes(type, cols) bytes, rows contiguous. In GGUF terms cols = ne[0], rows = ne[1].
struct WeightView {
  TensorType type = TensorType::F32;
  const void* data = nullptr;
  int64_t rows = 0;  // output features
  int64_t cols = 0;  // input features: the length of each dot product
  // Bytes from one row to the next; 0 means packed (row_bytes(type, cols)). Larger strides
  // let a view pick one head's columns out of wider rows (attention over a KV cache).
  size_t row_stride = 0;
};

// Whether matmul handles `type` (on every kernel target; the scalar path covers them all).
bool matmul_supports(TensorType type);

// The format activations are quantized to for a weight type: Q8_1 for Q4_0/Q4_1/Q5_0/Q5_1
// (its block sum folds in their offsets), Q8_0 for Q8_0 and IQ4_NL, Q8_K for the k-quants
// and IQ4_XS, F32 for the float types (no quantization).
TensorType activation_type(TensorType weight_type);

// Bytes of scratch matmul needs for `batch` activation rows of `cols` elements.
size_t matmul_scratch_bytes(TensorType weight_type, int64_t cols, int64_t batch);

// y (batch, rows) = x (batch, cols) · Wᵀ with the selected kernels. Rows of W are split
// across the pool's threads (and, for large batches, activation rows too). `scratch` must
// hold matmul_scratch_bytes(w.type, w.cols, batch) bytes, 64-byte aligned. x and y must not
// overlap. Errors (unsupported type, cols not a multiple of the block size, scratch too
// small) are reported before any work is done.
Status matmul(const WeightView& w, const float* x, int64_t batch, float* y, ThreadPool& pool,
              std::span<std::byte> scratch);

// The same with a given kernel target, for tests and benchmarks. Fails when the target is
// not supported by this CPU.
Status matmul(KernelTarget target, const WeightView& w, const float* x, int64_t batch, float* y,
              ThreadPool& pool, std::span<std::byte> scratch);

// Several weights applied to the same x (Q, K and V; gate and up): x is quantized once and
// all of their work goes out in one dispatch to the pool. ys[i] (batch, ws[i].rows). Up to 4
// weights with the same cols; weights whose activation formats differ are run one by one.
// `scratch` as for matmul with ws[0].
Status matmul_multi(std::span<const WeightView> ws, const float* x, int64_t batch,
                    std::span<float* const> ys, ThreadPool& pool, std::span<std::byte> scratch);

// The kernel target matmul uses by default (selected_kernel_target()).
KernelTarget matmul_target();

// A 64-byte aligned scratch buffer that grows to the largest size asked for. Reserve it at
// load time for the largest matmul so that no call allocates.
class MatmulScratch {
 public:
  // The first `bytes` bytes of the buffer, grown (reallocated) only when too small.
  std::span<std::byte> get(size_t bytes);
  void reserve(size_t bytes) { get(bytes); }
  size_t capacity() const { return capacity_; }

 private:
  struct Free {
    void operator()(std::byte* p) const;
  };
  std::unique_ptr<std::byte, Free> data_;
  size_t capacity_ = 0;
};

}  // namespace minnow::kernels
