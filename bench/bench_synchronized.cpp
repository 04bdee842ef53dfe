// odma::synchronized under contention: 1, 2 and 4 threads sharing one allocator.
//
// Each iteration is one request's life on the calling thread: admit (prompt from the Azure
// trace), 8 extends of 16 tokens, release: 10 allocator calls (items_per_second counts calls,
// summed over threads).
//
//   shared/per_call     every call takes the mutex (the plain synchronized interface)
//   shared/batched      the whole lifecycle under one lock, through locked()
//   private/no_lock     each thread its own allocator with 1/threads of the arena: the ceiling
//                       a sharded design could reach, paid for by splitting capacity
//
// Google Benchmark's rows come first; then a summary measured here on wall-clock time (total
// calls per second of all threads, medians of --odma_rounds=R runs, --odma_lifecycles=N per
// thread), which is the figure to quote: with more threads than cores, per-thread timings of
// Google Benchmark are hard to read.
#include "bench_support.hpp"

#include <odma/synchronized.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

namespace {

using kv_t = odma::allocator<odma::predict::constant, odma::bucket::fixed, odma::backing::host>;
using shared_kv = odma::synchronized<kv_t>;

constexpr std::uint32_t max_tokens = 8192;
constexpr std::size_t bytes_per_token = 64;
constexpr std::uint32_t live_per_thread = 64;

odma::config make_config() {
    return {
        .bytes_per_token = bytes_per_token, .max_tokens = max_tokens, .safety_pool_fraction = 0.1};
}
std::size_t arena_bytes(unsigned threads) {
    return std::size_t(threads) * live_per_thread * 2 * max_tokens * bytes_per_token;
}

const std::vector<odma_bench::sized_request>& requests() {
    static const auto r = odma_bench::azure_requests(max_tokens - 200);
    return r;
}

/// One request's life through `kv`, whose admit/extend/release are called directly.
template <class Kv>
void lifecycle(Kv& kv, std::size_t& next) {
    const auto& r = requests()[next++ % requests().size()];
    auto l = kv.admit({.id = next, .prompt_tokens = r.prompt, .max_new_tokens = 128});
    if (!l) return;
    for (std::uint32_t t = 1; t <= 8; ++t)
        benchmark::DoNotOptimize(kv.extend(*l, r.prompt + 16 * t));
    kv.release(*l, 128);
}

std::unique_ptr<shared_kv> shared;  // created by thread 0 before the timed loop

/// An allocator (plain or synchronized) with room for `threads` threads' requests.
template <class Kv>
std::unique_ptr<Kv> make_kv(unsigned threads) {
    return std::make_unique<Kv>(make_config(), odma::predict::constant{},
                                odma::bucket::fixed::uniform(16, max_tokens),
                                odma::backing::host(arena_bytes(threads)));
}

/// One lifecycle of the given kind: 0 shared, lock per call; 1 shared, one lock; 2 private.
void run_kind(int kind, shared_kv* one, kv_t* own, std::size_t& next) {
    if (kind == 0) lifecycle(*one, next);
    if (kind == 1) one->locked([&](kv_t& kv) { lifecycle(kv, next); });
    if (kind == 2) lifecycle(*own, next);
}

void run_benchmark(benchmark::State& state, int kind) {
    if (state.thread_index() == 0 && kind < 2) shared = make_kv<shared_kv>(state.threads());
    const auto own = kind == 2 ? make_kv<kv_t>(1) : nullptr;
    std::size_t next = std::size_t(state.thread_index()) * 7919;
    for (auto _ : state)
        run_kind(kind, shared.get(), own.get(), next);
    state.SetItemsProcessed(state.iterations() * 10);
    if (state.thread_index() == 0) shared.reset();
}

void shared_per_call(benchmark::State& state) {
    run_benchmark(state, 0);
}
void shared_batched(benchmark::State& state) {
    run_benchmark(state, 1);
}
void private_no_lock(benchmark::State& state) {
    run_benchmark(state, 2);
}

/// Total allocator calls per second with `threads` threads each running `lifecycles`
/// lifecycles of the given kind, on wall-clock time (the threads start together).
double calls_per_second(int kind, unsigned threads, std::size_t lifecycles) {
    const auto one = kind < 2 ? make_kv<shared_kv>(threads) : nullptr;
    std::atomic<unsigned> ready{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
            const auto own = kind == 2 ? make_kv<kv_t>(1) : nullptr;
            std::size_t next = t * 7919;
            ++ready;
            while (!go.load())
                std::this_thread::yield();
            for (std::size_t i = 0; i < lifecycles; ++i)
                run_kind(kind, one.get(), own.get(), next);
        });
    while (ready.load() < threads)
        std::this_thread::yield();
    const auto t0 = std::chrono::steady_clock::now();
    go = true;
    for (auto& th : pool)
        th.join();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return 10.0 * double(lifecycles) * threads / s;
}

/// Medians of `rounds` runs, in million calls per second, for 1, 2 and 4 threads.
void summary(int rounds, std::size_t lifecycles) {
    std::printf(
        "\nsummary: million allocator calls per second, all threads together (median of %d "
        "runs of %zu lifecycles per thread; %u hardware threads)\n",
        rounds, lifecycles, std::thread::hardware_concurrency());
    std::printf("%8s %16s %16s %20s\n", "threads", "shared/per_call", "shared/batched",
                "private/no_lock");
    for (const unsigned threads : {1u, 2u, 4u}) {
        double m[3];
        for (int kind = 0; kind < 3; ++kind) {
            std::vector<double> v;
            for (int r = 0; r < rounds; ++r)
                v.push_back(calls_per_second(kind, threads, lifecycles) / 1e6);
            std::sort(v.begin(), v.end());
            m[kind] = v[v.size() / 2];
        }
        std::printf("%8u %16.1f %16.1f %20.1f\n", threads, m[0], m[1], m[2]);
    }
}

}  // namespace

BENCHMARK(shared_per_call)->ThreadRange(1, 4)->UseRealTime();
BENCHMARK(shared_batched)->ThreadRange(1, 4)->UseRealTime();
BENCHMARK(private_no_lock)->ThreadRange(1, 4)->UseRealTime();

int main(int argc, char** argv) {
    const int rounds = std::stoi(odma_bench::take_flag(argc, argv, "odma_rounds", "5"));
    const auto lifecycles =
        std::stoul(odma_bench::take_flag(argc, argv, "odma_lifecycles", "200000"));
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    if (rounds > 0) summary(rounds, lifecycles);
    return 0;
}
