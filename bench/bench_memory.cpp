// Cost of accounting on the DRAM cost model (backing::accounted over odma/memory/): one read() must
// cost O(1) whatever its length (a serving simulator accounts ~10^4 runs per decode step over
// thousands of steps), report() O(channels), and backing::host's accounting nothing at all.
#include <odma/backing/accounted.hpp>
#include <odma/backing/host.hpp>
#include <odma/memory/access_report.hpp>
#include <odma/memory/detail/dram_cost.hpp>
#include <odma/memory/memory_model.hpp>
#include <odma/support/random.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>

namespace {

using odma::memory::memory_model;

memory_model preset(std::int64_t which) {
    return which == 0 ? memory_model::lpddr5_6400() : memory_model::hbm3();
}

// One read() of state.range(1) bytes at a random 1 KiB-aligned place; a new stream every
// 16,384 reads (about one decode step).
void account_read(benchmark::State& state) {
    const memory_model m = preset(state.range(0));
    const auto bytes = std::uint64_t(state.range(1));
    auto device = odma::backing::make_placement_device(m);
    device.read(0, 64);  // calibrate outside the timed loop
    device.reset_report();
    odma::support::splitmix64 rng(1);
    const std::uint64_t places = (m.capacity_bytes - bytes) / 1024;
    std::uint64_t n = 0;
    for (auto _ : state) {
        device.read(rng.below(places) * 1024, bytes);
        if (++n % 16384 == 0) device.reset_report();
    }
    benchmark::DoNotOptimize(device.report().all().total_ns());
    state.SetLabel(m.name);
}
BENCHMARK(account_read)
    ->ArgsProduct({{0, 1}, {64, 16 << 10, 1 << 20, 4 << 20}})
    ->ArgNames({"preset", "bytes"});

// report() after a step of 16,384 runs: O(channels) once, then cached.
void report_after_step(benchmark::State& state) {
    const memory_model m = preset(state.range(0));
    auto device = odma::backing::make_placement_device(m);
    for (std::uint64_t i = 0; i < 16384; ++i)
        device.read(i * 65536, 16384);
    for (auto _ : state) {
        device.read(0, 64);  // make the report stale
        benchmark::DoNotOptimize(device.report().all().total_ns());
    }
    state.SetLabel(m.name);
}
BENCHMARK(report_after_step)->Arg(0)->Arg(1)->ArgNames({"preset"});

// The zero-cost no-op: host's read/write are empty inline functions.
void host_read_is_free(benchmark::State& state) {
    odma::backing::host h(1 << 20);
    std::uint64_t i = 0;
    for (auto _ : state) {
        h.read(i++ % 1024 * 1024, 1024);
        benchmark::ClobberMemory();
    }
}
BENCHMARK(host_read_is_free);

// One calibration (process-wide, once per model and access kind), for scale.
void calibrate_read(benchmark::State& state) {
    const memory_model m = preset(state.range(0));
    for (auto _ : state)
        benchmark::DoNotOptimize(
            odma::memory::detail::calibrate(m, odma::memory::access_kind::read));
    state.SetLabel(m.name);
}
BENCHMARK(calibrate_read)->Arg(0)->Arg(1)->ArgNames({"preset"})->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
