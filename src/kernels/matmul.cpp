// matmul: validation, activation quantization, the split of the work across threads, and the
// dispatch through the kernel table of the selected target (matmul_kernels.h).
#include "kernels/matmul.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "kernels/matmul_kernels.h"
#include "kernels/quant_blocks.h"

namespace minnow::kernels {
namespace {

using detail::Activations;
using detail::KernelTable;

constexpr size_t kAlign = 64;
size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Activation rows are quantized in groups of this many per chunk when batch is large.
constexpr int64_t kQuantizeRowsPerChunk = 16;
// Activation rows per work item of a prefill: 64 rows of a 1536-wide Q8_0 activation are
// ~100 KB, which stays in L2 while the kernel sweeps a chunk of weight rows over them.
constexpr int64_t kBatchBlock = 32;
// Weight rows per work item are a multiple of this (the kernels' row tiles divide it).
constexpr int64_t kRowAlign = 16;
// A work item reads at least this many weight bytes, so claiming it is negligible, and at
// most this many, so that big matrices (the vocabulary-sized output) are cut finely enough
// for a thread slowed down by another process to hand its share to the others.
constexpr int64_t kMinChunkWeightBytes = 32 * 1024;
constexpr int64_t kMaxChunkWeightBytes = 1024 * 1024;

struct Tables {
  KernelTable by_target[kNumKernelTargets];
  bool built[kNumKernelTargets] = {};
};

const Tables& tables() {
  static const Tables t = [] {
    Tables t;
    detail::fill_scalar_kernels(t.by_target[0]);
    t.built[0] = true;
    if (cpu_supports(KernelTarget::kAvx2)) {
      KernelTable avx2 = t.by_target[0];
      detail::fill_avx2_kernels(avx2);
      t.by_target[1] = avx2;
      t.built[1] = true;
      if (cpu_supports(KernelTarget::kAvxVnni)) {
        KernelTable vnni = avx2;
        detail::fill_avxvnni_kernels(vnni);
        t.by_target[2] = vnni;
        t.built[2] = true;
      }
      if (cpu_supports(KernelTarget::kAvx512)) {
        KernelTable avx512 = avx2;
        detail::fill_avx512_kernels(avx512);
        t.by_target[3] = avx512;
        t.built[3] = true;
      }
    }
    return t;
  }();
  return t;
}

int64_t act_block_elems(TensorType act) {
  return act == TensorType::Q8_K ? kQK_K : act == TensorType::Q8_0 ? kQK : 1;
}

// Byte sizes of the parts of the scratch buffer, in order: q rows, then d, s, sum.
struct ScratchLayout {
  size_t q_row_bytes = 0;  // stride of one quantized activation row
  size_t q_bytes = 0;
  int64_t side_stride = 0;  // entries per row of d, s, sum (32-wide formats only)
  size_t side_bytes = 0;    // each of d, s, sum
  size_t total() const { return q_bytes + 3 * side_bytes; }
};

ScratchLayout scratch_layout(TensorType weight_type, int64_t cols, int64_t batch) {
  ScratchLayout l;
  const TensorType act = activation_type(weight_type);
  if (act == TensorType::F32) return l;
  if (act == TensorType::Q8_0) {
    // Room for either Q8_0 layout (matmul_kernels.h): blocks, or groups of 8 transposed.
    l.side_stride = (cols / kQK + 7) / 8 * 8;
    l.q_row_bytes = align_up(l.side_stride * sizeof(BlockQ8_0));
    l.side_bytes = align_up(sizeof(float) * l.side_stride * batch);
  } else {
    l.q_row_bytes = align_up(row_bytes(traits(act), cols));
  }
  l.q_bytes = l.q_row_bytes * batch;
  return l;
}

std::string shape_of(const WeightView& w) {
  return std::string(tensor_type_name(w.type)) + " [" + std::to_string(w.cols) + ", " +
         std::to_string(w.rows) + "]";
}

}  // namespace

namespace detail {
const KernelTable* kernel_table(KernelTarget target) {
  const int ti = static_cast<int>(target);
  if (ti < 0 || ti >= kNumKernelTargets || !tables().built[ti]) return nullptr;
  return &tables().by_target[ti];
}
}  // namespace detail

bool matmul_supports(TensorType type) {
  return static_cast<int>(type) < detail::kTypeSlots &&
         tables().by_target[0].gemm[detail::slot(type)] != nullptr;
}

TensorType activation_type(TensorType weight_type) {
  switch (weight_type) {
    case TensorType::Q4_0:
    case TensorType::Q4_1:
    case TensorType::Q5_0:
    case TensorType::Q5_1:
    case TensorType::Q8_0:
    case TensorType::IQ4_NL:
      return TensorType::Q8_0;
    case TensorType::Q2_K:
    case TensorType::Q3_K:
    case TensorType::Q4_K:
    case TensorType::Q5_K:
    case TensorType::Q6_K:
    case TensorType::IQ4_XS:
      return TensorType::Q8_K;
    default:
      return TensorType::F32;
  }
}

size_t matmul_scratch_bytes(TensorType weight_type, int64_t cols, int64_t batch) {
  return scratch_layout(weight_type, cols, batch).total();
}

KernelTarget matmul_target() { return selected_kernel_target(); }

Status matmul(const WeightView& w, const float* x, int64_t batch, float* y, ThreadPool& pool,
              std::span<std::byte> scratch) {
  return matmul(matmul_target(), w, x, batch, y, pool, scratch);
}

Status matmul(KernelTarget target, const WeightView& w, const float* x, int64_t batch, float* y,
              ThreadPool& pool, std::span<std::byte> scratch) {
  const int ti = static_cast<int>(target);
  if (ti < 0 || ti >= kNumKernelTargets || !tables().built[ti]) {
    return Status::error("matmul: kernel target " + std::string(kernel_target_name(target)) +
                         " is not supported by this CPU");
  }
  if (!matmul_supports(w.type)) {
    return Status::error("matmul: no kernel for weight type " + shape_of(w));
  }
  const TensorType act = activation_type(w.type);
  const int64_t block = std::max<int64_t>(traits(w.type).block_elems, act_block_elems(act));
  if (w.rows < 0 || w.cols <= 0 || w.cols % block != 0 || batch < 0) {
    return Status::error("matmul: weight " + shape_of(w) + " with batch " + std::to_string(batch) +
                         ": cols must be a positive multiple of " + std::to_string(block));
  }
  if (w.row_stride != 0 && w.row_stride < row_bytes(traits(w.type), w.cols)) {
    return Status::error("matmul: weight " + shape_of(w) + ": row stride of " +
                         std::to_string(w.row_stride) + " bytes is shorter than a row");
  }
  if (w.rows == 0 || batch == 0) return Status();
  const ScratchLayout layout = scratch_layout(w.type, w.cols, batch);
  if (scratch.size() < layout.total() ||
      reinterpret_cast<uintptr_t>(scratch.data()) % kAlign != 0) {
    return Status::error("matmul: scratch of " + std::to_string(scratch.size()) + " bytes (needs " +
                         std::to_string(layout.total()) + ", 64-byte aligned) for weight " +
                         shape_of(w) + " and batch " + std::to_string(batch));
  }

  const KernelTable& table = tables().by_target[ti];
  const int64_t cols = w.cols;

  // 1. Quantize the activations (once per call: every weight row reuses them).
  Activations a;
  if (act == TensorType::F32) {
    a.q = reinterpret_cast<const uint8_t*>(x);
    a.row_bytes = cols * sizeof(float);
  } else {
    auto* base = reinterpret_cast<uint8_t*>(scratch.data());
    auto* q = base;
    auto* d = reinterpret_cast<float*>(base + layout.q_bytes);
    auto* s = reinterpret_cast<float*>(base + layout.q_bytes + layout.side_bytes);
    auto* sum = reinterpret_cast<int32_t*>(base + layout.q_bytes + 2 * layout.side_bytes);
    const int64_t ss = layout.side_stride;
    auto quantize_rows = [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        if (act == TensorType::Q8_0) {
          table.quantize_q8_0(x + r * cols, cols, ss, q + r * layout.q_row_bytes, d + r * ss,
                              s + r * ss, sum + r * ss);
        } else {
          table.quantize_q8_k(x + r * cols, cols, q + r * layout.q_row_bytes);
        }
      }
    };
    const int64_t n_qchunks = (batch + kQuantizeRowsPerChunk - 1) / kQuantizeRowsPerChunk;
    if (n_qchunks > 1) {
      pool.parallel_for(n_qchunks, [&](int64_t c, int) {
        quantize_rows(c * kQuantizeRowsPerChunk, std::min(batch, (c + 1) * kQuantizeRowsPerChunk));
      });
    } else {
      quantize_rows(0, batch);
    }
    a.q = q;
    a.row_bytes = layout.q_row_bytes;
    if (act == TensorType::Q8_0) {
      a.side_stride = ss;
      a.d = d;
      a.s = s;
      a.sum = sum;
    }
  }

  // 2. Split (rows x batch) into work items: blocks of kBatchBlock activation rows, and row
  // ranges sized for a few items per thread, between kMin- and kMaxChunkWeightBytes of
  // weights each.
  const size_t w_row_bytes = row_bytes(traits(w.type), cols);
  const size_t w_stride = w.row_stride ? w.row_stride : w_row_bytes;
  const int64_t n_batch_blocks = (batch + kBatchBlock - 1) / kBatchBlock;
  const int64_t threads = pool.n_threads();
  int64_t row_chunks = threads > 1 ? (4 * threads + n_batch_blocks - 1) / n_batch_blocks : 1;
  int64_t chunk_rows = (w.rows + row_chunks - 1) / row_chunks;
  const int64_t min_rows =
      std::max<int64_t>(kRowAlign, kMinChunkWeightBytes / static_cast<int64_t>(w_row_bytes));
  const int64_t max_rows = kMaxChunkWeightBytes / static_cast<int64_t>(w_row_bytes);
  if (threads > 1 && chunk_rows > max_rows) chunk_rows = max_rows;
  chunk_rows = std::max(chunk_rows, min_rows);
  chunk_rows = (chunk_rows + kRowAlign - 1) / kRowAlign * kRowAlign;
  row_chunks = (w.rows + chunk_rows - 1) / chunk_rows;

  const auto* wdata = static_cast<const uint8_t*>(w.data);
  const detail::GemmFn gemm = table.gemm[detail::slot(w.type)];
  pool.parallel_for(row_chunks * n_batch_blocks, [&](int64_t item, int) {
    const int64_t rc = item % row_chunks, bc = item / row_chunks;
    const int64_t r0 = rc * chunk_rows, r1 = std::min(w.rows, r0 + chunk_rows);
    const int64_t b0 = bc * kBatchBlock, b1 = std::min(batch, b0 + kBatchBlock);
    gemm(cols, wdata + r0 * w_stride, w_stride, r1 - r0, a.from_row(b0), b1 - b0,
         y + b0 * w.rows + r0, w.rows);
  });
  return Status();
}

void MatmulScratch::Free::operator()(std::byte* p) const { std::free(p); }

std::span<std::byte> MatmulScratch::get(size_t bytes) {
  if (bytes > capacity_ || !data_) {
    const size_t cap = align_up(std::max<size_t>(bytes, kAlign));
    data_.reset(static_cast<std::byte*>(std::aligned_alloc(kAlign, cap)));
    capacity_ = data_ ? cap : 0;
  }
  return {data_.get(), bytes};
}

}  // namespace minnow::kernels
