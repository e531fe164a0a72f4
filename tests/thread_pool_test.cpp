#include "util/thread_pool.h"

#include <gtest/gtest.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace minnow {
namespace {

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

class ThreadPoolTest : public ::testing::TestWithParam<int> {};

TEST_P(ThreadPoolTest, EveryChunkRunsExactlyOnce) {
  ThreadPool pool(GetParam());
  for (int64_t n : {1, 2, 3, 7, 64, 1000}) {
    std::vector<std::atomic<int>> hits(n);
    std::atomic<int> bad_thread{0};
    pool.parallel_for(n, [&](int64_t chunk, int thread) {
      hits[chunk].fetch_add(1);
      if (thread < 0 || thread >= pool.n_threads()) bad_thread.fetch_add(1);
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " chunk=" << i;
    EXPECT_EQ(bad_thread.load(), 0);
  }
}

TEST_P(ThreadPoolTest, ZeroChunksIsANoOp) {
  ThreadPool pool(GetParam());
  int calls = 0;
  pool.parallel_for(0, [&](int64_t, int) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST_P(ThreadPoolTest, ManyRapidDispatches) {
  ThreadPool pool(GetParam());
  std::vector<int64_t> sums(pool.n_threads(), 0);  // per-thread, so no atomics in the chunk
  int64_t expected = 0;
  for (int rep = 0; rep < 20000; ++rep) {
    int64_t n = 1 + rep % 5;
    pool.parallel_for(n, [&](int64_t chunk, int thread) { sums[thread] += chunk + 1; });
    expected += n * (n + 1) / 2;
  }
  int64_t total = 0;
  for (int64_t s : sums) total += s;
  EXPECT_EQ(total, expected);
}

TEST_P(ThreadPoolTest, WritesOfChunksAreVisibleAfterReturn) {
  ThreadPool pool(GetParam());
  std::vector<int> data(4096);
  for (int rep = 0; rep < 200; ++rep) {
    pool.parallel_for(64, [&](int64_t chunk, int) {
      for (int i = 0; i < 64; ++i) data[chunk * 64 + i] = rep;
    });
    for (int v : data) ASSERT_EQ(v, rep);
  }
}

TEST_P(ThreadPoolTest, NestedLoopRunsInline) {
  ThreadPool pool(GetParam());
  std::atomic<int> inner_calls{0};
  std::atomic<int> inner_on_other_thread{0};
  pool.parallel_for(4, [&](int64_t, int outer_thread) {
    pool.parallel_for(8, [&](int64_t, int inner_thread) {
      inner_calls.fetch_add(1);
      (void)outer_thread;
      if (inner_thread != 0) inner_on_other_thread.fetch_add(1);
    });
  });
  EXPECT_EQ(inner_calls.load(), 32);
  EXPECT_EQ(inner_on_other_thread.load(), 0);
}

TEST_P(ThreadPoolTest, ConcurrentDispatchersTakeTurns) {
  ThreadPool pool(GetParam());
  std::atomic<int64_t> total{0};
  auto hammer = [&] {
    for (int rep = 0; rep < 2000; ++rep) {
      pool.parallel_for(3, [&](int64_t chunk, int) { total.fetch_add(chunk + 1); });
    }
  };
  std::thread other(hammer);
  hammer();
  other.join();
  EXPECT_EQ(total.load(), 2 * 2000 * 6);
}

TEST_P(ThreadPoolTest, IdleWorkersSleep) {
  ThreadPool pool(GetParam(), /*spin_micros=*/100);
  pool.parallel_for(16, [](int64_t, int) {});
  double before = process_cpu_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  double used = process_cpu_seconds() - before;
  // Spinning workers would use ~0.2 s each; sleeping ones almost nothing.
  EXPECT_LT(used, 0.05) << "idle pool used " << used << " s of CPU in 0.2 s";
}

TEST_P(ThreadPoolTest, AllThreadsTakePart) {
  ThreadPool pool(GetParam());
  std::vector<std::atomic<int>> by_thread(pool.n_threads());
  std::atomic<int> distinct{0};
  // Each chunk waits (up to a deadline, so a broken pool fails instead of hanging) until every
  // thread has claimed a chunk: only a pool that really runs them concurrently gets there.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  pool.parallel_for(4 * pool.n_threads(), [&](int64_t, int thread) {
    if (by_thread[thread].fetch_add(1) == 0) distinct.fetch_add(1);
    while (distinct.load() < pool.n_threads() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::yield();
    }
  });
  EXPECT_EQ(distinct.load(), pool.n_threads());
}

INSTANTIATE_TEST_SUITE_P(Threads, ThreadPoolTest, ::testing::Values(1, 2, 3),
                         ::testing::PrintToStringParamName());

}  // namespace
}  // namespace minnow
