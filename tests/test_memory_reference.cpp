// The burst-level reference simulator: timing rules on hand-built streams, and the behaviour the
// cost model must show (streaming below peak, random small reads far below, big runs close).
#include "support/memory_streams.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <vector>

using odma::memory::memory_model;
using odma::memory::detail::simulate_reference;
using odma_test::access_kind;
using odma_test::dram_run;
using odma_test::random_runs;
using odma_test::reference_efficiency;

namespace {

/// `n` addresses on channel 0 of `m`, each in a different bank and in a bank group other than
/// the previous one's (so only tRRD_S and tFAW space their activations).
std::vector<std::uint64_t> distinct_banks(const memory_model& m, std::size_t n) {
    std::vector<std::uint64_t> out;
    std::vector<bool> used(m.banks_per_channel());
    std::uint32_t last_group = ~0u;
    for (std::uint64_t a = 0; out.size() < n && a < m.capacity_bytes; a += m.stripe_bytes()) {
        for (std::uint64_t off = 0; off < m.channel_granule_bytes(); off += m.chunk_bytes()) {
            const auto at = m.locate(a + off);
            if (at.channel != 0 || used[at.bank] || at.bank_group == last_group) continue;
            used[at.bank] = true;
            last_group = at.bank_group;
            out.push_back(a + off);
            break;
        }
    }
    return out;
}

std::vector<dram_run> reads_of(const std::vector<std::uint64_t>& at, std::uint64_t bytes) {
    std::vector<dram_run> runs;
    for (std::uint64_t a : at)
        runs.push_back({access_kind::read, a, bytes, 0});
    return runs;
}

}  // namespace

TEST_CASE("reference: a lone read costs activate + read latency + its bursts") {
    const memory_model m = memory_model::lpddr5_6400();
    const std::vector<dram_run> one_burst{{access_kind::read, 0, 32, 0}};
    auto r = simulate_reference(m, one_burst, false);
    CHECK(r.makespan_ns == doctest::Approx(m.tRCD + m.read_latency + m.burst_ns()));
    CHECK(r.kinds[0].bursts == 1);
    CHECK(r.kinds[0].activations == 1);
    // Two bursts of one bank group are tCCD_L apart.
    const std::vector<dram_run> two_bursts{{access_kind::read, 0, 64, 0}};
    r = simulate_reference(m, two_bursts, false);
    CHECK(r.makespan_ns == doctest::Approx(m.tRCD + m.tCCD_L + m.read_latency + m.burst_ns()));
    CHECK(r.kinds[0].activations == 1);
}

TEST_CASE("reference: another row of the same bank waits for precharge and tRC") {
    const memory_model m = memory_model::lpddr5_6400();
    const auto first = m.locate(0);
    std::uint64_t other = 0;
    for (std::uint64_t a = m.stripe_bytes(); a < m.capacity_bytes; a += m.stripe_bytes()) {
        const auto at = m.locate(a);
        if (at.channel == first.channel && at.bank == first.bank && at.row != first.row) {
            other = a;
            break;
        }
    }
    REQUIRE(other != 0);
    const std::vector<dram_run> runs{{access_kind::read, 0, 32, 0},
                                     {access_kind::read, other, 32, 0}};
    const auto r = simulate_reference(m, runs, false);
    // ACT at 0, precharge at tRAS, next ACT at max(tRC, tRAS + tRP), then its read.
    const double second_act = std::max(m.tRC, m.tRAS + m.tRP);
    CHECK(r.makespan_ns == doctest::Approx(second_act + m.tRCD + m.read_latency + m.burst_ns()));
    CHECK(r.kinds[0].activations == 2);
}

TEST_CASE("reference: at most four activations per tFAW window") {
    const memory_model m = memory_model::lpddr5_6400();
    const auto banks = distinct_banks(m, 5);
    REQUIRE(banks.size() == 5);
    const auto r = simulate_reference(m, reads_of(banks, 32), false);
    CHECK(r.kinds[0].activations == 5);
    // Four activations tRRD apart, the fifth a full tFAW after the first.
    CHECK(r.makespan_ns == doctest::Approx(m.tFAW + m.first_access_ns()));
    // Four fit without waiting for the window.
    const auto four =
        simulate_reference(m, reads_of({banks.begin(), banks.begin() + 4}, 32), false);
    CHECK(four.makespan_ns == doctest::Approx(3 * m.tRRD_S + m.first_access_ns()));
}

TEST_CASE("reference: rows hit after the first burst; a row stays open for the next run") {
    const memory_model m = memory_model::lpddr5_6400();
    // 8 KiB from 0 then the next 8 KiB: 16 KiB touch 128 chunks = 96 rows of the first stripe
    // plus reuse: every (channel, bank group) row opens once.
    const std::vector<dram_run> runs{{access_kind::read, 0, 8192, 0},
                                     {access_kind::read, 8192, 8192, 0}};
    const auto r = simulate_reference(m, runs, false);
    CHECK(r.kinds[0].bursts == 512);
    CHECK(r.kinds[0].activations == m.tuples_per_stripe());
}

TEST_CASE("reference: sequential streaming lands at the refresh-limited fraction of peak") {
    for (const memory_model& m : {memory_model::lpddr5_6400(), memory_model::hbm3()}) {
        CAPTURE(m.name);
        // 20,000 bursts per channel (8-13 refreshes); two channels simulated (they are alike).
        const std::uint64_t bytes = std::uint64_t(20000) * m.channels * m.burst_bytes;
        const std::vector<dram_run> stream{{access_kind::read, 0, bytes, 0}};
        auto first_two = [](std::uint32_t c) { return c < 2; };
        const auto on = simulate_reference(m, stream, true, first_two);
        const auto off = simulate_reference(m, stream, false, first_two);
        const double busy = double(on.channel_bursts[0]) * m.burst_ns();
        const double without = busy / off.channel_finish_ns[0];
        const double with_refresh = busy / on.channel_finish_ns[0];
        // Without refresh, row switches are hidden by the other banks.
        CHECK(without > 0.98);
        CHECK(without <= 1.0);
        // Each refresh costs about refresh_loss_ns() (tRFC + tRP + tRCD + tRTP), the figure
        // the fast path uses.
        const double t = on.channel_finish_ns[0], phase = m.refresh_phase_ns(0);
        const double refreshes = std::floor((t - phase) / m.tREFI) + 1;
        const double per_refresh = (t - off.channel_finish_ns[0]) / refreshes;
        CHECK(per_refresh == doctest::Approx(m.refresh_loss_ns()).epsilon(0.03));
        // Documented in docs/cost-model.md: 93.5% of peak on LPDDR5-6400, 90% on HBM3.
        CHECK(with_refresh == doctest::Approx(without / m.refresh_stretch()).epsilon(0.01));
        CHECK(with_refresh < 0.95);
        CHECK(with_refresh > 0.88);
    }
}

TEST_CASE("reference: cache-line random reads lose a large share, runs of many KiB little") {
    const memory_model m = memory_model::lpddr5_6400();
    const std::uint64_t seq_bytes = std::uint64_t(3000) * m.channels * m.burst_bytes;
    const double seq = reference_efficiency(m, {{access_kind::read, 0, seq_bytes, 0}});
    const double line64 =
        reference_efficiency(m, random_runs(m, access_kind::read, 24000, 64, 64, 7));
    const double sector32 =
        reference_efficiency(m, random_runs(m, access_kind::read, 24000, 32, 32, 8));
    const double kib64 =
        reference_efficiency(m, random_runs(m, access_kind::read, 48, 65536, 65536, 9));
    MESSAGE("lpddr5-6400 of peak: sequential " << seq << ", random 64 KiB " << kib64
                                               << ", random 64 B " << line64 << ", random 32 B "
                                               << sector32);
    // 64 B: an activation (two command slots) and a precharge per line on one command bus.
    CHECK(line64 / seq < 0.85);
    CHECK(sector32 / seq < 0.6);  // 32 B sectors: one activation per burst, tRRD/tFAW bound
    CHECK(kib64 / seq > 0.92);
    // The loss is a property of the run length: 64 B lose several times what 64 KiB lose.
    CHECK((1 - line64 / seq) > 4 * (1 - kib64 / seq));
}

TEST_CASE("reference: the address mapping matters when the controller sees little ahead") {
    // A row of a channel in one bank group (the "simple mapping" of AMD PG313) and a
    // controller that looks 16 bursts ahead: consecutive column commands hit one bank group and
    // wait tCCD_L = 2 bursts. Bank groups interleaved every 128 B do not.
    memory_model simple = memory_model::lpddr5_6400();
    simple.mapping = odma::memory::address_mapping::row_in_bank_group(64);
    memory_model interleaved = memory_model::lpddr5_6400();
    const std::uint64_t bytes = std::uint64_t(2000) * simple.channels * simple.burst_bytes;
    const std::vector<dram_run> stream{{access_kind::read, 0, bytes, 0}};
    simple.scheduler_window = interleaved.scheduler_window = 16;
    CHECK(reference_efficiency(simple, stream, false) < 0.6);
    CHECK(reference_efficiency(interleaved, stream, false) > 0.95);
    // With a deep reorder window (the presets' 128), FR-FCFS interleaves two rows' bank groups
    // and hides most of the difference.
    simple.scheduler_window = interleaved.scheduler_window = 128;
    CHECK(reference_efficiency(simple, stream, false) > 0.9);
}

TEST_CASE("reference: a copy moves every byte twice and turns the bus around") {
    const memory_model m = memory_model::lpddr5_6400();
    const std::uint64_t bytes = 1u << 20;
    const double read_ns =
        simulate_reference(m, std::vector<dram_run>{{access_kind::read, 0, bytes, 0}}, false)
            .makespan_ns;
    const auto copy = simulate_reference(
        m, std::vector<dram_run>{{access_kind::migration, 3ull << 30, bytes, 1ull << 30}}, false);
    CHECK(copy.kinds[2].bursts == 2 * bytes / m.burst_bytes);
    CHECK(copy.makespan_ns > 2 * read_ns);
    CHECK(copy.makespan_ns < 3 * read_ns);
}

TEST_CASE("reference: results are deterministic") {
    const memory_model m = memory_model::hbm3();
    const auto runs = random_runs(m, access_kind::read, 1000, 512, 512, 42);
    const auto a = simulate_reference(m, runs);
    const auto b = simulate_reference(m, runs);
    CHECK(a.makespan_ns == b.makespan_ns);
    CHECK(a.kinds[0].activations == b.kinds[0].activations);
    CHECK(a.channel_finish_ns == b.channel_finish_ns);
}
