#include "util/thread_pool.h"

#include <algorithm>
#include <cassert>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace minnow {
namespace {

// The pool whose chunk the current thread is running, if any (guards nested loops).
thread_local const ThreadPool* tls_running_pool = nullptr;

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#endif
}

// Spins until `pred()` holds or `spin_micros` pass; returns whether it holds. The clock is
// read every 64 polls only: a pause is tens of nanoseconds, a clock read about as much.
template <typename Pred>
bool spin_until(Pred pred, int spin_micros) {
  if (pred()) return true;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(spin_micros);
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return pred();
  }
}

constexpr uint64_t pack_claim(uint32_t generation, uint32_t unclaimed) {
  return (static_cast<uint64_t>(generation) << 32) | unclaimed;
}

}  // namespace

ThreadPool::ThreadPool(int n_threads, int spin_micros)
    : n_threads_(std::max(1, n_threads)), spin_micros_(std::max(0, spin_micros)) {
  workers_.reserve(n_threads_ - 1);
  for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { worker_main(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(dispatch_mutex_);
    stop_.store(true, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
    generation_.notify_all();
  }
  for (auto& w : workers_) w.join();
}

// Claims and runs chunks of job `generation` until none is left. Chunks are handed out from
// the last to the first (the low half of claim_ counts down).
void ThreadPool::work(uint32_t generation, int thread) {
  const ThreadPool* outer = tls_running_pool;
  tls_running_pool = this;
  uint64_t v = claim_.load(std::memory_order_acquire);
  for (;;) {
    if ((v >> 32) != generation || static_cast<uint32_t>(v) == 0) break;
    // acquire: a successful claim sees the job fields written before the job was published.
    if (!claim_.compare_exchange_weak(v, v - 1, std::memory_order_acquire,
                                      std::memory_order_acquire)) {
      continue;
    }
    uint32_t chunk = static_cast<uint32_t>(v) - 1;
    fn_(ctx_, chunk, thread);
    // release: the chunk's writes are visible to the dispatcher once it sees the count.
    if (unfinished_.fetch_sub(1, std::memory_order_acq_rel) == 1) unfinished_.notify_one();
    v = claim_.load(std::memory_order_acquire);
  }
  tls_running_pool = outer;
}

void ThreadPool::worker_main(int thread) {
  uint32_t seen = 0;
  for (;;) {
    // Wait for a new generation: spin first, then sleep in the kernel.
    if (!spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; },
                    spin_micros_)) {
      while (generation_.load(std::memory_order_acquire) == seen) {
        generation_.wait(seen, std::memory_order_acquire);
      }
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_relaxed)) return;
    work(seen, thread);
  }
}

void ThreadPool::run(int64_t n_chunks, ChunkFn fn, void* ctx) {
  if (n_chunks <= 0) return;
  assert(n_chunks <= 0xffffffffLL);
  // Inline when there is no one to share with, when there is a single chunk (waking a worker
  // would cost more than it saves), or when called from inside a chunk of a loop: a nested
  // dispatch on this pool would wait for workers that are busy running the outer loop.
  if (n_threads_ == 1 || n_chunks == 1 || tls_running_pool != nullptr) {
    const ThreadPool* outer = tls_running_pool;
    tls_running_pool = this;
    for (int64_t c = 0; c < n_chunks; ++c) fn(ctx, c, 0);
    tls_running_pool = outer;
    return;
  }

  std::lock_guard<std::mutex> lock(dispatch_mutex_);
  auto n = static_cast<uint32_t>(n_chunks);
  fn_ = fn;
  ctx_ = ctx;
  unfinished_.store(n, std::memory_order_relaxed);
  uint32_t generation = generation_.load(std::memory_order_relaxed) + 1;
  // The release publishes the job fields to every worker whose claim reads this value.
  claim_.store(pack_claim(generation, n), std::memory_order_release);
  generation_.store(generation, std::memory_order_release);
  generation_.notify_all();

  work(generation, 0);

  // Wait for the chunks other threads claimed. Workers that never woke up are not waited
  // for: claim_ already tells them this job has nothing left.
  if (!spin_until([&] { return unfinished_.load(std::memory_order_acquire) == 0; }, spin_micros_)) {
    for (uint32_t u; (u = unfinished_.load(std::memory_order_acquire)) != 0;) unfinished_.wait(u);
  }
}

}  // namespace minnow
