// odma/predict/quantile_calibration.hpp - the recalibration map that makes a learned
// predictor's quantiles honest on held-out data.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <span>
#include <vector>

namespace odma::predict {

/// A monotone map from the probability level a caller asks for (nominal) to the level to read
/// off the model's own distribution, so that "the 95% quantile" covers 95% of held-out answers.
///
/// Fitted from probability integral transforms (PIT) of held-out samples (Kuleshov et al.,
/// "Accurate uncertainties for deep learning using calibrated regression", ICML 2018): if the
/// model were calibrated the PIT values would be uniform; the map sends nominal level p to the
/// empirical p-quantile of the PIT values. Piecewise linear between fixed knots, identity by
/// default.
class quantile_calibration {
public:
    /// Nominal levels of the knots: dense in the tails, where reservations are decided.
    static constexpr std::array<double, 21> knots{0.0,  0.001, 0.01, 0.02,  0.05,  0.10,  0.15,
                                                  0.25, 0.35,  0.50, 0.65,  0.75,  0.85,  0.90,
                                                  0.95, 0.98,  0.99, 0.995, 0.998, 0.999, 1.0};

    /// The identity map.
    quantile_calibration() noexcept { model_ = knots; }

    /// Fits the map to PIT values in [0, 1] (the order does not matter; they are sorted).
    /// Fewer than 50 values leave it the identity: tails estimated from fewer are noise.
    static quantile_calibration fit(std::vector<double> pit) {
        quantile_calibration c;
        if (pit.size() < 50) return c;
        std::sort(pit.begin(), pit.end());
        const double n = double(pit.size());
        for (std::size_t k = 1; k + 1 < knots.size(); ++k) {
            // Empirical quantile, interpolated between order statistics.
            const double pos = knots[k] * (n - 1.0);
            const auto i = static_cast<std::size_t>(pos);
            const double frac = pos - double(i);
            const double v =
                i + 1 < pit.size() ? pit[i] + frac * (pit[i + 1] - pit[i]) : pit.back();
            c.model_[k] = std::clamp(v, 0.0, 1.0);
        }
        c.model_.front() = 0.0;
        c.model_.back() = 1.0;
        for (std::size_t k = 1; k < knots.size(); ++k)  // keep it monotone
            c.model_[k] = std::max(c.model_[k], c.model_[k - 1]);
        return c;
    }

    /// Builds a map from stored model levels (one per knot), validating them. Used by load().
    static bool from_levels(std::span<const double> levels, quantile_calibration& out) {
        if (levels.size() != knots.size()) return false;
        for (std::size_t k = 0; k < levels.size(); ++k)
            if (!(levels[k] >= 0.0 && levels[k] <= 1.0) || (k && levels[k] < levels[k - 1]))
                return false;
        std::copy(levels.begin(), levels.end(), out.model_.begin());
        return true;
    }

    /// The level to read off the model for nominal level p.
    double model_level(double p) const noexcept { return interpolate(knots, model_, p); }
    /// The nominal level of a model CDF value v (inverse of model_level).
    double nominal_level(double v) const noexcept { return interpolate(model_, knots, v); }
    /// Model levels at the knots.
    std::span<const double, knots.size()> levels() const noexcept { return model_; }
    bool is_identity() const noexcept { return model_ == knots; }

    friend bool operator==(const quantile_calibration&, const quantile_calibration&) = default;

private:
    static double interpolate(std::span<const double> xs, std::span<const double> ys,
                              double x) noexcept {
        if (!(x > xs.front())) return ys.front();  // also NaN
        if (x >= xs.back()) return ys.back();
        std::size_t i = 1;
        while (xs[i] < x)
            ++i;
        // A flat stretch of xs (possible in model levels) maps to its upper end.
        if (xs[i] == xs[i - 1]) return ys[i];
        const double t = (x - xs[i - 1]) / (xs[i] - xs[i - 1]);
        return ys[i - 1] + t * (ys[i] - ys[i - 1]);
    }

    std::array<double, knots.size()> model_{};
};

}  // namespace odma::predict
