// The keys and values of one sequence, per layer, after RoPE (so a shift of positions
// re-rotates the keys, see Context::shift()).
//
// Full-attention layers keep one slot per position: slot p holds position p. Sliding-window
// layers (gemma3) keep only a ring of window + n_batch - 1 slots, enough for every query of a
// batch to see its whole window while the batch's own keys are written: a slot's position is
// in slot_pos, -1 when empty.
//
// f16 (default): K is slot-major, (n_slots, n_head_kv * head_dim), and V is stored transposed,
// (n_head_kv * head_dim_v, n_slots), so that attention is two matmuls, Q·Kᵀ and P·V, over
// views of the cache, the same kernels for a prompt and for one token (context.cpp). q8_0:
// both slot-major (half the memory, a little precision).
//
// The memory is mapped anonymously: it reads as zeros until written (unwritten slots must be
// finite, since attention multiplies them by a zero weight), and becomes resident as it fills.
// Slots are allocated in whole kSlotAlign groups so views can be padded to them.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/config.h"
#include "util/status.h"

namespace minnow::model {

enum class KvType { kF16, kQ8_0 };

constexpr int kSlotAlign = 64;

struct KvBuffer {
  void* data = nullptr;
  size_t bytes = 0;
  KvBuffer() = default;
  explicit KvBuffer(size_t n);
  KvBuffer(KvBuffer&& o) noexcept : data(o.data), bytes(o.bytes) { o.data = nullptr; o.bytes = 0; }
  KvBuffer& operator=(KvBuffer&& o) noexcept;
  ~KvBuffer();
  uint8_t* get() const { return static_cast<uint8_t*>(data); }
};

struct KvLayer {
  bool ring = false;
  int n_slots = 0;         // usable slots
  int n_alloc = 0;         // n_slots rounded up to kSlotAlign (the extra ones stay zero)
  bool v_transposed = false;
  size_t k_row_bytes = 0;  // one slot's keys: n_head_kv * head_dim elements
  size_t v_row_bytes = 0;  // one slot's values (slot-major layout only)
  KvBuffer k;              // (n_alloc, n_head_kv * head_dim)
  // f16: V transposed, in regions of vt_region slots: (n_alloc / vt_region, v_dim, vt_stride);
  // q8_0: (n_alloc, v_dim) slot-major.
  KvBuffer v;
  // A transposed row spans one region, not the whole cache: with rows n_alloc long, a decode
  // step's column (written, then read by P·V) would touch v_dim × layers rows 16 KiB and more
  // apart at an 8k context, thousands of pages and the same few cache sets, and decode slowed
  // down with the context's size (SmolLM2 at --ctx 8192: 111-141 tok/s against 208 at 512).
  // Within a region the rows are vt_stride = vt_region + 32 elements apart (one cache line
  // more than a power of two). Attention reads a run of keys per region (context.cpp).
  int vt_region = 0;
  int vt_stride = 0;
  int ring_head = 0;       // ring: next slot to write
  std::vector<int32_t> slot_pos;  // ring: (n_slots) position held, -1 = empty

  uint8_t* k_row(int slot) { return k.get() + size_t(slot) * k_row_bytes; }
  const uint8_t* k_row(int slot) const { return k.get() + size_t(slot) * k_row_bytes; }
  // Slot-major V (q8_0).
  uint8_t* v_row(int slot) { return v.get() + size_t(slot) * v_row_bytes; }
  const uint8_t* v_row(int slot) const { return v.get() + size_t(slot) * v_row_bytes; }
  // Transposed V (f16): dimension d (of n_head_kv * head_dim_v) of `slot`; the next slots of
  // its region follow it, the next dimension is vt_stride elements further.
  uint16_t* vt_at(int d, int slot) {
    return reinterpret_cast<uint16_t*>(v.get()) + vt_offset(d, slot);
  }
  const uint16_t* vt_at(int d, int slot) const {
    return reinterpret_cast<const uint16_t*>(v.get()) + vt_offset(d, slot);
  }
  size_t vt_offset(int d, int slot) const {
    const size_t region = size_t(slot / vt_region), n_dims = v_row_bytes / 2;
    return (region * n_dims + size_t(d)) * vt_stride + size_t(slot % vt_region);
  }
};

class KvCache {
 public:
  // n_batch: the most tokens one forward call writes (sizes the sliding-window rings).
  // rings = false keeps every slot in every layer (the paged pool of a batching context,
  // whose slots belong to many sequences: sliding layers then mask by position instead).
  static Result<KvCache> create(const ModelConfig& config, int n_ctx, KvType type, int n_batch,
                                bool rings = true);

  // Bytes a cache of n_ctx positions takes when full.
  static uint64_t bytes_for(const ModelConfig& config, int n_ctx, KvType type, int n_batch,
                            bool rings = true);

  int n_ctx() const { return n_ctx_; }
  KvType type() const { return type_; }
  KvLayer& layer(int il) { return layers_[il]; }
  const KvLayer& layer(int il) const { return layers_[il]; }
  int n_layer() const { return static_cast<int>(layers_.size()); }
  uint64_t bytes() const { return bytes_; }

  // Writes position `pos`'s k (n_head_kv * head_dim f32) and v into layer il.
  void store(int il, int pos, const float* k, const float* v);
  // The same into a given slot of a layer without ring (paged pools: slot = block · 64 + i).
  void store_slot(int il, int slot, const float* k, const float* v);
  // Zeroes slots [slot0, slot0 + n) in every layer: a block handed to a new sequence must
  // hold finite values where it has not been written yet (attention multiplies them by 0).
  void clear_slots(int slot0, int n);
  // Drops every position >= n (a rollback; rings forget those slots).
  void truncate(int n);

 private:
  int n_ctx_ = 0;
  KvType type_ = KvType::kF16;
  uint64_t bytes_ = 0;
  int v_dim_ = 0;
  std::vector<KvLayer> layers_;
};

}  // namespace minnow::model
