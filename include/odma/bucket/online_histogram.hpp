// odma/bucket/online_histogram.hpp - bucket boundaries that follow the live length
// distribution.
#pragma once

#include <odma/bucket/detail/capacities.hpp>
#include <odma/bucket/optimal_boundaries.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace odma::bucket {

/// Settings of online_histogram (see there).
struct online_histogram_options {
    /// Observations after which an old observation weighs half as much (0 = never forget).
    double half_life = 4096;
    /// Half-life of the short-memory histogram used to detect drift.
    double recent_half_life = 512;
    /// Recompute the boundaries every this many observations (0 = only on drift).
    std::uint32_t recalibrate_every = 1024;
    /// Population stability index that counts as drift (<= 0 disables drift detection).
    /// 0.1 is the conventional "moderate shift"; sampling noise with the default
    /// recent_half_life stays near 0.01.
    double drift_threshold = 0.1;
    std::uint32_t drift_check_every = 64;
    std::uint32_t drift_groups = 10;
    /// Histogram resolution: at most this many bins, each ceil(max_tokens / bins) tokens
    /// wide. Boundaries are optimal among bin edges (exact for one-token bins).
    std::uint32_t bins = 4096;
    /// Observations before the first calibration.
    std::uint32_t warmup = 256;
    /// Boundaries until the first calibration: strictly ascending, ending at max_tokens.
    /// Empty: `buckets` equal-width buckets.
    std::vector<std::uint32_t> initial{};
};

/// A BucketPolicy that learns its boundaries from the lengths it observes.
///
/// It keeps a histogram of observed lengths (fixed-width bins over 1..max_tokens) in which an
/// observation's weight halves every `half_life` observations, and recomputes the boundaries
/// with optimal_boundaries() (the exact minimum of expected reserved-minus-used tokens for k
/// buckets over the histogram):
///  - after `warmup` observations, then every `recalibrate_every` observations, and
///  - when the distribution drifts: every `drift_check_every` observations it compares a
///    short-memory histogram (half-life `recent_half_life`) with the histogram the boundaries
///    were computed from, by the population stability index over `drift_groups` equal-mass
///    groups. Above `drift_threshold` both histograms are cleared and the boundaries are
///    recomputed from the next `warmup` observations. Why forget everything: a decayed tail
///    of the old regime, even a few percent of the weight, still claims buckets the new regime
///    needs, so decay alone recovers only after many half-lives.
///
/// The largest bucket is always max_tokens (the large-bucket safeguard). Recalibration changes
/// only what capacity_for() answers from then on: leases already admitted keep their regions.
///
/// What it is fed: the allocator calls observe(peak demand) when a request finishes, where the
/// peak demand is the larger of what admit() (or resume()) asked to reserve, prompt + the
/// predicted (1 - overflow_risk) quantile before rounding, and what the request held at the
/// end, prompt + generated (see BucketPolicy in concepts.hpp). Boundaries fitted to that
/// histogram minimise what is really reserved; docs/predictors.md measures the difference
/// against boundaries fitted to final lengths on the bundled traces.
class online_histogram {
public:
    using options = online_histogram_options;

    /// At most `buckets` buckets up to `max_tokens`. Throws std::invalid_argument for bad
    /// arguments.
    online_histogram(std::uint32_t buckets, std::uint32_t max_tokens, options o = {})
        : opts_(std::move(o)), k_(buckets), max_(max_tokens) {
        if (buckets == 0 || max_tokens == 0)
            throw std::invalid_argument(
                "odma::bucket::online_histogram: buckets and max_tokens must be > 0");
        if (opts_.bins == 0 || !(opts_.half_life >= 0.0) || !(opts_.recent_half_life >= 0.0) ||
            opts_.drift_groups < 2 || opts_.drift_check_every == 0)
            throw std::invalid_argument(
                "odma::bucket::online_histogram: need bins > 0, half-lives >= 0, drift_groups "
                ">= 2 and drift_check_every > 0");
        width_ = (max_tokens + opts_.bins - 1) / opts_.bins;
        const std::uint32_t m = (max_tokens + width_ - 1) / width_;
        upper_.resize(m);
        for (std::uint32_t b = 0; b < m; ++b)
            upper_[b] = std::min(max_tokens, (b + 1) * width_);
        long_.init(m, opts_.half_life);
        recent_.init(m, opts_.recent_half_life);

        if (opts_.initial.empty()) {
            bounds_ = detail::uniform_capacities(std::min(buckets, max_tokens), max_tokens);
        } else {
            bounds_ = opts_.initial;
            if (bounds_.size() > buckets || bounds_.front() == 0 || bounds_.back() != max_tokens ||
                !detail::strictly_ascending(bounds_))
                throw std::invalid_argument(
                    "odma::bucket::online_histogram: initial boundaries must be at most " +
                    std::to_string(buckets) +
                    " strictly ascending capacities > 0 ending at max_tokens");
        }
        bounds_.reserve(std::max<std::size_t>(bounds_.size(), buckets));
        group_end_.assign(1, m);  // one group until the first calibration
        reference_.assign(1, 1.0);
    }

    /// Smallest bucket capacity >= tokens; max_tokens() for anything larger.
    std::uint32_t capacity_for(std::uint32_t tokens) const noexcept {
        return detail::round_up(bounds_, tokens);
    }
    std::uint32_t max_tokens() const noexcept { return max_; }

    /// Current bucket capacities, ascending; the last is max_tokens(). The view stays valid for
    /// the object's lifetime, but observe() may change what it shows.
    std::span<const std::uint32_t> boundaries() const noexcept { return bounds_; }

    /// A request finished; `tokens` is its peak demand (see the class comment; larger values
    /// count as max_tokens). May recalibrate.
    void observe(std::uint32_t tokens) {
        const std::uint32_t bin = bin_of(tokens);
        long_.add(bin);
        recent_.add(bin);
        ++observations_;
        ++since_reset_;
        ++since_calibration_;
        if (stale_) {  // first calibration, or the first after a detected drift
            if (since_reset_ >= opts_.warmup) recalibrate();
            return;
        }
        if (opts_.recalibrate_every && since_calibration_ >= opts_.recalibrate_every) {
            recalibrate();
            return;
        }
        if (opts_.drift_threshold > 0.0 && since_calibration_ % opts_.drift_check_every == 0 &&
            drift() > opts_.drift_threshold) {
            // The old regime is over: forget it entirely and relearn from the next `warmup`
            // observations (decaying it would leave a tail that still claims buckets).
            long_.clear();
            recent_.clear();
            since_reset_ = 0;
            stale_ = true;
            ++drift_detections_;
        }
    }

    /// Recomputes the boundaries from the histogram now (no-op while it is empty).
    void recalibrate() {
        const double total = long_.total();
        if (!(total > 0.0)) return;
        const auto& w = long_.counts();
        const auto fresh = optimal_boundaries(w, upper_, k_);
        bounds_.assign(fresh.begin(), fresh.end());
        // Equal-mass groups for the drift statistic, and their reference shares.
        group_end_.clear();
        reference_.clear();
        const std::uint32_t g = opts_.drift_groups;
        double run = 0.0, last = 0.0;
        const auto share = [&](double mass) { return std::floor(mass * g / total * (1 - 1e-12)); };
        for (std::uint32_t b = 0; b < w.size(); ++b) {
            run += w[b];
            if (share(run) > share(last) || b + 1 == w.size()) {
                group_end_.push_back(b + 1);
                reference_.push_back((run - last) / total);
                last = run;
            }
        }
        ++calibrations_;
        since_calibration_ = 0;
        stale_ = false;
    }

    /// Population stability index between the short-memory histogram and the histogram of the
    /// last calibration, over equal-mass groups: sum (p - q) ln(p / q). 0 while the boundaries
    /// wait for a calibration.
    double drift() const {
        if (stale_ || !(recent_.total() > 0.0)) return 0.0;
        const double total = recent_.total();
        double psi = 0.0;
        std::uint32_t begin = 0;
        for (std::size_t i = 0; i < group_end_.size(); ++i) {
            double mass = 0.0;
            for (std::uint32_t b = begin; b < group_end_[i]; ++b)
                mass += recent_.counts()[b];
            begin = group_end_[i];
            constexpr double eps = 1e-4;  // empty groups must not make the index infinite
            const double p = std::max(mass / total, eps), q = std::max(reference_[i], eps);
            psi += (p - q) * std::log(p / q);
        }
        return psi;
    }

    /// Times the boundaries were recomputed.
    std::uint64_t recalibrations() const noexcept { return calibrations_; }
    /// Times a drift was detected (each resets the histogram; a recalibration follows after
    /// `warmup` further observations).
    std::uint64_t drift_detections() const noexcept { return drift_detections_; }
    std::uint64_t observations() const noexcept { return observations_; }

    /// Bin layout: bin i holds lengths in (bin_upper(i-1), bin_upper(i)].
    std::span<const std::uint32_t> bin_upper() const noexcept { return upper_; }
    /// The decayed histogram (relative weights per bin; scale is arbitrary).
    std::span<const double> histogram() const noexcept { return long_.counts(); }

    /// Mean reserved-minus-used tokens of the current boundaries over the current histogram
    /// (each bin's requests taken at the bin's middle).
    double expected_waste() const {
        std::vector<std::uint32_t> mid(upper_.size());
        for (std::size_t b = 0; b < upper_.size(); ++b)
            mid[b] = upper_[b] - (std::min(upper_[b], std::uint32_t(width_)) - 1) / 2;
        return bucket::expected_waste(long_.counts(), mid, bounds_);
    }

    const options& settings() const noexcept { return opts_; }

private:
    // A histogram with exponential decay, done lazily: each new observation adds a weight that
    // grows by 1/decay per observation, and everything is rescaled before it overflows. Only
    // relative weights matter.
    class decayed {
    public:
        void init(std::uint32_t bins, double half_life) {
            counts_.assign(bins, 0.0);
            growth_ = half_life > 0.0 ? std::exp2(1.0 / half_life) : 1.0;
        }
        void add(std::uint32_t bin) {
            counts_[bin] += increment_;
            total_ += increment_;
            increment_ *= growth_;
            if (increment_ > 1e200) {
                for (double& c : counts_)
                    c /= increment_;
                total_ /= increment_;
                increment_ = 1.0;
            }
        }
        void clear() {
            std::fill(counts_.begin(), counts_.end(), 0.0);
            total_ = 0.0;
            increment_ = 1.0;
        }
        double total() const noexcept { return total_; }
        const std::vector<double>& counts() const noexcept { return counts_; }

    private:
        std::vector<double> counts_;
        double total_ = 0.0;
        double increment_ = 1.0;
        double growth_ = 1.0;
    };

    std::uint32_t bin_of(std::uint32_t tokens) const noexcept {
        if (tokens <= 1) return 0;
        return std::min<std::uint32_t>((tokens - 1) / width_, std::uint32_t(upper_.size()) - 1);
    }

    options opts_;
    std::uint32_t k_;
    std::uint32_t max_;
    std::uint32_t width_ = 1;
    std::vector<std::uint32_t> upper_;   // bin upper edges
    std::vector<std::uint32_t> bounds_;  // current capacities
    decayed long_, recent_;
    std::vector<std::uint32_t> group_end_;  // drift groups: end bin (exclusive) of each
    std::vector<double> reference_;         // share of each group at the last calibration
    std::uint64_t observations_ = 0;
    std::uint64_t since_reset_ = 0;        // observations since the start or the last drift
    std::uint64_t since_calibration_ = 0;  // observations since the last calibration
    std::uint64_t calibrations_ = 0;
    std::uint64_t drift_detections_ = 0;
    bool stale_ = true;  // the boundaries wait for `warmup` observations
};

}  // namespace odma::bucket
