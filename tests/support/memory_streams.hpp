// Access streams for the cost-model tests: the same runs go to the reference simulator and to
// the fast path (backing::accounted), so the two can be compared.
#pragma once

#include <odma/backing/accounted.hpp>
#include <odma/memory/access_report.hpp>
#include <odma/memory/detail/dram_cost.hpp>
#include <odma/memory/detail/dram_reference.hpp>
#include <odma/memory/memory_model.hpp>
#include <odma/support/random.hpp>

#include <cstdint>
#include <vector>

namespace odma_test {

using odma::memory::access_kind;
using odma::memory::memory_model;
using odma::memory::detail::dram_run;

/// A preset whose fast path calibrates quickly (for tests of the interface, not of precision).
inline memory_model quick(memory_model m) {
    m.calibration_bursts = 1000;
    return m;
}

/// `count` runs of `bytes` at random places aligned to `align`, drawn from `seed`.
inline std::vector<dram_run> random_runs(const memory_model& m, access_kind kind,
                                         std::uint64_t count, std::uint64_t bytes,
                                         std::uint64_t align, std::uint64_t seed) {
    odma::support::splitmix64 rng(seed);
    const std::uint64_t places = (m.capacity_bytes - bytes) / align + 1;
    std::vector<dram_run> runs;
    for (std::uint64_t i = 0; i < count; ++i)
        runs.push_back({kind, rng.below(places) * align, bytes, rng.below(places) * align});
    return runs;
}

/// Feeds runs to an accounted device (a fresh stream) and returns its report.
template <class Device>
odma::memory::access_report account(Device& device, const std::vector<dram_run>& runs) {
    device.reset_report();
    for (const dram_run& r : runs) {
        if (r.kind == access_kind::read)
            device.read(r.offset, r.bytes);
        else if (r.kind == access_kind::write)
            device.write(r.offset, r.bytes);
        else
            device.copy(r.offset, r.source, r.bytes);
    }
    return device.report();
}

/// Effective bandwidth of a reference simulation, as a fraction of the model's peak.
inline double reference_efficiency(const memory_model& m, const std::vector<dram_run>& runs,
                                   bool refresh = true) {
    std::uint64_t bytes = 0;
    for (const dram_run& r : runs)
        bytes += r.bytes;
    const auto result = odma::memory::detail::simulate_reference(m, runs, refresh);
    return double(bytes) / result.makespan_ns / m.peak_bytes_per_ns();
}

}  // namespace odma_test
