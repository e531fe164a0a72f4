// The blocks of a paged KV pool (model::Context with paged = true) and the prefix cache
// over them. A block holds kSlotAlign consecutive positions of one sequence. A block that
// is full is registered under a hash of the whole token prefix it ends (its tokens and its
// parent's key), so a later sequence whose prompt starts with the same tokens - the same
// system prompt, the same conversation so far - takes those blocks instead of evaluating
// them again. Blocks are reference-counted: shared blocks are never written (a sequence only
// writes past its shared prefix, into blocks of its own). A registered block nobody uses
// stays cached, least recently released first out, until its memory is needed.
//
// Not thread-safe: the scheduler's worker thread owns it.
#pragma once

#include <cstdint>
#include <list>
#include <set>
#include <span>
#include <unordered_map>
#include <vector>

namespace minnow::engine {

class BlockPool {
 public:
  static constexpr int kBlock = 64;  // = model::kSlotAlign

  // max_cached: unused registered blocks kept for prefix reuse at most (0: n_blocks / 16, at
  // least 16); beyond it the least recently released are forgotten, so the memory a server
  // touches levels off instead of growing with every distinct prompt until the pool is full.
  explicit BlockPool(int n_blocks, int max_cached = 0);

  int n_blocks() const { return int(meta_.size()); }
  int n_free() const { return int(free_.size()); }      // never used, or released unregistered
  int n_cached() const { return int(lru_.size()); }     // registered, unused: reusable
  int n_used() const { return n_blocks() - n_free() - n_cached(); }
  int n_available() const { return n_free() + n_cached(); }

  // The longest run of registered blocks that spell `tokens` from the start, at most
  // max_blocks; each gets a reference. Returns them in order.
  std::vector<int32_t> match_prefix(std::span<const int32_t> tokens, int max_blocks);
  // A block for a sequence whose last block is `after` (-1: none): the next one when it is
  // free (so a sequence stays one physically contiguous run), else any free one, else the
  // least recently released cached one (forgetting its prefix). -1 when none is left.
  int allocate(int after);
  // Registers block `block` (full, referenced) as ending the prefix tokens[0 .. end), whose
  // previous block is `parent` (-1 for the first). Returns false, changing nothing, when an
  // equal block is already registered (the caller keeps its copy unregistered).
  bool register_full(int block, int parent, std::span<const int32_t> block_tokens);
  // Drops a reference; an unreferenced block goes to the cache if registered, else is freed.
  void release(int block);

  uint64_t prefix_hits() const { return prefix_hits_; }  // blocks reused so far

 private:
  struct Meta {
    int refs = 0;
    bool registered = false;
    uint64_t key = 0;
    int parent = -1;
    std::vector<int32_t> tokens;       // (kBlock) when registered: checked on a hash hit
    std::list<int>::iterator lru_pos;  // when cached
  };
  static uint64_t chain_key(uint64_t parent_key, std::span<const int32_t> tokens);
  void unregister(int block);

  std::vector<Meta> meta_;
  std::set<int> free_;
  std::list<int> lru_;  // cached blocks, least recently released first
  int max_cached_ = 0;
  std::unordered_map<uint64_t, int> by_key_;
  uint64_t prefix_hits_ = 0;
};

}  // namespace minnow::engine
