// odma/memory/detail/dram_cost.hpp - the fast path of the cost model: O(1) accounting per run,
// derived from the burst-level reference (dram_reference.hpp).
//
// How a run is costed:
//   1. Its bursts are counted exactly and spread over channels exactly (the channel field of
//      the address mapping is a plain modulo of the address).
//   2. Its channel time and activations are (bursts) x (channel-ns, activations per burst),
//      functions of the run's length measured once per model on the reference simulator:
//      streams of runs of 2^i bursts at random, naturally aligned places (the calibration
//      table) and long sequential runs. Lengths between grid points are interpolated in
//      log2(length); a run that starts where the previous run ended continues its stream and
//      costs the sequential rate.
//   3. The stream's DRAM time is the slowest channel's: the time charged to it, plus the first
//      access latency, plus the refreshes that fall inside (each channel's refresh schedule is
//      the reference's; each refresh costs refresh_loss_ns()). Channels work in parallel. Each
//      access kind gets a share in proportion to the channel time it was charged.
// What this leaves out, against the reference: the random spread of per-channel timing in short
// streams (the reference's slowest channel is also its unluckiest), and cross-run effects other
// than continuation (two runs sharing a row or fighting for a bank). Tests check the agreement
// (tests/test_memory_fast.cpp); docs/cost-model.md reports it.
//
// The calibration costs tens of milliseconds per (model, access kind). It runs on first use and
// is shared process-wide (memoised by the model's parameters, under a mutex).
#pragma once

#include <odma/memory/access_report.hpp>
#include <odma/memory/detail/dram_reference.hpp>
#include <odma/memory/memory_model.hpp>
#include <odma/support/random.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace odma::memory::detail {

/// Where a run starts inside its alignment: real runs start at naturally aligned offsets
/// (a 16 KiB block at a multiple of 16 KiB), up to the 4 KiB a page allocator guarantees.
inline std::uint64_t natural_alignment(std::uint64_t bytes, std::uint64_t burst) {
    return std::max<std::uint64_t>(burst, std::min<std::uint64_t>(std::bit_floor(bytes), 4096));
}

/// Rows a run [offset, offset + bytes) opens if every row it touches is closed when it starts,
/// except the first `open_chunks` chunks of its first stripe (already touched by the run it
/// continues). Within a stripe, any tuples_per_stripe() consecutive chunks touch every row the
/// stripe has, so a stripe covered by n chunks opens min(n, tuples_per_stripe()) rows.
/// Returns {rows opened, chunks the run and its predecessors cover in its last stripe}.
inline std::pair<std::uint64_t, std::uint64_t> rows_opened(const memory_model& m,
                                                           std::uint64_t offset,
                                                           std::uint64_t bytes,
                                                           std::uint64_t open_chunks = 0) {
    const std::uint64_t chunk = m.chunk_bytes(), tuples = m.tuples_per_stripe();
    const std::uint64_t per_stripe = m.stripe_bytes() / chunk;
    const std::uint64_t j0 = offset / chunk, j1 = (offset + bytes - 1) / chunk;
    const std::uint64_t s0 = j0 / per_stripe, s1 = j1 / per_stripe;
    auto opened = [&](std::uint64_t had, std::uint64_t added) {
        return std::min(had + added, tuples) - std::min(had, tuples);
    };
    if (s0 == s1) return {opened(open_chunks, j1 - j0 + 1), open_chunks + (j1 - j0 + 1)};
    return {opened(open_chunks, per_stripe - j0 % per_stripe) + (s1 - s0 - 1) * tuples +
                opened(0, j1 % per_stripe + 1),
            j1 % per_stripe + 1};
}

/// What runs of one access kind cost, by run length: channel-ns per burst, and activations as
/// a multiple of the rows the runs open (> 1: bank conflicts inside the controller's window
/// close rows that must be opened again).
struct dram_cost_table {
    struct point {
        double ns = 0;                ///< channel-ns per burst
        double activation_ratio = 1;  ///< reference activations / rows_opened()
    };
    std::vector<std::uint32_t> log2_bursts;  ///< grid, ascending
    std::vector<point> random;               ///< at each grid point, runs at random places
    point sequential;                        ///< streaming

    /// Channel-ns and activation ratio for a run of `bursts` bursts at a random place.
    point random_run(std::uint64_t bursts) const {
        const std::size_t last = random.size() - 1;
        const std::uint64_t top = std::uint64_t(1) << log2_bursts[last];
        const double n = double(bursts);
        if (bursts >= top) {
            const double w = double(top) / n;  // the random start, then streaming
            return {double(top) * random[last].ns + (n - double(top)) * sequential.ns,
                    w * random[last].activation_ratio + (1 - w) * sequential.activation_ratio};
        }
        if (bursts <= 1) return random[0];
        const double x = std::log2(n);
        std::size_t i = 0;
        while (i + 1 < last && log2_bursts[i + 1] <= x)
            ++i;
        const double f = (x - log2_bursts[i]) / double(log2_bursts[i + 1] - log2_bursts[i]);
        return {n * (random[i].ns * (1 - f) + random[i + 1].ns * f),
                random[i].activation_ratio * (1 - f) + random[i + 1].activation_ratio * f};
    }
    /// Channel-ns and activation ratio for a run that continues the previous one.
    point continuation(std::uint64_t bursts) const {
        return {double(bursts) * sequential.ns, sequential.activation_ratio};
    }
};

/// Fill latency the calibration removes and the stream adds back once.
inline double first_access_ns(const memory_model& m, access_kind k) {
    return k == access_kind::write ? m.tRCD + m.write_latency + m.burst_ns() : m.first_access_ns();
}

/// Measures channel-ns per burst of `runs` on the reference (no refresh: the fast path adds
/// refresh per channel), and activations against rows_opened(), simulating only the first few
/// channels: they are statistically like the others. The first-access latency is removed per
/// channel.
inline dram_cost_table::point reference_per_burst(const memory_model& m, access_kind kind,
                                                  const std::vector<dram_run>& runs,
                                                  std::uint32_t sampled) {
    const auto r = simulate_reference(m, std::span<const dram_run>(runs), false,
                                      [&](std::uint32_t c) { return c < sampled; });
    double ns = 0;
    std::uint64_t bursts = 0;
    const double fill = first_access_ns(m, kind);
    for (std::uint32_t c = 0; c < sampled; ++c) {
        if (!r.channel_bursts[c]) continue;
        ns += std::max(0.0, r.channel_finish_ns[c] - fill);
        bursts += r.channel_bursts[c];
    }
    if (!bursts) return {};
    // Rows the runs open in the sampled channels, assuming no conflicts: rows_opened() counts
    // all channels, and every channel's share of rows is its share of bursts here.
    std::uint64_t all_bursts = 0, rows = 0;
    for (const dram_run& run : runs) {
        auto count = [&](std::uint64_t at) {
            rows += rows_opened(m, at, run.bytes).first;
            all_bursts += (at + run.bytes - 1) / m.burst_bytes - at / m.burst_bytes + 1;
        };
        count(kind == access_kind::migration ? run.source : run.offset);
        if (kind == access_kind::migration) count(run.offset);
    }
    const double expected = double(rows) * double(bursts) / double(all_bursts);
    return {ns / double(bursts),
            expected > 0 ? double(r.kinds[std::size_t(kind)].activations) / expected : 1.0};
}

/// Builds the table for one model and access kind from the reference path. `target_bursts` is
/// how many bursts each grid point simulates (statistical precision vs. time); 0 takes the
/// model's calibration_bursts.
inline dram_cost_table calibrate(const memory_model& m, access_kind kind,
                                 std::uint64_t target_bursts = 0) {
    m.validate();
    if (target_bursts == 0) target_bursts = m.calibration_bursts;
    const std::uint32_t sampled = std::min<std::uint32_t>(m.channels, 4);
    const std::uint64_t stripe_bursts = m.stripe_bytes() / m.burst_bytes;
    const auto top = std::max<std::uint32_t>(
        3, std::uint32_t(std::bit_width(2 * stripe_bursts - 1)));  // 2^top >= 2 stripes
    const bool copy = kind == access_kind::migration;
    const std::uint64_t sides = copy ? 2 : 1;
    dram_cost_table t;
    support::splitmix64 rng(0x0d4a5eed ^ (std::uint64_t(kind) << 32));
    std::vector<dram_run> runs;
    // Grid: 1, 2, 4 bursts (where the cost changes fastest), then every factor of 4 up to two
    // stripes (beyond which a run is a random start plus sequential streaming).
    std::vector<std::uint32_t> grid{0, 1, 2};
    for (std::uint32_t i = 4; i < top; i += 2)
        grid.push_back(i);
    grid.push_back(top);
    for (const std::uint32_t i : grid) {
        const std::uint64_t bytes = std::uint64_t(m.burst_bytes) << i;
        const std::uint64_t align = natural_alignment(bytes, m.burst_bytes);
        const std::uint64_t places = (m.capacity_bytes - bytes) / align + 1;
        // Enough runs that the sampled channels see about target_bursts bursts.
        const std::uint64_t count =
            std::max<std::uint64_t>(8, target_bursts * m.channels / (sampled * sides << i));
        runs.clear();
        for (std::uint64_t r = 0; r < count; ++r)
            runs.push_back({kind, rng.below(places) * align, bytes, rng.below(places) * align});
        t.log2_bursts.push_back(i);
        t.random.push_back(reference_per_burst(m, kind, runs, sampled));
    }
    // Sequential streaming: runs long enough that the sampled channels see ~3 x target. A read
    // or write streams from offset 0; a long copy goes between unrelated places, so four are
    // averaged (how src and dst rows collide in the banks depends on where they are).
    const std::uint64_t seq_bytes = std::min<std::uint64_t>(
        m.capacity_bytes / 8, 3 * target_bursts / (sides * sampled) * m.channels * m.burst_bytes);
    runs.clear();
    if (!copy) {
        runs.push_back({kind, 0, seq_bytes, 0});
    } else {
        const std::uint64_t each = seq_bytes / 4 / 4096 * 4096 + 4096;
        const std::uint64_t places = (m.capacity_bytes - each) / 4096 + 1;
        for (int r = 0; r < 4; ++r)
            runs.push_back({kind, rng.below(places) * 4096, each, rng.below(places) * 4096});
    }
    t.sequential = reference_per_burst(m, kind, runs, sampled);
    return t;
}

/// The calibration table of (model, kind), computed on first use and shared process-wide. Two
/// models share a table when they differ only in what the calibration does not see (the name
/// and the accelerator-side discontinuity cost).
inline std::shared_ptr<const dram_cost_table> cost_table(const memory_model& m, access_kind kind) {
    struct entry {
        memory_model model;
        access_kind kind;
        std::shared_ptr<const dram_cost_table> table;
    };
    static std::mutex mutex;
    static std::vector<entry> tables;
    memory_model key = m;
    key.name.clear();
    key.discontinuity_ns = 0;
    const std::lock_guard lock(mutex);
    for (const entry& e : tables)
        if (e.kind == kind && e.model == key) return e.table;
    tables.push_back({key, kind, std::make_shared<const dram_cost_table>(calibrate(m, kind))});
    return tables.back().table;
}

}  // namespace odma::memory::detail
