#include "engine/block_pool.h"

#include <algorithm>

namespace minnow::engine {

BlockPool::BlockPool(int n_blocks, int max_cached)
    : meta_(std::max(0, n_blocks)),
      max_cached_(max_cached > 0 ? max_cached : std::max(16, n_blocks / 16)) {
  for (int b = 0; b < n_blocks; ++b) free_.insert(b);
}

uint64_t BlockPool::chain_key(uint64_t parent_key, std::span<const int32_t> tokens) {
  // FNV-1a over the parent's key and the token ids; equality is checked on the tokens and
  // the parent block, so a collision can only cost a miss, never a wrong reuse.
  uint64_t h = 1469598103934665603ull ^ parent_key;
  for (const int32_t t : tokens) {
    for (int i = 0; i < 4; ++i) {
      h ^= (uint32_t(t) >> (8 * i)) & 0xff;
      h *= 1099511628211ull;
    }
  }
  return h;
}

std::vector<int32_t> BlockPool::match_prefix(std::span<const int32_t> tokens, int max_blocks) {
  std::vector<int32_t> out;
  uint64_t key = 0;
  int parent = -1;
  for (int i = 0; i < max_blocks && size_t(i + 1) * kBlock <= tokens.size(); ++i) {
    const auto chunk = tokens.subspan(size_t(i) * kBlock, kBlock);
    key = chain_key(key, chunk);
    auto it = by_key_.find(key);
    if (it == by_key_.end()) break;
    Meta& m = meta_[it->second];
    if (m.parent != parent || !std::equal(chunk.begin(), chunk.end(), m.tokens.begin())) break;
    if (m.refs++ == 0) lru_.erase(m.lru_pos);
    out.push_back(it->second);
    parent = it->second;
  }
  prefix_hits_ += out.size();
  return out;
}

int BlockPool::allocate(int after) {
  int b = -1;
  if (!free_.empty()) {
    auto next = after >= 0 ? free_.find(after + 1) : free_.end();
    b = next != free_.end() ? *next : *free_.begin();
    free_.erase(b);
  } else if (!lru_.empty()) {
    b = lru_.front();
    lru_.pop_front();
    unregister(b);
  } else {
    return -1;
  }
  meta_[b].refs = 1;
  return b;
}

bool BlockPool::register_full(int block, int parent, std::span<const int32_t> block_tokens) {
  Meta& m = meta_[block];
  if (m.registered || block_tokens.size() != size_t(kBlock)) return false;
  const uint64_t key = chain_key(parent >= 0 ? meta_[parent].key : 0, block_tokens);
  if (parent >= 0 && !meta_[parent].registered) return false;
  if (by_key_.count(key)) return false;
  m.registered = true;
  m.key = key;
  m.parent = parent;
  m.tokens.assign(block_tokens.begin(), block_tokens.end());
  by_key_[key] = block;
  return true;
}

void BlockPool::unregister(int block) {
  Meta& m = meta_[block];
  if (!m.registered) return;
  by_key_.erase(m.key);
  m.registered = false;
  m.tokens.clear();
  m.parent = -1;
  // Children keyed on this block stay registered but can no longer be reached through
  // match_prefix (their parent check fails against a re-registered block) - they age out.
}

void BlockPool::release(int block) {
  Meta& m = meta_[block];
  if (m.refs <= 0) return;
  if (--m.refs > 0) return;
  if (m.registered) {
    lru_.push_back(block);
    m.lru_pos = std::prev(lru_.end());
  } else {
    free_.insert(block);
  }
  while (int(lru_.size()) > max_cached_) {
    const int old = lru_.front();
    lru_.pop_front();
    unregister(old);
    free_.insert(old);
  }
}

}  // namespace minnow::engine
