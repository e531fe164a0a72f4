// The keys and values of one sequence, per layer, after RoPE (so a shift of positions
// re-rotates the keys, see shift()).
//
// Full-attention layers keep one slot per position: slot p holds position p, and attention
// reads slots [0, p]. Sliding-window layers (gemma3) keep only a ring of
// window + n_batch - 1 slots, enough for every query of a batch to see its whole window
// while the batch's own keys are written: a slot's position is in slot_pos, -1 when empty.
//
// Rows are f16 (default) or q8_0 (half the memory, a little precision). Memory is allocated
// untouched, so a large context costs resident memory only as it fills.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "model/config.h"
#include "util/status.h"

namespace minnow::model {

enum class KvType { kF16, kQ8_0 };

struct KvLayer {
  bool ring = false;
  int n_slots = 0;
  size_t k_row_bytes = 0;  // one slot's keys: n_head_kv * head_dim elements
  size_t v_row_bytes = 0;
  std::unique_ptr<uint8_t[]> k;   // (n_slots, n_head_kv * head_dim)
  std::unique_ptr<uint8_t[]> v;   // (n_slots, n_head_kv * head_dim_v)
  int ring_head = 0;              // ring: next slot to write
  std::vector<int32_t> slot_pos;  // ring: (n_slots) position held, -1 = empty

  uint8_t* k_row(int slot) { return k.get() + size_t(slot) * k_row_bytes; }
  uint8_t* v_row(int slot) { return v.get() + size_t(slot) * v_row_bytes; }
  const uint8_t* k_row(int slot) const { return k.get() + size_t(slot) * k_row_bytes; }
  const uint8_t* v_row(int slot) const { return v.get() + size_t(slot) * v_row_bytes; }
};

class KvCache {
 public:
  // n_batch: the most tokens one forward call writes (sizes the sliding-window rings).
  static Result<KvCache> create(const ModelConfig& config, int n_ctx, KvType type, int n_batch);

  // Bytes a cache of n_ctx positions takes when full.
  static uint64_t bytes_for(const ModelConfig& config, int n_ctx, KvType type, int n_batch);

  int n_ctx() const { return n_ctx_; }
  KvType type() const { return type_; }
  KvLayer& layer(int il) { return layers_[il]; }
  const KvLayer& layer(int il) const { return layers_[il]; }
  int n_layer() const { return static_cast<int>(layers_.size()); }
  uint64_t bytes() const { return bytes_; }

  // Writes position `pos`'s k (n_head_kv * head_dim f32) and v into layer il.
  void store(int il, int pos, const float* k, const float* v);
  // Drops every position >= n (a rollback; rings forget those slots).
  void truncate(int n);

 private:
  int n_ctx_ = 0;
  KvType type_ = KvType::kF16;
  uint64_t bytes_ = 0;
  std::vector<KvLayer> layers_;
};

}  // namespace minnow::model
