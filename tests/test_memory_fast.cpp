// The fast path (O(1) per run, calibrated on the reference) against the reference simulator on
// streams it was not calibrated on: other seeds, lengths between grid points, mixtures,
// continuations, writes and copies.
#include "support/memory_streams.hpp"

#include <odma/memory/accountant.hpp>
#include <odma/memory/detail/divider.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
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

// --- The fast path's arithmetic is exact ---------------------------------------------------
// accountant does no division and no logarithm per run (detail::divider, and a memo of what a
// run of n bursts costs); its figures must be bit for bit those of the plain arithmetic, kept
// here as plain_accountant (the accountant as it was before those shortcuts). The comparison
// is ==, not approximate: the simulator's published tables must not move.

namespace {

/// The accountant with every division and every random_run() done in full, per run.
class plain_accountant {
public:
    explicit plain_accountant(memory_model m) : m_(std::move(m)) {
        m_.validate();
        granule_bursts_ = m_.channel_granule_bytes() / m_.burst_bytes;
        for (auto& k : kinds_)
            k.diff.assign(m_.channels + 1, 0.0);
        load_.assign(m_.channels, 0.0);  // report() then never allocates
    }

    const memory_model& model() const noexcept { return m_; }

    /// A read or write run [offset, offset + bytes); bytes > 0.
    void access(odma::memory::access_kind kind, std::uint64_t offset, std::uint64_t bytes) {
        kind_state& k = kinds_[std::size_t(kind)];
        const std::uint64_t first = offset / m_.burst_bytes;
        const std::uint64_t last = (offset + bytes - 1) / m_.burst_bytes;
        const std::uint64_t bursts = last - first + 1;
        const odma::memory::detail::dram_cost_table& t = table(kind);
        const bool continues = offset == last_end_;
        const auto cost = continues ? t.continuation(bursts) : t.random_run(bursts);
        spread(k, first, last, cost.ns / double(bursts));
        record(k, bytes, bursts, cost.ns,
               cost.activation_ratio * double(opens(offset, bytes, continues)));
    }

    /// A copy of `bytes` from `src` to `dst`: its reads and writes, costed as one migration.
    void copy(std::uint64_t dst, std::uint64_t src, std::uint64_t bytes) {
        kind_state& k = kinds_[std::size_t(odma::memory::access_kind::migration)];
        const std::uint64_t rf = src / m_.burst_bytes, rl = (src + bytes - 1) / m_.burst_bytes;
        const std::uint64_t wf = dst / m_.burst_bytes, wl = (dst + bytes - 1) / m_.burst_bytes;
        const std::uint64_t bursts = (rl - rf + 1) + (wl - wf + 1);
        // The table is by copy length (bursts of one side) and per burst moved (both sides).
        const auto cost = table(odma::memory::access_kind::migration).random_run(rl - rf + 1);
        const double ns = cost.ns * double(bursts) / double(rl - rf + 1);
        spread(k, rf, rl, ns / double(bursts));
        spread(k, wf, wl, ns / double(bursts));
        const std::uint64_t rows = opens(src, bytes, false) + opens(dst, bytes, false);
        last_end_ = no_run;
        record(k, bytes, bursts, ns, cost.activation_ratio * double(rows));
    }

    /// Starts a new stream.
    void reset() noexcept {
        for (auto& k : kinds_) {
            k.totals = {};
            k.charged_ns = k.activations = k.uniform = 0;
            std::fill(k.diff.begin(), k.diff.end(), 0.0);
        }
        last_end_ = stripe_ = no_run;
        dirty_ = true;
    }

    /// The stream so far. Costs O(channels) after new runs, O(1) otherwise.
    const odma::memory::access_report& report() const noexcept {
        if (dirty_) summarise();
        return report_;
    }

    /// Time channel `c` needs for the stream so far, refresh and first access included.
    double channel_ns(std::uint32_t c) const noexcept {
        if (dirty_) summarise();
        return channel_time(c, load_[c]);
    }

private:
    static constexpr std::uint64_t no_run = ~std::uint64_t(0);

    struct kind_state {
        odma::memory::access_totals totals;  ///< counts (times and activations filled in report())
        double charged_ns = 0;               ///< channel-ns charged to this kind, all channels
        double activations = 0;              ///< expected activations
        double uniform = 0;                  ///< channel-ns charged to every channel
        std::vector<double> diff;            ///< difference array of the per-channel remainder
    };

    const odma::memory::detail::dram_cost_table& table(odma::memory::access_kind kind) {
        auto& t = tables_[std::size_t(kind)];
        if (!t) t = odma::memory::detail::cost_table(m_, kind);
        return *t;
    }

    void record(kind_state& k, std::uint64_t bytes, std::uint64_t bursts, double ns,
                double activations) {
        k.totals.bytes += bytes;
        k.totals.bursts += bursts;
        k.totals.runs += 1;
        k.charged_ns += ns;
        k.activations += activations;
        dirty_ = true;
    }

    /// Rows the run opens; a run continuing the previous one finds that run's rows of the same
    /// stripe open (and its first chunk already touched when it starts mid-chunk).
    std::uint64_t opens(std::uint64_t offset, std::uint64_t bytes, bool continues) {
        const std::uint64_t chunk = m_.chunk_bytes();
        const std::uint64_t per_stripe = m_.stripe_bytes() / chunk;
        std::uint64_t open = 0;
        if (continues && offset / chunk / per_stripe == stripe_) {
            open = stripe_chunks_;
            if (offset % chunk != 0) {  // the first chunk is the previous run's last
                const std::uint64_t skip = std::min<std::uint64_t>(bytes, chunk - offset % chunk);
                offset += skip;
                bytes -= skip;
            }
        }
        last_end_ = offset + bytes;
        if (bytes == 0) return 0;
        const auto [rows, covered] = odma::memory::detail::rows_opened(m_, offset, bytes, open);
        stripe_ = (offset + bytes - 1) / chunk / per_stripe;
        stripe_chunks_ = covered;
        return rows;
    }

    /// Charges `per_burst` channel-ns to the channel of every burst in [first, last], in O(1):
    /// whole rounds over all channels go to `uniform`, the rest to a difference array.
    void spread(kind_state& k, std::uint64_t first, std::uint64_t last, double per_burst) {
        const std::uint64_t g0 = first / granule_bursts_, g1 = last / granule_bursts_;
        const std::uint32_t channels = m_.channels;
        if (g0 == g1) {
            point(k, std::uint32_t(g0 % channels), double(last - first + 1) * per_burst);
            return;
        }
        point(k, std::uint32_t(g0 % channels),
              double(granule_bursts_ - first % granule_bursts_) * per_burst);
        point(k, std::uint32_t(g1 % channels), double(last % granule_bursts_ + 1) * per_burst);
        const std::uint64_t full = g1 - g0 - 1;
        const double per_granule = double(granule_bursts_) * per_burst;
        k.uniform += double(full / channels) * per_granule;
        const auto rest = std::uint32_t(full % channels);
        const auto start = std::uint32_t((g0 + 1) % channels);
        if (rest == 0) return;
        if (start + rest <= channels) {
            k.diff[start] += per_granule;
            k.diff[start + rest] -= per_granule;
        } else {
            k.diff[start] += per_granule;
            k.diff[channels] -= per_granule;
            k.diff[0] += per_granule;
            k.diff[start + rest - channels] -= per_granule;
        }
    }
    static void point(kind_state& k, std::uint32_t c, double ns) {
        k.diff[c] += ns;
        k.diff[c + 1] -= ns;
    }

    /// A channel busy for `load` ns of bursts: first access, the load, and every refresh that
    /// falls before it is done (the fixed point of T = fill + load + refreshes(T) x loss).
    double channel_time(std::uint32_t c, double load) const noexcept {
        if (load <= 0) return 0.0;
        const double phase = m_.refresh_phase_ns(c), loss = m_.refresh_loss_ns();
        auto refreshes = [&](double t) {
            return t > phase ? std::floor((t - phase) / m_.tREFI) + 1 : 0.0;
        };
        const double busy = fill_ + load;
        double n = refreshes(busy);
        for (double next; (next = refreshes(busy + n * loss)) > n;)
            n = next;
        return busy + n * loss;
    }

    void summarise() const noexcept {
        std::fill(load_.begin(), load_.end(), 0.0);
        bool reads = false;
        for (std::size_t i = 0; i < kinds_.size(); ++i) {
            const kind_state& k = kinds_[i];
            if (!k.totals.runs) continue;
            reads = reads || i != std::size_t(odma::memory::access_kind::write);
            double run = 0;
            for (std::uint32_t c = 0; c < m_.channels; ++c) {
                run += k.diff[c];
                load_[c] += k.uniform + run;
            }
        }
        fill_ = odma::memory::detail::first_access_ns(
            m_, reads ? odma::memory::access_kind::read : odma::memory::access_kind::write);
        double dram = 0, charged = 0;
        for (std::uint32_t c = 0; c < m_.channels; ++c)
            dram = std::max(dram, channel_time(c, load_[c]));
        for (const kind_state& k : kinds_)
            charged += k.charged_ns;
        for (std::size_t i = 0; i < kinds_.size(); ++i) {
            const kind_state& k = kinds_[i];
            odma::memory::access_totals t = k.totals;
            t.activations = std::min(t.bursts, std::uint64_t(std::llround(k.activations)));
            t.row_hits = t.bursts - t.activations;
            t.dram_ns = charged > 0 ? dram * k.charged_ns / charged : 0.0;
            t.discontinuity_ns = double(t.runs) * m_.discontinuity_ns;
            report_[odma::memory::access_kind(i)] = t;
        }
        dirty_ = false;
    }

    memory_model m_;
    std::uint64_t granule_bursts_ = 0;
    std::array<kind_state, odma::memory::access_kinds> kinds_;
    std::array<std::shared_ptr<const odma::memory::detail::dram_cost_table>,
               odma::memory::access_kinds>
        tables_;
    std::uint64_t last_end_ = no_run;
    std::uint64_t stripe_ = no_run, stripe_chunks_ = 0;  ///< the last run's last stripe
    mutable std::vector<double> load_;                   ///< per channel, refreshed by summarise()
    mutable double fill_ = 0;
    mutable odma::memory::access_report report_;
    mutable bool dirty_ = true;
};

void check_same_report(const odma::memory::access_report& a, const odma::memory::access_report& b) {
    for (const auto k : {access_kind::read, access_kind::write, access_kind::migration}) {
        const auto &x = a[k], &y = b[k];
        CAPTURE(int(k));
        CHECK(x.bytes == y.bytes);
        CHECK(x.runs == y.runs);
        CHECK(x.bursts == y.bursts);
        CHECK(x.row_hits == y.row_hits);
        CHECK(x.activations == y.activations);
        CHECK(x.dram_ns == y.dram_ns);
        CHECK(x.discontinuity_ns == y.discontinuity_ns);
    }
}

/// Random runs of every kind, lengths (1 B to several stripes, with the block sizes a paged
/// allocator uses and their partial last blocks) and alignments, a third of them continuing the
/// previous run, checked against plain_accountant after every few runs.
void check_exact(const memory_model& m, std::uint64_t seed) {
    CAPTURE(m.name);
    odma::memory::accountant fast(m);
    plain_accountant plain(m);
    odma::support::splitmix64 rng(seed);
    const std::uint64_t stripe = m.stripe_bytes();
    auto length = [&]() -> std::uint64_t {
        switch (rng.below(6)) {
            case 0:
                return 1 + rng.below(4 * m.burst_bytes);  // a few bursts
            case 1:
                return (std::uint64_t(1) << rng.below(15)) * (1 + rng.below(2));  // blocks
            case 2:
                return 1024 * (1 + rng.below(128));  // partial blocks
            case 3:
                return 1 + rng.below(3 * stripe);  // up to 3 stripes
            case 4:
                return 16384;  // paged-16
            default:
                return 1 + rng.below(1 << 20);
        }
    };
    std::uint64_t end = 0;
    for (int i = 0; i < 6000; ++i) {
        const std::uint64_t bytes = std::min<std::uint64_t>(length(), m.capacity_bytes / 4);
        const std::uint64_t places = m.capacity_bytes - bytes + 1;
        std::uint64_t offset;
        switch (rng.below(4)) {
            case 0:
                offset = end + bytes <= m.capacity_bytes ? end : 0;
                break;  // continues
            case 1:
                offset = rng.below(places);
                break;  // anywhere
            case 2:
                offset = rng.below(places / 16384) * 16384;
                break;  // block-aligned
            default:
                offset = rng.below(places / m.burst_bytes) * m.burst_bytes;
        }
        const std::uint64_t r = rng.below(20);
        if (r < 2) {
            const std::uint64_t src = rng.below(places);
            fast.copy(offset, src, bytes);
            plain.copy(offset, src, bytes);
        } else {
            const auto kind = r < 5 ? access_kind::write : access_kind::read;
            fast.access(kind, offset, bytes);
            plain.access(kind, offset, bytes);
        }
        end = offset + bytes;
        if (i % 97 == 0 || i % 500 == 499) {
            check_same_report(fast.report(), plain.report());
            for (std::uint32_t c = 0; c < m.channels; ++c)
                REQUIRE(fast.channel_ns(c) == plain.channel_ns(c));
        }
        if (i % 2000 == 1999) {  // a new stream (the memo outlives it)
            fast.reset();
            plain.reset();
        }
    }
    // One huge run (beyond the memo) and a sequential stream of equal blocks.
    fast.access(access_kind::read, 0, m.capacity_bytes / 2);
    plain.access(access_kind::read, 0, m.capacity_bytes / 2);
    for (std::uint64_t at = 4096; at < 4096 + 64 * 16384; at += 16384) {
        fast.access(access_kind::read, at, 16384);
        plain.access(access_kind::read, at, 16384);
    }
    check_same_report(fast.report(), plain.report());
    for (std::uint32_t c = 0; c < m.channels; ++c)
        REQUIRE(fast.channel_ns(c) == plain.channel_ns(c));
}

/// A model off the presets' beaten track: 3 channels, a row-in-bank-group mapping, 2-burst
/// chunks, 48 B bursts (no power of two but the bank counts).
memory_model odd_model() {
    memory_model m;
    m.name = "odd";
    m.channels = 3;
    m.burst_bytes = 48;
    m.row_bytes = 48 * 12;
    m.mapping = odma::memory::address_mapping::row_in_bank_group(2);
    m.capacity_bytes = std::uint64_t(3) * m.banks_per_channel() * m.row_bytes * 4096;
    m.calibration_bursts = 2000;
    m.tCCD_S = m.burst_ns();
    m.tCCD_L = std::max(m.tCCD_L, m.tCCD_S);
    return m;
}

}  // namespace

TEST_CASE("divider: quotients and remainders are exactly / and %") {
    using odma::memory::detail::divider;
    odma::support::splitmix64 rng(7);
    std::vector<std::uint64_t> ds{1,
                                  2,
                                  3,
                                  5,
                                  7,
                                  16,
                                  24,
                                  48,
                                  160,
                                  192,
                                  512,
                                  6144,
                                  20480,
                                  655360,
                                  (1ull << 32) - 1,
                                  (1ull << 32) + 1,
                                  (1ull << 63) + 1,
                                  std::numeric_limits<std::uint64_t>::max()};
    for (int i = 0; i < 40; ++i)
        ds.push_back(1 + rng.below(1ull << (1 + rng.below(63))));
    for (const std::uint64_t d : ds) {
        const divider v(d);
        CAPTURE(d);
        const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
        std::vector<std::uint64_t> ns{0,
                                      1,
                                      d - 1,
                                      d,
                                      d + 1,
                                      max,
                                      max - 1,
                                      max / d,
                                      max / d + 1,
                                      max / d * d,
                                      (max / d) * d - 1};
        for (int i = 0; i < 2000; ++i)
            ns.push_back(rng() >> rng.below(64));
        for (const std::uint64_t n : ns) {
            REQUIRE(v.quotient(n) == n / d);
            REQUIRE(v.remainder(n) == n % d);
        }
    }
}

TEST_CASE("the fast path's per-run shortcuts are exact on every memory model preset") {
    check_exact(memory_model::lpddr5_6400(), 11);
    check_exact(memory_model::lpddr5x_8533(), 12);
    check_exact(memory_model::hbm3(), 13);
    check_exact(memory_model::host_ddr5(2 * 7.19, 23ull << 30, 1007), 14);
    check_exact(odd_model(), 15);
}
