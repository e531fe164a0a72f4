// Open-addressing hash tables for the tokenizer's hot lookups: token text -> id and
// (left id, right id) -> merge. Built once at load, then read-only (safe to share).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
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
// outlive the index. Each slot keeps the key's length and its first 8 bytes (all of a shorter
// key), so a probe touches the key bytes only for keys longer than 8 (most tokens are shorter).
class StringIndex {
 public:
  // Appends `s` with the next id, unless it is already present. Returns its id either way and
  // sets *added accordingly.
  int32_t add(std::string_view s, bool* added = nullptr) {
    if ((keys_.size() + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
    const uint64_t head = head_of(s);
    size_t i = hash(s) & mask_;
    for (;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) break;
      if (same(slot, s, head)) {
        if (added) *added = false;
        return slot.id;
      }
    }
    const auto id = static_cast<int32_t>(keys_.size());
    keys_.push_back(s);
    slots_[i] = Slot{head, id, static_cast<uint32_t>(s.size())};
    if (added) *added = true;
    return id;
  }

  void reserve(size_t n) {
    keys_.reserve(n);
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    if (cap > slots_.size()) rehash(cap);
  }

  int32_t find(std::string_view s) const { return find(s, hash(s)); }

  // The hash find() uses: keys of up to 8 bytes (most tokens) hash from one 64-bit load.
  static uint64_t hash(std::string_view s) {
    if (s.size() > 8) return hash_bytes(s.data(), s.size());
    uint64_t h = (head_of(s) ^ (uint64_t(s.size()) << 59)) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
  }

  // find() with the hash computed beforehand, so that a batch of lookups can first prefetch()
  // their slots and overlap the cache misses.
  int32_t find(std::string_view s, uint64_t hash) const {
    if (slots_.empty()) return -1;
    const uint64_t head = head_of(s);
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return -1;
      if (same(slot, s, head)) return slot.id;
    }
  }
  void prefetch(uint64_t hash) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[hash & mask_]);
  }

  size_t size() const { return keys_.size(); }
  std::string_view key(int32_t id) const { return keys_[id]; }

 private:
  struct Slot {
    uint64_t head = 0;  // head_of(key)
    int32_t id = -1;
    uint32_t len = 0;
  };

  // The first 8 bytes, or for shorter keys a value that is equal for two keys of the same
  // length exactly when their bytes are (overlapping fixed-size loads, no variable memcpy).
  static uint64_t head_of(std::string_view s) {
    const char* p = s.data();
    const size_t n = s.size();
    if (n >= 8) return load<uint64_t>(p);
    if (n >= 4) return load<uint32_t>(p) | (uint64_t(load<uint32_t>(p + n - 4)) << 32);
    if (n == 0) return 0;
    return uint64_t(uint8_t(p[0])) | (uint64_t(uint8_t(p[n / 2])) << 8) |
           (uint64_t(uint8_t(p[n - 1])) << 16);
  }
  template <typename T>
  static T load(const char* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
  }
  bool same(const Slot& slot, std::string_view s, uint64_t head) const {
    return slot.len == s.size() && slot.head == head &&
           (s.size() <= 8 || keys_[slot.id].substr(8) == s.substr(8));
  }

  void rehash(size_t cap) {
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    for (size_t id = 0; id < keys_.size(); ++id) {
      const std::string_view k = keys_[id];
      size_t i = hash(k) & mask_;
      while (slots_[i].id >= 0) i = (i + 1) & mask_;
      slots_[i] = Slot{head_of(k), static_cast<int32_t>(id), static_cast<uint32_t>(k.size())};
    }
  }

  std::vector<std::string_view> keys_;
  std::vector<Slot> slots_;
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

  // Brings the slot of (left, right) towards the cache ahead of find().
  void prefetch(int32_t left, int32_t right) const {
    if (!slots_.empty()) __builtin_prefetch(&slots_[mix(pack(left, right)) & mask_]);
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
  static uint64_t pack(int32_t l, int32_t r) { return (uint64_t(uint32_t(l)) << 32) | uint32_t(r); }
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

// Token ids of the words already encoded during one tokenize call. Text repeats its words
// (Zipf), so long inputs skip most merge loops. Keys are copied in; the table stops growing
// at its capacity rather than evicting.
class WordCache {
 public:
  // Worth it from kMinBytes of text on; holds up to kMaxWords words of up to kMaxWordBytes.
  static constexpr size_t kMinBytes = 1024;
  static constexpr size_t kMaxWords = 1 << 16;
  static constexpr size_t kMaxWordBytes = 64;

  explicit WordCache(size_t capacity) {
    size_t cap = 16;
    while (cap < capacity * 2) cap <<= 1;
    slots_.assign(cap, Slot{});
    mask_ = cap - 1;
    limit_ = cap / 2;
  }

  // Appends the cached ids of `word` to `out`; false when not cached.
  bool lookup(std::string_view word, std::vector<int32_t>& out) const {
    const uint64_t h = hash_bytes(word.data(), word.size());
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.count == kEmpty) return false;
      if (s.hash == h && key(s) == word) {
        out.insert(out.end(), ids_.begin() + s.begin, ids_.begin() + s.begin + s.count);
        return true;
      }
    }
  }

  void insert(std::string_view word, const int32_t* ids, size_t n) {
    if (size_ >= limit_) return;
    const uint64_t h = hash_bytes(word.data(), word.size());
    size_t i = h & mask_;
    while (slots_[i].count != kEmpty) {
      if (slots_[i].hash == h && key(slots_[i]) == word) return;
      i = (i + 1) & mask_;
    }
    slots_[i] = Slot{h, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(word.size()),
                     static_cast<uint32_t>(ids_.size()), static_cast<uint32_t>(n)};
    keys_.append(word);
    ids_.insert(ids_.end(), ids, ids + n);
    ++size_;
  }

 private:
  static constexpr uint32_t kEmpty = ~0u;
  struct Slot {
    uint64_t hash = 0;
    uint32_t key_begin = 0;
    uint32_t key_size = 0;
    uint32_t begin = 0;
    uint32_t count = kEmpty;
  };
  std::string_view key(const Slot& s) const {
    return std::string_view(keys_).substr(s.key_begin, s.key_size);
  }
  std::vector<Slot> slots_;
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t mask_ = 0;
  size_t limit_ = 0;
  size_t size_ = 0;
};

}  // namespace minnow::text
