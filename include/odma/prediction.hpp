// odma/prediction.hpp - a predicted generation length with its uncertainty.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>

namespace odma {

/// A predictor's answer: the distribution of the number of tokens a request will generate,
/// kept as its quantiles at a fixed set of probability levels.
///
/// Why quantiles: the allocator needs "how much to reserve so that the request overflows with
/// probability at most r", which is exactly quantile(1 - r); and a fixed table of eight
/// numbers is cheap to return by value on the hot path. Between levels the quantile function
/// is interpolated linearly; outside them it is clamped.
class prediction {
public:
    /// Probability levels at which quantiles are stored.
    static constexpr std::array<double, 8> levels{0.10, 0.25, 0.50, 0.75, 0.90, 0.95, 0.99, 0.999};
    static constexpr std::size_t median_index = 2;

    /// A prediction with no uncertainty: every quantile is `tokens`.
    static constexpr prediction exact(std::uint32_t tokens) noexcept {
        prediction p;
        p.q_.fill(tokens);
        return p;
    }

    /// From quantiles at `levels`; they are sorted so that a slightly non-monotone input (for
    /// example from a noisy model) still gives a valid quantile function.
    static constexpr prediction from_quantiles(std::array<std::uint32_t, 8> q) noexcept {
        std::sort(q.begin(), q.end());
        prediction p;
        p.q_ = q;
        return p;
    }

    /// Point estimate: the median.
    constexpr std::uint32_t tokens() const noexcept { return q_[median_index]; }

    /// Tokens below which the generated length falls with probability p.
    constexpr std::uint32_t quantile(double p) const noexcept {
        // An exact prediction (constant, oracle) needs no interpolation; after inlining, the
        // compiler sees this for exact() and drops the arithmetic below.
        if (q_.front() == q_.back()) return q_.front();
        if (!(p > levels.front())) return q_.front();  // also catches NaN
        if (p >= levels.back()) return q_.back();
        std::size_t i = 1;
        while (levels[i] < p)
            ++i;
        const double t = (p - levels[i - 1]) / (levels[i] - levels[i - 1]);
        const double v = q_[i - 1] + t * (double(q_[i]) - double(q_[i - 1]));
        return static_cast<std::uint32_t>(std::ceil(v - 1e-9));
    }

    /// Spread of the prediction: log2(q90 / q50), 0 for an exact prediction. One unit means the
    /// 90th percentile is twice the median.
    double uncertainty() const noexcept {
        const double lo = std::max<std::uint32_t>(q_[median_index], 1);
        const double hi = std::max<std::uint32_t>(q_[4], 1);
        return std::log2(hi / lo);
    }

    /// The stored quantiles, one per entry of `levels`.
    constexpr std::span<const std::uint32_t, 8> quantiles() const noexcept { return q_; }

    friend constexpr bool operator==(const prediction&, const prediction&) noexcept = default;

private:
    std::array<std::uint32_t, 8> q_{};
};

}  // namespace odma
