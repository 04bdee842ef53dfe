// odma/memory/accountant.hpp - the cost model's interface: accesses in, an access_report out.
#pragma once

#include <odma/memory/access_report.hpp>
#include <odma/memory/detail/divider.hpp>
#include <odma/memory/detail/dram_cost.hpp>
#include <odma/memory/memory_model.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace odma::memory {

/// Costs a stream of accesses on a memory_model in O(1) per run, calibrated once per model and
/// access kind against the bank-level reference (detail/dram_reference.hpp): the engine behind
/// backing::accounted, usable on its own by a cost study that has no allocator.
///
/// Per run it does no hardware division and no logarithm: the divisors (burst, chunk, granule,
/// stripe, channels) are fixed at construction (detail::divider), and what a run of n bursts
/// costs is looked up in a per-kind memo filled from the calibration table on first use. Every
/// figure is bit for bit what the plain arithmetic gives (tests/test_memory_fast.cpp).
class accountant {
public:
    explicit accountant(memory_model m) : m_(std::move(m)) {
        m_.validate();
        granule_bursts_ = m_.channel_granule_bytes() / m_.burst_bytes;
        chunk_bytes_ = m_.chunk_bytes();
        per_stripe_ = m_.stripe_bytes() / chunk_bytes_;
        tuples_ = m_.tuples_per_stripe();
        burst_ = detail::divider(m_.burst_bytes);
        granule_ = detail::divider(granule_bursts_);
        channels_ = detail::divider(m_.channels);
        chunk_ = detail::divider(chunk_bytes_);
        stripe_chunks_div_ = detail::divider(per_stripe_);
        for (auto& k : kinds_)
            k.diff.assign(m_.channels + 1, 0.0);
        load_.assign(m_.channels, 0.0);  // report() then never allocates
    }

    const memory_model& model() const noexcept { return m_; }

    /// A read or write run [offset, offset + bytes); bytes > 0.
    void access(access_kind kind, std::uint64_t offset, std::uint64_t bytes) {
        kind_state& k = kinds_[std::size_t(kind)];
        const std::uint64_t first = burst_.quotient(offset);
        const std::uint64_t last = burst_.quotient(offset + bytes - 1);
        const std::uint64_t bursts = last - first + 1;
        const bool continues = offset == last_end_;
        const run_cost& cost = run_cost_of(kind, bursts, continues);
        spread(k, first, last, cost.per_burst);
        record(k, bytes, bursts, cost.ns,
               cost.activation_ratio * double(opens(offset, bytes, continues)));
    }

    /// A copy of `bytes` from `src` to `dst`: its reads and writes, costed as one migration.
    void copy(std::uint64_t dst, std::uint64_t src, std::uint64_t bytes) {
        kind_state& k = kinds_[std::size_t(access_kind::migration)];
        const std::uint64_t rf = burst_.quotient(src), rl = burst_.quotient(src + bytes - 1);
        const std::uint64_t wf = burst_.quotient(dst), wl = burst_.quotient(dst + bytes - 1);
        const std::uint64_t bursts = (rl - rf + 1) + (wl - wf + 1);
        // The table is by copy length (bursts of one side) and per burst moved (both sides).
        const run_cost& cost = run_cost_of(access_kind::migration, rl - rf + 1, false);
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
    const access_report& report() const noexcept {
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
        access_totals totals;      ///< counts (times and activations filled in report())
        double charged_ns = 0;     ///< channel-ns charged to this kind, all channels
        double activations = 0;    ///< expected activations
        double uniform = 0;        ///< channel-ns charged to every channel
        std::vector<double> diff;  ///< difference array of the per-channel remainder; its last
                                   ///< entry, diff[channels], is a sink never read
    };

    /// What a run of n bursts costs: dram_cost_table's point, and its ns / n.
    struct run_cost {
        double ns = 0;
        double per_burst = 0;
        double activation_ratio = 1;
        bool known = false;
    };
    /// Runs up to this many bursts have their cost memoised (32 B each, per kind and case).
    static constexpr std::uint64_t memo_bursts = std::uint64_t(1) << 16;

    const detail::dram_cost_table& table(access_kind kind) {
        auto& t = tables_[std::size_t(kind)];
        if (!t) t = detail::cost_table(m_, kind);
        return *t;
    }

    /// The cost of a run of `bursts` at a random place, or continuing the previous run: the
    /// table's figures, computed once per length (they depend on nothing else).
    const run_cost& run_cost_of(access_kind kind, std::uint64_t bursts, bool continues) {
        const std::vector<run_cost>& memo = memo_[std::size_t(kind)][continues ? 1 : 0];
        if (bursts < memo.size() && memo[bursts].known) return memo[bursts];
        return new_run_cost(kind, bursts, continues);
    }
    const run_cost& new_run_cost(access_kind kind, std::uint64_t bursts, bool continues) {
        std::vector<run_cost>& memo = memo_[std::size_t(kind)][continues ? 1 : 0];
        const detail::dram_cost_table& t = table(kind);
        const auto point = continues ? t.continuation(bursts) : t.random_run(bursts);
        run_cost c{point.ns, point.ns / double(bursts), point.activation_ratio, true};
        if (bursts >= memo_bursts) {
            uncached_ = c;
            return uncached_;
        }
        if (bursts >= memo.size())
            memo.resize(std::min<std::uint64_t>(
                memo_bursts, std::max<std::uint64_t>(bursts + 1, 2 * memo.size())));
        memo[bursts] = c;
        return memo[bursts];
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
        std::uint64_t open = 0;
        if (continues && stripe_chunks_div_.quotient(chunk_.quotient(offset)) == stripe_) {
            open = stripe_chunks_;
            if (const std::uint64_t in_chunk = chunk_.remainder(offset); in_chunk != 0) {
                // the first chunk is the previous run's last
                const std::uint64_t skip = std::min<std::uint64_t>(bytes, chunk_bytes_ - in_chunk);
                offset += skip;
                bytes -= skip;
            }
        }
        last_end_ = offset + bytes;
        if (bytes == 0) return 0;
        // detail::rows_opened(m_, offset, bytes, open), with the divisions precomputed.
        const std::uint64_t j0 = chunk_.quotient(offset), j1 = chunk_.quotient(offset + bytes - 1);
        const std::uint64_t s0 = stripe_chunks_div_.quotient(j0);
        const std::uint64_t s1 = stripe_chunks_div_.quotient(j1);
        const std::uint64_t j1_in_stripe = j1 - s1 * per_stripe_;
        auto opened = [&](std::uint64_t had, std::uint64_t added) {
            return std::min(had + added, tuples_) - std::min(had, tuples_);
        };
        std::uint64_t rows;
        stripe_ = s1;
        if (s0 == s1) {
            rows = opened(open, j1 - j0 + 1);
            stripe_chunks_ = open + (j1 - j0 + 1);
        } else {
            rows = opened(open, per_stripe_ - (j0 - s0 * per_stripe_)) + (s1 - s0 - 1) * tuples_ +
                   opened(0, j1_in_stripe + 1);
            stripe_chunks_ = j1_in_stripe + 1;
        }
        return rows;
    }

    /// Charges `per_burst` channel-ns to the channel of every burst in [first, last], in O(1):
    /// whole rounds over all channels go to `uniform`, the rest to a difference array.
    void spread(kind_state& k, std::uint64_t first, std::uint64_t last, double per_burst) {
        const std::uint64_t g0 = granule_.quotient(first), g1 = granule_.quotient(last);
        const std::uint32_t channels = m_.channels;
        const auto c0 = std::uint32_t(channels_.remainder(g0));
        if (g0 == g1) {
            point(k, c0, double(last - first + 1) * per_burst);
            return;
        }
        point(k, c0, double(granule_bursts_ - (first - g0 * granule_bursts_)) * per_burst);
        point(k, std::uint32_t(channels_.remainder(g1)),
              double(last - g1 * granule_bursts_ + 1) * per_burst);
        const std::uint64_t full = g1 - g0 - 1;
        const double per_granule = double(granule_bursts_) * per_burst;
        const std::uint64_t rounds = channels_.quotient(full);
        k.uniform += double(rounds) * per_granule;
        const auto rest = std::uint32_t(full - rounds * channels);
        const std::uint32_t start = c0 + 1 == channels ? 0 : c0 + 1;  // (g0 + 1) % channels
        if (rest == 0) return;
        // Channels [start, start + rest), wrapping past the last one, as the same three updates
        // either way: diff[channels] is never read, so a wrapped range does not close there and
        // a range that does not wrap sends its unused middle term there.
        const std::uint32_t end = start + rest;
        const bool wraps = end > channels;
        k.diff[start] += per_granule;
        k.diff[wraps ? 0 : channels] += per_granule;
        k.diff[wraps ? end - channels : end] -= per_granule;
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
            reads = reads || i != std::size_t(access_kind::write);
            double run = 0;
            for (std::uint32_t c = 0; c < m_.channels; ++c) {
                run += k.diff[c];
                load_[c] += k.uniform + run;
            }
        }
        fill_ = detail::first_access_ns(m_, reads ? access_kind::read : access_kind::write);
        double dram = 0, charged = 0;
        for (std::uint32_t c = 0; c < m_.channels; ++c)
            dram = std::max(dram, channel_time(c, load_[c]));
        for (const kind_state& k : kinds_)
            charged += k.charged_ns;
        for (std::size_t i = 0; i < kinds_.size(); ++i) {
            const kind_state& k = kinds_[i];
            access_totals t = k.totals;
            t.activations = std::min(t.bursts, std::uint64_t(std::llround(k.activations)));
            t.row_hits = t.bursts - t.activations;
            t.dram_ns = charged > 0 ? dram * k.charged_ns / charged : 0.0;
            t.discontinuity_ns = double(t.runs) * m_.discontinuity_ns;
            report_[access_kind(i)] = t;
        }
        dirty_ = false;
    }

    memory_model m_;
    std::uint64_t granule_bursts_ = 0;
    std::uint64_t chunk_bytes_ = 0, per_stripe_ = 0, tuples_ = 0;  ///< as in rows_opened()
    detail::divider burst_, granule_, channels_, chunk_, stripe_chunks_div_;
    std::array<kind_state, access_kinds> kinds_;
    std::array<std::shared_ptr<const detail::dram_cost_table>, access_kinds> tables_;
    std::array<std::array<std::vector<run_cost>, 2>, access_kinds> memo_;  ///< [kind][continues]
    run_cost uncached_;  ///< the last run too long for the memo
    std::uint64_t last_end_ = no_run;
    std::uint64_t stripe_ = no_run, stripe_chunks_ = 0;  ///< the last run's last stripe
    mutable std::vector<double> load_;                   ///< per channel, refreshed by summarise()
    mutable double fill_ = 0;
    mutable access_report report_;
    mutable bool dirty_ = true;
};

}  // namespace odma::memory
