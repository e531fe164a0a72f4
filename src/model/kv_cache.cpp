#include "model/kv_cache.h"

#include <algorithm>

#include "kernels/quants.h"
#include "kernels/vec.h"

namespace minnow::model {

namespace {

size_t row_bytes_of(KvType type, int n) {
  return type == KvType::kF16 ? size_t(n) * 2 : size_t(n) / 32 * 34;
}

int slots_for(const ModelConfig& c, int il, int n_ctx, int n_batch) {
  if (!c.layers[il].sliding || c.sliding_window <= 0) return n_ctx;
  return std::min(n_ctx, c.sliding_window + n_batch - 1);
}

void write_row(KvType type, const float* x, uint8_t* dst, int n) {
  if (type == KvType::kF16) {
    kernels::vec_ops().to_f16(x, reinterpret_cast<kernels::f16_t*>(dst), n);
  } else {
    kernels::quantize_row_ref(TensorType::Q8_0, x, dst, n);
  }
}

}  // namespace

uint64_t KvCache::bytes_for(const ModelConfig& c, int n_ctx, KvType type, int n_batch) {
  uint64_t total = 0;
  for (int il = 0; il < c.n_layer; ++il) {
    total += uint64_t(slots_for(c, il, n_ctx, n_batch)) *
             (row_bytes_of(type, c.k_dim()) + row_bytes_of(type, c.v_dim()));
  }
  return total;
}

Result<KvCache> KvCache::create(const ModelConfig& c, int n_ctx, KvType type, int n_batch) {
  if (n_ctx <= 0)
    return Status::error("context size must be positive, got " + std::to_string(n_ctx));
  if (type == KvType::kQ8_0 && (c.k_dim() % 32 != 0 || c.v_dim() % 32 != 0)) {
    return Status::error("q8_0 KV cache needs K and V widths that are multiples of 32 (model has " +
                         std::to_string(c.k_dim()) + " and " + std::to_string(c.v_dim()) + ")");
  }
  KvCache cache;
  cache.n_ctx_ = n_ctx;
  cache.type_ = type;
  cache.layers_.resize(c.n_layer);
  for (int il = 0; il < c.n_layer; ++il) {
    KvLayer& L = cache.layers_[il];
    L.n_slots = slots_for(c, il, n_ctx, n_batch);
    L.ring = L.n_slots < n_ctx;
    L.k_row_bytes = row_bytes_of(type, c.k_dim());
    L.v_row_bytes = row_bytes_of(type, c.v_dim());
    // new[] without () leaves the memory untouched: pages become resident as they fill.
    L.k.reset(new uint8_t[size_t(L.n_slots) * L.k_row_bytes]);
    L.v.reset(new uint8_t[size_t(L.n_slots) * L.v_row_bytes]);
    if (L.ring) L.slot_pos.assign(L.n_slots, -1);
    cache.bytes_ += uint64_t(L.n_slots) * (L.k_row_bytes + L.v_row_bytes);
  }
  return cache;
}

void KvCache::store(int il, int pos, const float* k, const float* v) {
  KvLayer& L = layers_[il];
  int slot = pos;
  if (L.ring) {
    slot = L.ring_head;
    L.ring_head = (L.ring_head + 1) % L.n_slots;
    L.slot_pos[slot] = pos;
  }
  const int k_n =
      static_cast<int>(type_ == KvType::kF16 ? L.k_row_bytes / 2 : L.k_row_bytes / 34 * 32);
  const int v_n =
      static_cast<int>(type_ == KvType::kF16 ? L.v_row_bytes / 2 : L.v_row_bytes / 34 * 32);
  write_row(type_, k, L.k_row(slot), k_n);
  write_row(type_, v, L.v_row(slot), v_n);
}

void KvCache::truncate(int n) {
  for (KvLayer& L : layers_) {
    if (!L.ring) continue;
    // Positions are written in increasing order, so the dropped ones are the last written:
    // step the head back over them to keep the ring's full capacity for what comes next.
    int removed = 0;
    for (int32_t& p : L.slot_pos) {
      if (p >= n) {
        p = -1;
        ++removed;
      }
    }
    L.ring_head = ((L.ring_head - removed) % L.n_slots + L.n_slots) % L.n_slots;
  }
}

}  // namespace minnow::model
