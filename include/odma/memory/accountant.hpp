// odma/memory/accountant.hpp - the cost model's interface: accesses in, an access_report out.
#pragma once

#include <odma/memory/access_report.hpp>
#include <odma/memory/detail/dram_cost.hpp>
#include <odma/memory/memory_model.hpp>

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
class accountant {
public:
    explicit accountant(memory_model m) : m_(std::move(m)) {
        m_.validate();
        granule_bursts_ = m_.channel_granule_bytes() / m_.burst_bytes;
        for (auto& k : kinds_)
            k.diff.assign(m_.channels + 1, 0.0);
        load_.assign(m_.channels, 0.0);  // report() then never allocates
    }

    const memory_model& model() const noexcept { return m_; }

    /// A read or write run [offset, offset + bytes); bytes > 0.
    void access(access_kind kind, std::uint64_t offset, std::uint64_t bytes) {
        kind_state& k = kinds_[std::size_t(kind)];
        const std::uint64_t first = offset / m_.burst_bytes;
        const std::uint64_t last = (offset + bytes - 1) / m_.burst_bytes;
        const std::uint64_t bursts = last - first + 1;
        const detail::dram_cost_table& t = table(kind);
        const bool continues = offset == last_end_;
        const auto cost = continues ? t.continuation(bursts) : t.random_run(bursts);
        spread(k, first, last, cost.ns / double(bursts));
        record(k, bytes, bursts, cost.ns,
               cost.activation_ratio * double(opens(offset, bytes, continues)));
    }

    /// A copy of `bytes` from `src` to `dst`: its reads and writes, costed as one migration.
    void copy(std::uint64_t dst, std::uint64_t src, std::uint64_t bytes) {
        kind_state& k = kinds_[std::size_t(access_kind::migration)];
        const std::uint64_t rf = src / m_.burst_bytes, rl = (src + bytes - 1) / m_.burst_bytes;
        const std::uint64_t wf = dst / m_.burst_bytes, wl = (dst + bytes - 1) / m_.burst_bytes;
        const std::uint64_t bursts = (rl - rf + 1) + (wl - wf + 1);
        // The table is by copy length (bursts of one side) and per burst moved (both sides).
        const auto cost = table(access_kind::migration).random_run(rl - rf + 1);
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
        std::vector<double> diff;  ///< difference array of the per-channel remainder
    };

    const detail::dram_cost_table& table(access_kind kind) {
        auto& t = tables_[std::size_t(kind)];
        if (!t) t = detail::cost_table(m_, kind);
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
        const auto [rows, covered] = detail::rows_opened(m_, offset, bytes, open);
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
    std::array<kind_state, access_kinds> kinds_;
    std::array<std::shared_ptr<const detail::dram_cost_table>, access_kinds> tables_;
    std::uint64_t last_end_ = no_run;
    std::uint64_t stripe_ = no_run, stripe_chunks_ = 0;  ///< the last run's last stripe
    mutable std::vector<double> load_;                   ///< per channel, refreshed by summarise()
    mutable double fill_ = 0;
    mutable access_report report_;
    mutable bool dirty_ = true;
};

}  // namespace odma::memory
