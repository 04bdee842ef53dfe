// Hot-path cost of the composed allocator as the number of live leases grows.
#include <odma/odma.hpp>

#include <benchmark/benchmark.h>

#include <random>
#include <vector>

namespace {

using static_kv =
    odma::allocator<odma::predict::constant, odma::bucket::fixed, odma::backing::host>;

// admit + release of one request while `live` other leases stay allocated.
void admit_release(benchmark::State& state) {
    const auto live = static_cast<std::uint32_t>(state.range(0));
    constexpr std::uint32_t max_tokens = 4096;
    const odma::config cfg{
        .bytes_per_token = 64, .max_tokens = max_tokens, .safety_pool_fraction = 0.05};
    // Room for every live lease at its average size plus slack; bytes are never touched.
    static_kv kv(cfg, {}, odma::bucket::fixed::uniform(16, max_tokens),
                 odma::backing::host(std::size_t(live + 64) * 640 * cfg.bytes_per_token));
    std::mt19937 rng(1);
    std::vector<odma::lease> held;
    held.reserve(live);
    for (std::uint32_t i = 0; i < live; ++i) {
        auto l = kv.admit({.id = i,
                           .prompt_tokens = std::uint32_t(1 + rng() % 300),
                           .max_new_tokens = std::uint32_t(1 + rng() % 300)});
        if (!l) {
            state.SkipWithError("arena too small for the live set");
            return;
        }
        held.push_back(*l);
    }
    std::uint64_t id = live;
    for (auto _ : state) {
        auto l = kv.admit({.id = id++, .prompt_tokens = 100, .max_new_tokens = 200});
        benchmark::DoNotOptimize(l);
        kv.release(*l, 50);
    }
    state.counters["live"] = live;
}
BENCHMARK(admit_release)->RangeMultiplier(10)->Range(10, 100000);

}  // namespace

BENCHMARK_MAIN();
