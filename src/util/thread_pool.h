// A persistent pool of worker threads for data-parallel loops on the hot path (matmuls,
// attention heads). One dispatch costs a store to a shared generation counter plus one
// atomic per chunk, so it can be used for every matmul of a decode step.
//
// Workers that find no work spin briefly (so back-to-back dispatches do not pay a wake-up),
// then sleep on the counter (futex via std::atomic::wait) so an idle pool burns no CPU.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace minnow {

class ThreadPool {
 public:
  static constexpr int kDefaultSpinMicros = 100;

  // `n_threads` counts the calling thread: ThreadPool(1) has no workers and runs every
  // loop inline. `spin_micros` bounds how long an idle worker polls before sleeping.
  explicit ThreadPool(int n_threads, int spin_micros = kDefaultSpinMicros);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }

  // Calls fn(chunk, thread) for every chunk in [0, n_chunks) and returns when all have run.
  // `thread` in [0, n_threads()) names the thread running the chunk (0 = the caller), for
  // per-thread scratch. Chunks are claimed one at a time from a shared counter, so a thread
  // slowed down by another process does not hold the others up: make chunks coarse enough
  // (a few per thread) that one claim is negligible next to a chunk's work.
  //
  // fn must not throw. Called from inside a chunk (a nested loop), or while another thread
  // is dispatching on this pool, it stays correct: nested loops run inline on the calling
  // thread, concurrent callers take turns. n_chunks must fit in 32 bits.
  template <typename Fn>
  void parallel_for(int64_t n_chunks, Fn&& fn) {
    using F = std::remove_reference_t<Fn>;
    run(
        n_chunks,
        [](void* ctx, int64_t chunk, int thread) { (*static_cast<F*>(ctx))(chunk, thread); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

 private:
  using ChunkFn = void (*)(void* ctx, int64_t chunk, int thread);

  void run(int64_t n_chunks, ChunkFn fn, void* ctx);
  void worker_main(int thread);
  void work(uint32_t generation, int thread);

  const int n_threads_;
  const int spin_micros_;
  std::vector<std::thread> workers_;
  std::mutex dispatch_mutex_;  // one dispatch at a time

  // The current job. Written by the dispatcher only while no chunk is in flight, read by a
  // worker only after it has claimed a chunk of that job.
  ChunkFn fn_ = nullptr;
  void* ctx_ = nullptr;
  std::atomic<bool> stop_{false};

  // Separate cache lines: workers poll generation_ while they hammer claim_.
  // generation_ wakes the workers (32 bits: the futex word). claim_ holds the generation in
  // its high half and the number of unclaimed chunks in its low half; a worker claims the
  // next chunk with a compare-and-swap, so one that wakes late (descheduled by another
  // process) can never claim a chunk of a later job and nobody has to wait for it.
  alignas(64) std::atomic<uint32_t> generation_{0};
  alignas(64) std::atomic<uint64_t> claim_{0};
  alignas(64) std::atomic<uint32_t> unfinished_{0};  // chunks of the current job not yet done
};

}  // namespace minnow
