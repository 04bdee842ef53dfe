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
#include "bench_support.hpp"

#include <odma/synchronized.hpp>

#include <benchmark/benchmark.h>

#include <memory>
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

void shared_per_call(benchmark::State& state) {
    if (state.thread_index() == 0)
        shared = std::make_unique<shared_kv>(make_config(), odma::predict::constant{},
                                             odma::bucket::fixed::uniform(16, max_tokens),
                                             odma::backing::host(arena_bytes(state.threads())));
    std::size_t next = std::size_t(state.thread_index()) * 7919;
    for (auto _ : state)
        lifecycle(*shared, next);
    state.SetItemsProcessed(state.iterations() * 10);
    if (state.thread_index() == 0) shared.reset();
}

void shared_batched(benchmark::State& state) {
    if (state.thread_index() == 0)
        shared = std::make_unique<shared_kv>(make_config(), odma::predict::constant{},
                                             odma::bucket::fixed::uniform(16, max_tokens),
                                             odma::backing::host(arena_bytes(state.threads())));
    std::size_t next = std::size_t(state.thread_index()) * 7919;
    for (auto _ : state)
        shared->locked([&](kv_t& kv) { lifecycle(kv, next); });
    state.SetItemsProcessed(state.iterations() * 10);
    if (state.thread_index() == 0) shared.reset();
}

void private_no_lock(benchmark::State& state) {
    kv_t kv(make_config(), odma::predict::constant{}, odma::bucket::fixed::uniform(16, max_tokens),
            odma::backing::host(arena_bytes(1)));
    std::size_t next = std::size_t(state.thread_index()) * 7919;
    for (auto _ : state)
        lifecycle(kv, next);
    state.SetItemsProcessed(state.iterations() * 10);
}

}  // namespace

BENCHMARK(shared_per_call)->ThreadRange(1, 4)->UseRealTime();
BENCHMARK(shared_batched)->ThreadRange(1, 4)->UseRealTime();
BENCHMARK(private_no_lock)->ThreadRange(1, 4)->UseRealTime();

BENCHMARK_MAIN();
