#include "model/kv_cache.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>

#include "kernels/quants.h"
#include "kernels/vec.h"

namespace minnow::model {

namespace {

size_t row_bytes_of(KvType type, int n) {
  return type == KvType::kF16 ? size_t(n) * 2 : size_t(n) / 32 * 34;
}

int slots_for(const ModelConfig& c, int il, int n_ctx, int n_batch, bool rings) {
  if (!rings || !c.layers[il].sliding || c.sliding_window <= 0) return n_ctx;
  return std::min(n_ctx, c.sliding_window + n_batch - 1);
}

int aligned(int n) { return (n + kSlotAlign - 1) / kSlotAlign * kSlotAlign; }

// Transposed V layout (kv_cache.h): regions of 1024 slots (a multiple of kSlotAlign, so a
// block never straddles two), rows one cache line more than a region apart.
constexpr int kVtRegion = 1024;
constexpr int kVtPad = 32;

uint64_t vt_bytes(int n_alloc, int v_dim) {
  const int region = std::min(n_alloc, kVtRegion);
  return uint64_t((n_alloc + region - 1) / region) * v_dim * (region + kVtPad) * 2;
}

void write_row(KvType type, const float* x, uint8_t* dst, int n) {
  if (type == KvType::kF16) {
    kernels::vec_ops().to_f16(x, reinterpret_cast<kernels::f16_t*>(dst), n);
  } else {
    kernels::quantize_row_ref(TensorType::Q8_0, x, dst, n);
  }
}

}  // namespace

KvBuffer::KvBuffer(size_t n) : bytes(n) {
  if (n == 0) return;
  data = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data == MAP_FAILED) {
    data = nullptr;
    bytes = 0;
  }
}

KvBuffer& KvBuffer::operator=(KvBuffer&& o) noexcept {
  if (this != &o) {
    if (data) munmap(data, bytes);
    data = o.data;
    bytes = o.bytes;
    o.data = nullptr;
    o.bytes = 0;
  }
  return *this;
}

KvBuffer::~KvBuffer() {
  if (data) munmap(data, bytes);
}

uint64_t KvCache::bytes_for(const ModelConfig& c, int n_ctx, KvType type, int n_batch,
                            bool rings) {
  uint64_t total = 0;
  for (int il = 0; il < c.n_layer; ++il) {
    const uint64_t n = aligned(slots_for(c, il, n_ctx, n_batch, rings));
    total += n * row_bytes_of(type, c.k_dim()) +
             (type == KvType::kF16 ? vt_bytes(int(n), c.v_dim()) : n * row_bytes_of(type, c.v_dim()));
  }
  return total;
}

Result<KvCache> KvCache::create(const ModelConfig& c, int n_ctx, KvType type, int n_batch,
                                bool rings) {
  if (n_ctx <= 0) {
    return Status::error("context size must be positive, got " + std::to_string(n_ctx));
  }
  if (type == KvType::kQ8_0 && (c.k_dim() % 32 != 0 || c.v_dim() % 32 != 0)) {
    return Status::error("q8_0 KV cache needs K and V widths that are multiples of 32 (model has " +
                         std::to_string(c.k_dim()) + " and " + std::to_string(c.v_dim()) + ")");
  }
  KvCache cache;
  cache.n_ctx_ = n_ctx;
  cache.type_ = type;
  cache.v_dim_ = c.v_dim();
  cache.layers_.resize(c.n_layer);
  for (int il = 0; il < c.n_layer; ++il) {
    KvLayer& L = cache.layers_[il];
    L.n_slots = slots_for(c, il, n_ctx, n_batch, rings);
    L.n_alloc = aligned(L.n_slots);
    L.ring = L.n_slots < n_ctx;
    L.v_transposed = type == KvType::kF16;
    L.k_row_bytes = row_bytes_of(type, c.k_dim());
    L.v_row_bytes = row_bytes_of(type, c.v_dim());
    L.vt_region = std::min(L.n_alloc, kVtRegion);
    L.vt_stride = L.vt_region + kVtPad;
    const size_t v_bytes = L.v_transposed ? vt_bytes(L.n_alloc, c.v_dim())
                                          : size_t(L.n_alloc) * L.v_row_bytes;
    L.k = KvBuffer(size_t(L.n_alloc) * L.k_row_bytes);
    L.v = KvBuffer(v_bytes);
    if (!L.k.data || !L.v.data) {
      return Status::error("cannot map " + std::to_string(size_t(L.n_alloc) * L.k_row_bytes + v_bytes) +
                           " bytes for the KV cache of layer " + std::to_string(il));
    }
    if (L.ring) L.slot_pos.assign(L.n_slots, -1);
    cache.bytes_ += uint64_t(L.n_alloc) * L.k_row_bytes + v_bytes;
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
  store_slot(il, slot, k, v);
}

void KvCache::store_slot(int il, int slot, const float* k, const float* v) {
  KvLayer& L = layers_[il];
  if (type_ == KvType::kF16) {
    write_row(type_, k, L.k_row(slot), int(L.k_row_bytes / 2));
    for (int d = 0; d < v_dim_; ++d) *L.vt_at(d, slot) = kernels::fp32_to_fp16(v[d]);
  } else {
    write_row(type_, k, L.k_row(slot), int(L.k_row_bytes / 34 * 32));
    write_row(type_, v, L.v_row(slot), int(L.v_row_bytes / 34 * 32));
  }
}

void KvCache::clear_slots(int slot0, int n) {
  for (KvLayer& L : layers_) {
    std::memset(L.k_row(slot0), 0, size_t(n) * L.k_row_bytes);
    if (L.v_transposed) {
      for (int d = 0; d < v_dim_; ++d) std::memset(L.vt_at(d, slot0), 0, size_t(n) * 2);
    } else {
      std::memset(L.v_row(slot0), 0, size_t(n) * L.v_row_bytes);
    }
  }
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
    // Emptied: start again at slot 0, as a new cache does (the same slots, the same sums).
    if (n == 0) L.ring_head = 0;
  }
}

}  // namespace minnow::model
