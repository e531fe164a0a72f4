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

namespace {

Status check_weight(const WeightView& w, int64_t batch) {
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
  return Status();
}

const KernelTable* table_for(KernelTarget target) {
  const int ti = static_cast<int>(target);
  if (ti < 0 || ti >= kNumKernelTargets || !tables().built[ti]) return nullptr;
  return &tables().by_target[ti];
}

// Step 1: quantizes x (batch, cols) once into the activation format of `weight_type`, in
// `scratch` (laid out by scratch_layout), or points at x for float weights.
Activations quantize_activations(const KernelTable& table, TensorType weight_type, const float* x,
                                 int64_t cols, int64_t batch, ThreadPool& pool,
                                 std::span<std::byte> scratch) {
  const TensorType act = activation_type(weight_type);
  Activations a;
  if (act == TensorType::F32) {
    a.q = reinterpret_cast<const uint8_t*>(x);
    a.row_bytes = cols * sizeof(float);
    return a;
  }
  const ScratchLayout layout = scratch_layout(weight_type, cols, batch);
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
  return a;
}

// Step 2: how one weight's (rows x batch) is cut into work items: blocks of kBatchBlock
// activation rows, and row ranges sized for a few items per thread (`share` of the pool when
// several weights are run together), between kMin- and kMaxChunkWeightBytes of weights each.
struct Plan {
  int64_t chunk_rows = 0, row_chunks = 0, batch_blocks = 0;
  int64_t items() const { return row_chunks * batch_blocks; }
};

Plan plan_for(const WeightView& w, int64_t batch, int64_t threads, double share) {
  Plan p;
  const size_t w_row_bytes = row_bytes(traits(w.type), w.cols);
  p.batch_blocks = (batch + kBatchBlock - 1) / kBatchBlock;
  const int64_t want = std::max<int64_t>(1, int64_t(4 * threads * share + 0.5));
  int64_t row_chunks = threads > 1 ? (want + p.batch_blocks - 1) / p.batch_blocks : 1;
  int64_t chunk_rows = (w.rows + row_chunks - 1) / row_chunks;
  const int64_t min_rows =
      std::max<int64_t>(kRowAlign, kMinChunkWeightBytes / static_cast<int64_t>(w_row_bytes));
  const int64_t max_rows = kMaxChunkWeightBytes / static_cast<int64_t>(w_row_bytes);
  if (threads > 1 && chunk_rows > max_rows) chunk_rows = max_rows;
  chunk_rows = std::max(chunk_rows, min_rows);
  chunk_rows = (chunk_rows + kRowAlign - 1) / kRowAlign * kRowAlign;
  p.chunk_rows = chunk_rows;
  p.row_chunks = (w.rows + chunk_rows - 1) / chunk_rows;
  return p;
}

void run_item(const KernelTable& table, const WeightView& w, const Plan& p, const Activations& a,
              int64_t batch, float* y, int64_t item) {
  const size_t w_stride = w.row_stride ? w.row_stride : row_bytes(traits(w.type), w.cols);
  const int64_t rc = item % p.row_chunks, bc = item / p.row_chunks;
  const int64_t r0 = rc * p.chunk_rows, r1 = std::min(w.rows, r0 + p.chunk_rows);
  const int64_t b0 = bc * kBatchBlock, b1 = std::min(batch, b0 + kBatchBlock);
  table.gemm[detail::slot(w.type)](w.cols, static_cast<const uint8_t*>(w.data) + r0 * w_stride,
                                   w_stride, r1 - r0, a.from_row(b0), b1 - b0, y + b0 * w.rows + r0,
                                   w.rows);
}

Status check_scratch(const WeightView& w, int64_t batch, std::span<std::byte> scratch) {
  const ScratchLayout layout = scratch_layout(w.type, w.cols, batch);
  if (scratch.size() < layout.total() ||
      reinterpret_cast<uintptr_t>(scratch.data()) % kAlign != 0) {
    return Status::error("matmul: scratch of " + std::to_string(scratch.size()) + " bytes (needs " +
                         std::to_string(layout.total()) + ", 64-byte aligned) for weight " +
                         shape_of(w) + " and batch " + std::to_string(batch));
  }
  return Status();
}

Status unsupported_target(KernelTarget target) {
  return Status::error("matmul: kernel target " + std::string(kernel_target_name(target)) +
                       " is not supported by this CPU");
}

}  // namespace

Status matmul(KernelTarget target, const WeightView& w, const float* x, int64_t batch, float* y,
              ThreadPool& pool, std::span<std::byte> scratch) {
  const KernelTable* table = table_for(target);
  if (!table) return unsupported_target(target);
  MINNOW_RETURN_IF_ERROR(check_weight(w, batch));
  if (w.rows == 0 || batch == 0) return Status();
  MINNOW_RETURN_IF_ERROR(check_scratch(w, batch, scratch));
  const Activations a = quantize_activations(*table, w.type, x, w.cols, batch, pool, scratch);
  const Plan p = plan_for(w, batch, pool.n_threads(), 1.0);
  pool.parallel_for(p.items(),
                    [&](int64_t item, int) { run_item(*table, w, p, a, batch, y, item); });
  return Status();
}

Status matmul_multi(std::span<const WeightView> ws, const float* x, int64_t batch,
                    std::span<float* const> ys, ThreadPool& pool, std::span<std::byte> scratch) {
  constexpr size_t kMaxMulti = 4;
  if (ws.empty() || ws.size() != ys.size() || ws.size() > kMaxMulti) {
    return Status::error("matmul_multi: 1 to 4 weights, one output each");
  }
  const KernelTable* table = table_for(matmul_target());
  for (const WeightView& w : ws) {
    MINNOW_RETURN_IF_ERROR(check_weight(w, batch));
    if (w.cols != ws[0].cols || activation_type(w.type) != activation_type(ws[0].type)) {
      // Different activation formats: no shared quantization to gain.
      for (size_t i = 0; i < ws.size(); ++i) {
        MINNOW_RETURN_IF_ERROR(matmul(ws[i], x, batch, ys[i], pool, scratch));
      }
      return Status();
    }
  }
  if (batch == 0) return Status();
  // Scratch layout depends only on the activation format, cols and batch: one for all.
  MINNOW_RETURN_IF_ERROR(check_scratch(ws[0], batch, scratch));
  const Activations a =
      quantize_activations(*table, ws[0].type, x, ws[0].cols, batch, pool, scratch);
  // One dispatch over the work items of every weight, each weight getting a share of the
  // threads in proportion to its size.
  int64_t total_rows = 0;
  for (const WeightView& w : ws) total_rows += w.rows;
  Plan plans[kMaxMulti];
  int64_t first_item[kMaxMulti + 1] = {0};
  for (size_t i = 0; i < ws.size(); ++i) {
    const double share = total_rows ? double(ws[i].rows) / double(total_rows) : 1.0;
    plans[i] = ws[i].rows ? plan_for(ws[i], batch, pool.n_threads(), share) : Plan{1, 0, 0};
    first_item[i + 1] = first_item[i] + plans[i].items();
  }
  pool.parallel_for(first_item[ws.size()], [&](int64_t item, int) {
    size_t i = 0;
    while (item >= first_item[i + 1]) ++i;
    run_item(*table, ws[i], plans[i], a, batch, ys[i], item - first_item[i]);
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
