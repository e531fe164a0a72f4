// Open-addressing hash tables for the tokenizer's hot lookups: token text -> id and
// (left id, right id) -> merge. Built once at load, then read-only (safe to share).
#pragma once

#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace minnow::text {

// 64-bit hash of a short byte string: 8-byte words folded with multiply-xorshift.
inline uint64_t hash_bytes(const char* p, size_t n) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = 0x51ED270B27A1F3D5ull ^ (n * kMul);
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w ^ (uint64_t(n) << 56)) * kMul;
    h ^= h >> 29;
  }
  h *= kMul;
  return h ^ (h >> 32);
}

// Maps strings to dense ids (their order of insertion). Holds views only: the bytes must
// outlive the index.
class StringIndex {
 public:
  // Appends `s` with the next id, unless it is already present. Returns its id either way and
  // sets *added accordingly.
  int32_t add(std::string_view s, bool* added = nullptr) {
    if ((keys_.size() + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
    size_t i = hash_bytes(s.data(), s.size()) & mask_;
    for (;;) {
      const int32_t cur = slots_[i];
      if (cur < 0) break;
      if (keys_[cur] == s) {
        if (added) *added = false;
        return cur;
      }
      i = (i + 1) & mask_;
    }
    const auto id = static_cast<int32_t>(keys_.size());
    keys_.push_back(s);
    slots_[i] = id;
    if (added) *added = true;
    return id;
  }

  void reserve(size_t n) {
    keys_.reserve(n);
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    if (cap > slots_.size()) rehash(cap);
  }

  int32_t find(std::string_view s) const {
    if (slots_.empty()) return -1;
    size_t i = hash_bytes(s.data(), s.size()) & mask_;
    for (;;) {
      const int32_t id = slots_[i];
      if (id < 0) return -1;
      if (keys_[id] == s) return id;
      i = (i + 1) & mask_;
    }
  }

  size_t size() const { return keys_.size(); }
  std::string_view key(int32_t id) const { return keys_[id]; }

 private:
  void rehash(size_t cap) {
    slots_.assign(cap, -1);
    mask_ = cap - 1;
    for (size_t id = 0; id < keys_.size(); ++id) {
      size_t i = hash_bytes(keys_[id].data(), keys_[id].size()) & mask_;
      while (slots_[i] >= 0) i = (i + 1) & mask_;
      slots_[i] = static_cast<int32_t>(id);
    }
  }

  std::vector<std::string_view> keys_;
  std::vector<int32_t> slots_;
  size_t mask_ = 0;
};

// (left, right) symbol ids -> (rank, merged symbol id).
class PairMap {
 public:
  struct Value {
    int32_t rank;
    int32_t result;
  };

  void reserve(size_t n) {
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    slots_.assign(cap, Slot{kEmpty, {0, 0}});
    mask_ = cap - 1;
    size_ = 0;
  }

  // Keeps the first value inserted for a key (the lowest rank, as merges come in rank order).
  void insert(int32_t left, int32_t right, Value v) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    const uint64_t key = pack(left, right);
    size_t i = mix(key) & mask_;
    while (slots_[i].key != kEmpty) {
      if (slots_[i].key == key) return;
      i = (i + 1) & mask_;
    }
    slots_[i] = Slot{key, v};
    ++size_;
  }

  const Value* find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = pack(left, right);
    size_t i = mix(key) & mask_;
    for (;;) {
      const Slot& s = slots_[i];
      if (s.key == key) return &s.value;
      if (s.key == kEmpty) return nullptr;
      i = (i + 1) & mask_;
    }
  }

  size_t size() const { return size_; }

 private:
  static constexpr uint64_t kEmpty = ~0ull;
  struct Slot {
    uint64_t key;
    Value value;
  };
  static uint64_t pack(int32_t l, int32_t r) {
    return (uint64_t(uint32_t(l)) << 32) | uint32_t(r);
  }
  static uint64_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDull;
    k ^= k >> 33;
    return k;
  }
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    const size_t cap = old.empty() ? 16 : old.size() * 2;
    slots_.assign(cap, Slot{kEmpty, {0, 0}});
    mask_ = cap - 1;
    size_ = 0;
    for (const Slot& s : old) {
      if (s.key != kEmpty) insert(int32_t(s.key >> 32), int32_t(uint32_t(s.key)), s.value);
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t size_ = 0;
};

}  // namespace minnow::text
