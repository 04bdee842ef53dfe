// odma/detail/dram_cost.hpp - the fast path of the cost model: O(1) accounting per run, derived
// from the burst-level reference (dram_reference.hpp).
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

#include <odma/backing/memory_model.hpp>
#include <odma/detail/dram_reference.hpp>
#include <odma/detail/splitmix64.hpp>

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

namespace odma::detail {

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
inline std::pair<std::uint64_t, std::uint64_t> rows_opened(const backing::memory_model& m,
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
inline double first_access_ns(const backing::memory_model& m, backing::access_kind k) {
    return k == backing::access_kind::write ? m.tRCD + m.write_latency + m.burst_ns()
                                            : m.first_access_ns();
}

/// Measures channel-ns per burst of `runs` on the reference (no refresh: the fast path adds
/// refresh per channel), and activations against rows_opened(), simulating only the first few
/// channels: they are statistically like the others. The first-access latency is removed per
/// channel.
inline dram_cost_table::point reference_per_burst(const backing::memory_model& m,
                                                  backing::access_kind kind,
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
        count(kind == backing::access_kind::migration ? run.source : run.offset);
        if (kind == backing::access_kind::migration) count(run.offset);
    }
    const double expected = double(rows) * double(bursts) / double(all_bursts);
    return {ns / double(bursts),
            expected > 0 ? double(r.kinds[std::size_t(kind)].activations) / expected : 1.0};
}

/// Builds the table for one model and access kind from the reference path. `target_bursts` is
/// how many bursts each grid point simulates (statistical precision vs. time); 0 takes the
/// model's calibration_bursts.
inline dram_cost_table calibrate(const backing::memory_model& m, backing::access_kind kind,
                                 std::uint64_t target_bursts = 0) {
    m.validate();
    if (target_bursts == 0) target_bursts = m.calibration_bursts;
    const std::uint32_t sampled = std::min<std::uint32_t>(m.channels, 4);
    const std::uint64_t stripe_bursts = m.stripe_bytes() / m.burst_bytes;
    const auto top = std::max<std::uint32_t>(
        3, std::uint32_t(std::bit_width(2 * stripe_bursts - 1)));  // 2^top >= 2 stripes
    const bool copy = kind == backing::access_kind::migration;
    const std::uint64_t sides = copy ? 2 : 1;
    dram_cost_table t;
    splitmix64 rng(0x0d4a5eed ^ (std::uint64_t(kind) << 32));
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
inline std::shared_ptr<const dram_cost_table> cost_table(const backing::memory_model& m,
                                                         backing::access_kind kind) {
    struct entry {
        backing::memory_model model;
        backing::access_kind kind;
        std::shared_ptr<const dram_cost_table> table;
    };
    static std::mutex mutex;
    static std::vector<entry> tables;
    backing::memory_model key = m;
    key.name.clear();
    key.discontinuity_ns = 0;
    const std::lock_guard lock(mutex);
    for (const entry& e : tables)
        if (e.kind == kind && e.model == key) return e.table;
    tables.push_back({key, kind, std::make_shared<const dram_cost_table>(calibrate(m, kind))});
    return tables.back().table;
}

/// The O(1)-per-run accountant behind backing::lpddr_emulated.
class dram_accountant {
public:
    explicit dram_accountant(backing::memory_model m) : m_(std::move(m)) {
        m_.validate();
        granule_bursts_ = m_.channel_granule_bytes() / m_.burst_bytes;
        for (auto& k : kinds_)
            k.diff.assign(m_.channels + 1, 0.0);
        load_.assign(m_.channels, 0.0);  // report() then never allocates
    }

    const backing::memory_model& model() const noexcept { return m_; }

    /// A read or write run [offset, offset + bytes); bytes > 0.
    void access(backing::access_kind kind, std::uint64_t offset, std::uint64_t bytes) {
        kind_state& k = kinds_[std::size_t(kind)];
        const std::uint64_t first = offset / m_.burst_bytes;
        const std::uint64_t last = (offset + bytes - 1) / m_.burst_bytes;
        const std::uint64_t bursts = last - first + 1;
        const dram_cost_table& t = table(kind);
        const bool continues = offset == last_end_;
        const auto cost = continues ? t.continuation(bursts) : t.random_run(bursts);
        spread(k, first, last, cost.ns / double(bursts));
        record(k, bytes, bursts, cost.ns,
               cost.activation_ratio * double(opens(offset, bytes, continues)));
    }

    /// A copy of `bytes` from `src` to `dst`: its reads and writes, costed as one migration.
    void copy(std::uint64_t dst, std::uint64_t src, std::uint64_t bytes) {
        kind_state& k = kinds_[std::size_t(backing::access_kind::migration)];
        const std::uint64_t rf = src / m_.burst_bytes, rl = (src + bytes - 1) / m_.burst_bytes;
        const std::uint64_t wf = dst / m_.burst_bytes, wl = (dst + bytes - 1) / m_.burst_bytes;
        const std::uint64_t bursts = (rl - rf + 1) + (wl - wf + 1);
        // The table is by copy length (bursts of one side) and per burst moved (both sides).
        const auto cost = table(backing::access_kind::migration).random_run(rl - rf + 1);
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
    const backing::access_report& report() const noexcept {
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
        backing::access_totals totals;  ///< counts (times and activations filled in report())
        double charged_ns = 0;          ///< channel-ns charged to this kind, all channels
        double activations = 0;         ///< expected activations
        double uniform = 0;             ///< channel-ns charged to every channel
        std::vector<double> diff;       ///< difference array of the per-channel remainder
    };

    const dram_cost_table& table(backing::access_kind kind) {
        auto& t = tables_[std::size_t(kind)];
        if (!t) t = cost_table(m_, kind);
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
        const auto [rows, covered] = rows_opened(m_, offset, bytes, open);
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
            reads = reads || i != std::size_t(backing::access_kind::write);
            double run = 0;
            for (std::uint32_t c = 0; c < m_.channels; ++c) {
                run += k.diff[c];
                load_[c] += k.uniform + run;
            }
        }
        fill_ =
            first_access_ns(m_, reads ? backing::access_kind::read : backing::access_kind::write);
        double dram = 0, charged = 0;
        for (std::uint32_t c = 0; c < m_.channels; ++c)
            dram = std::max(dram, channel_time(c, load_[c]));
        for (const kind_state& k : kinds_)
            charged += k.charged_ns;
        for (std::size_t i = 0; i < kinds_.size(); ++i) {
            const kind_state& k = kinds_[i];
            backing::access_totals t = k.totals;
            t.activations = std::min(t.bursts, std::uint64_t(std::llround(k.activations)));
            t.row_hits = t.bursts - t.activations;
            t.dram_ns = charged > 0 ? dram * k.charged_ns / charged : 0.0;
            t.discontinuity_ns = double(t.runs) * m_.discontinuity_ns;
            report_[backing::access_kind(i)] = t;
        }
        dirty_ = false;
    }

    backing::memory_model m_;
    std::uint64_t granule_bursts_ = 0;
    std::array<kind_state, backing::access_kinds> kinds_;
    std::array<std::shared_ptr<const dram_cost_table>, backing::access_kinds> tables_;
    std::uint64_t last_end_ = no_run;
    std::uint64_t stripe_ = no_run, stripe_chunks_ = 0;  ///< the last run's last stripe
    mutable std::vector<double> load_;                   ///< per channel, refreshed by summarise()
    mutable double fill_ = 0;
    mutable backing::access_report report_;
    mutable bool dirty_ = true;
};

}  // namespace odma::detail
