// The fast path (O(1) per run, calibrated on the reference) against the reference simulator on
// streams it was not calibrated on: other seeds, lengths between grid points, mixtures,
// continuations, writes and copies.
#include "support/memory_streams.hpp"

#include <odma/memory/accountant.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

using odma::memory::memory_model;
using odma::memory::detail::simulate_reference;
using odma_test::access_kind;
using odma_test::dram_run;
using odma_test::random_runs;

namespace {

struct comparison {
    double fast_ns, reference_ns;
    std::uint64_t fast_acts, reference_acts;
    double error() const { return fast_ns / reference_ns - 1; }
};

/// Runs `runs` through the fast path and the reference. With `sampled` < channels, compares the
/// summed time of the first `sampled` channels (the reference simulates only those: channels
/// are independent); otherwise the stream's time (its slowest channel), as report() gives it.
comparison compare(const memory_model& m, const std::vector<dram_run>& runs,
                   std::uint32_t sampled) {
    odma::memory::accountant fast(m);
    for (const dram_run& r : runs) {
        if (r.kind == access_kind::migration)
            fast.copy(r.offset, r.source, r.bytes);
        else
            fast.access(r.kind, r.offset, r.bytes);
    }
    const auto ref =
        simulate_reference(m, runs, true, [&](std::uint32_t c) { return c < sampled; });
    const auto all = fast.report().all();
    comparison c{0, 0, 0, 0};
    if (sampled >= m.channels) {
        c.fast_ns = all.dram_ns;
        c.reference_ns = ref.makespan_ns;
    } else {
        for (std::uint32_t ch = 0; ch < sampled; ++ch) {
            c.fast_ns += fast.channel_ns(ch);
            c.reference_ns += ref.channel_finish_ns[ch];
        }
    }
    // Activations: the fast path's total scaled to the sampled channels' share of bursts. It
    // does not count rows re-opened after a refresh closed them (a few per channel per tREFI;
    // docs/cost-model.md).
    std::uint64_t ref_bursts = 0;
    for (const auto& k : ref.kinds) {
        ref_bursts += k.bursts;
        c.reference_acts += k.activations - k.reopened_after_refresh;
    }
    if (sampled >= m.channels) CHECK(all.bursts == ref_bursts);  // burst counts are exact
    c.fast_acts =
        std::uint64_t(double(all.activations) * double(ref_bursts) / double(all.bursts) + 0.5);
    return c;
}

/// Random runs of mixed lengths, none of them a calibration grid point.
std::vector<dram_run> mixed_runs(const memory_model& m, std::uint64_t count, std::uint64_t seed) {
    odma::support::splitmix64 rng(seed);
    const std::uint64_t sizes[] = {96, 1536, 12288, 16384, 100000};
    std::vector<dram_run> runs;
    for (std::uint64_t i = 0; i < count; ++i) {
        const std::uint64_t bytes = sizes[rng.below(5)];
        const std::uint64_t place = rng.below((m.capacity_bytes - bytes) / 32) * 32;
        runs.push_back({access_kind::read, place, bytes, 0});
    }
    return runs;
}

/// 16 KiB blocks of which about half continue the previous block (a paged layout whose free
/// list hands out neighbours), the rest anywhere.
std::vector<dram_run> paged_runs(const memory_model& m, std::uint64_t count, std::uint64_t seed) {
    odma::support::splitmix64 rng(seed);
    const std::uint64_t block = 16384;
    std::vector<dram_run> runs;
    std::uint64_t at = 0;
    for (std::uint64_t i = 0; i < count; ++i) {
        if (i == 0 || rng.below(2) == 0 || at + block > m.capacity_bytes)
            at = rng.below(m.capacity_bytes / block) * block;
        runs.push_back({access_kind::read, at, block, 0});
        at += block;
    }
    return runs;
}

/// Time within `tolerance` (copies: 1.5 x), activations within 5% (copies: 15%). Writes and
/// copies only with `all_kinds` (each access kind calibrates once per process).
void check_agreement(const memory_model& m, std::uint32_t sampled, double tolerance,
                     bool all_kinds) {
    const std::uint64_t per_channel = 2000;  // bursts per channel in each stream
    struct named {
        std::string name;
        std::vector<dram_run> runs;
        bool copies = false;
    };
    const std::uint64_t total = per_channel * m.channels;  // bursts in each stream
    std::vector<named> streams{
        {"random 64 B", random_runs(m, access_kind::read, total / 2, 64, 64, 101)},
        {"random 16 KiB", random_runs(m, access_kind::read, total / 512, 16384, 16384, 102)},
        {"sequential", {{access_kind::read, 4096, total * m.burst_bytes, 0}}},
        {"mixed lengths", mixed_runs(m, total / 300, 103)},
        {"paged, half continuing", paged_runs(m, total / 512, 104)},
    };
    if (all_kinds) {
        streams.push_back({"random 2 KiB writes",
                           random_runs(m, access_kind::write, total / 64, 2048, 2048, 105)});
        streams.push_back({"random 64 KiB copies",
                           random_runs(m, access_kind::migration, total / 4096, 65536, 4096, 106),
                           true});
    }
    for (const named& s : streams) {
        const comparison c = compare(m, s.runs, sampled);
        MESSAGE(m.name << " " << s.name << ": fast " << c.fast_ns << " ns, reference "
                       << c.reference_ns << " ns (" << 100 * c.error() << "%), activations "
                       << c.fast_acts << " vs " << c.reference_acts);
        CAPTURE(s.name);
        CHECK(std::abs(c.error()) < (s.copies ? 1.5 : 1.0) * tolerance);
        CHECK(double(c.fast_acts) ==
              doctest::Approx(double(c.reference_acts)).epsilon(s.copies ? 0.15 : 0.05));
    }
}

}  // namespace

// The stream time as reported (the slowest of all 24 channels) on the main preset; per-channel
// times on 8 channels of the others (160 HBM3 channels would make the reference slow).
TEST_CASE("fast path agrees with the reference: lpddr5-6400, whole stream") {
    check_agreement(memory_model::lpddr5_6400(), 24, 0.05, true);
}
TEST_CASE("fast path agrees with the reference: lpddr5x-8533, per channel") {
    check_agreement(memory_model::lpddr5x_8533(), 8, 0.05, false);
}
TEST_CASE("fast path agrees with the reference: hbm3, per channel") {
    check_agreement(memory_model::hbm3(), 8, 0.05, false);
}
