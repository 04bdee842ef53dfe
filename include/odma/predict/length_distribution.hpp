// odma/predict/length_distribution.hpp - a predicted distribution over generated lengths.
//
// Both learned predictors (predict::ngram, predict::prompt_quantile) describe a request's
// generated length as probability masses over log-spaced length classes. This header holds the
// class layout, the distribution with its quantile and CDF functions, and the quantile
// recalibration map that makes a model's quantiles honest on held-out data.
//
// One continuous model ties quantiles, CDFs and "is this reservation safe" together: inside
// class c the length is log-uniform on [lower(c), lower(c+1)), and an integer length is that
// continuous value rounded down. So quantile(p) >= n exactly when p >= cdf(n - 1), and the
// probability integral transform pit(n) = cdf(n - 1) is what a calibration check needs.
#pragma once

#include <odma/prediction.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace odma::predict {

/// Largest number of length classes a layout may have (keeps the hot path on the stack).
inline constexpr std::uint32_t max_length_classes = 64;

/// Log-spaced classes that partition the lengths 1..max_length.
///
/// The first classes hold one length each (1, 2, 3, ...) until the geometric spacing is wider
/// than one token; after that each class is a constant factor wider than the last. Why
/// log-spaced: generation lengths span three to four orders of magnitude and a relative error
/// matters, not an absolute one (missing by 50 tokens is nothing at 2,000 and a lot at 20).
class length_classes {
public:
    /// 32 classes up to 32,768 tokens (about 1.38x per class).
    length_classes() : length_classes(32, 32768) {}

    /// `count` classes covering 1..max_length. Throws std::invalid_argument unless
    /// 2 <= count <= max_length_classes and count <= max_length.
    length_classes(std::uint32_t count, std::uint32_t max_length) : count_(count) {
        if (count < 2 || count > max_length_classes || max_length < count)
            throw std::invalid_argument(
                "odma::predict::length_classes: need 2 <= count <= " +
                std::to_string(max_length_classes) + " and count <= max_length, got count " +
                std::to_string(count) + ", max_length " + std::to_string(max_length));
        const double end = double(max_length) + 1.0;  // exclusive end of the last class
        lo_[0] = 1;
        for (std::uint32_t c = 1; c < count; ++c) {
            // Split what is left geometrically among the classes still to place.
            const double prev = lo_[c - 1];
            const double step = std::pow(end / prev, 1.0 / double(count - c + 1));
            auto next = static_cast<std::uint32_t>(std::llround(prev * step));
            next = std::max(next, lo_[c - 1] + 1);
            next = std::min(next, max_length + 1 - (count - c));  // room for the rest
            lo_[c] = next;
        }
        lo_[count] = max_length + 1;
    }

    /// Number of classes.
    std::uint32_t size() const noexcept { return count_; }
    /// Longest length the layout covers; longer lengths fall in the last class.
    std::uint32_t max_length() const noexcept { return lo_[count_] - 1; }
    /// Smallest length in class c.
    std::uint32_t lower(std::uint32_t c) const noexcept { return lo_[c]; }
    /// Largest length in class c.
    std::uint32_t upper(std::uint32_t c) const noexcept { return lo_[c + 1] - 1; }

    /// The class holding length n (0 counts as 1, lengths above max_length as max_length).
    std::uint32_t class_of(std::uint32_t n) const noexcept {
        const auto it = std::upper_bound(lo_.begin() + 1, lo_.begin() + count_, n);
        return static_cast<std::uint32_t>(it - lo_.begin()) - 1;
    }

    /// Where the continuous value `x` (lower(c) <= x <= lower(c+1)) lies in class c, in [0, 1].
    double position(std::uint32_t c, double x) const noexcept {
        const double lo = lo_[c], hi = lo_[c + 1];
        return std::clamp(std::log(x / lo) / std::log(hi / lo), 0.0, 1.0);
    }

    /// The length a fraction t in [0, 1] of the way through class c (log-uniform inside it).
    std::uint32_t length_at(std::uint32_t c, double t) const noexcept {
        const double lo = lo_[c], hi = lo_[c + 1];
        const double x = lo * std::exp(t * std::log(hi / lo));
        return std::clamp(static_cast<std::uint32_t>(x + 1e-9), lo_[c], lo_[c + 1] - 1);
    }

    friend bool operator==(const length_classes& a, const length_classes& b) noexcept {
        return a.count_ == b.count_ &&
               std::equal(a.lo_.begin(), a.lo_.begin() + a.count_ + 1, b.lo_.begin());
    }

private:
    std::uint32_t count_ = 0;
    std::array<std::uint32_t, max_length_classes + 1> lo_{};
};

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

namespace odma::detail {

using predict::length_classes;
using predict::quantile_calibration;

/// Quantile at level p of class masses `cum` (cumulative, cum[c] = P(class <= c), last 1).
inline std::uint32_t quantile_of(const length_classes& cls, const double* cum, double p) {
    const std::uint32_t n = cls.size();
    std::uint32_t c = 0;
    while (c + 1 < n && cum[c] < p)
        ++c;
    // Skip empty classes at the front (p == 0 would otherwise land in an empty class 0).
    const double below = c ? cum[c - 1] : 0.0;
    const double mass = cum[c] - below;
    if (mass <= 0.0) {
        while (c + 1 < n && cum[c] - (c ? cum[c - 1] : 0.0) <= 0.0)
            ++c;
        return cls.lower(c);
    }
    return cls.length_at(c, std::clamp((p - below) / mass, 0.0, 1.0));
}

/// P(continuous length < x) for the class masses `cum`; x in [1, max_length + 1].
inline double cdf_below(const length_classes& cls, const double* cum, double x) {
    if (x <= 1.0) return 0.0;
    if (x >= double(cls.max_length()) + 1.0) return 1.0;
    const std::uint32_t c = cls.class_of(static_cast<std::uint32_t>(x));
    const double below = c ? cum[c - 1] : 0.0;
    return below + (cum[c] - below) * cls.position(c, x);
}

/// The prediction (eight quantiles, calibrated, capped at `cap` tokens) of class masses `cum`.
inline prediction to_prediction(const length_classes& cls, const double* cum,
                                const quantile_calibration& cal, std::uint32_t cap) {
    std::array<std::uint32_t, prediction::levels.size()> q{};
    for (std::size_t i = 0; i < q.size(); ++i)
        q[i] =
            std::clamp<std::uint32_t>(quantile_of(cls, cum, cal.model_level(prediction::levels[i])),
                                      1, std::max<std::uint32_t>(cap, 1));
    return prediction::from_quantiles(q);
}

}  // namespace odma::detail

namespace odma::predict {

/// A predicted distribution of one request's generated length.
///
/// Returned by the learned predictors' distribution(request); predict() returns the same
/// distribution condensed to odma::prediction. All probabilities here are calibrated (the
/// predictor's quantile_calibration is applied), and lengths never exceed the request's
/// max_new_tokens: probability mass beyond it sits at max_new_tokens, because that is where
/// generation stops.
class length_distribution {
public:
    /// A distribution with class probabilities `masses` (normalised here), a calibration map and
    /// the request's cap on generated tokens. Throws std::invalid_argument if the number of
    /// masses differs from the number of classes.
    length_distribution(const length_classes& classes, std::span<const double> masses,
                        const quantile_calibration& calibration, std::uint32_t cap)
        : classes_(classes), calibration_(calibration), cap_(std::max<std::uint32_t>(cap, 1)) {
        if (masses.size() != classes.size())
            throw std::invalid_argument(
                "odma::predict::length_distribution: " + std::to_string(masses.size()) +
                " masses for " + std::to_string(classes.size()) + " classes");
        double total = 0.0;
        for (std::uint32_t c = 0; c < classes.size(); ++c) {
            total += std::max(masses[c], 0.0);
            cum_[c] = total;
        }
        for (std::uint32_t c = 0; c < classes.size(); ++c)
            cum_[c] = total > 0.0 ? cum_[c] / total : double(c + 1) / classes.size();
        cum_[classes.size() - 1] = 1.0;
    }

    /// Smallest n such that P(length <= n) >= p (calibrated), at most the cap.
    std::uint32_t quantile(double p) const noexcept {
        return std::clamp<std::uint32_t>(
            detail::quantile_of(classes_, cum_.data(), calibration_.model_level(p)), 1, cap_);
    }

    /// P(length <= n), calibrated; 1 at and beyond the cap.
    double cdf(std::uint32_t n) const noexcept {
        if (n >= cap_) return 1.0;
        return calibration_.nominal_level(detail::cdf_below(classes_, cum_.data(), double(n) + 1));
    }

    /// P(a < length <= b).
    double probability(std::uint32_t a, std::uint32_t b) const noexcept {
        return b <= a ? 0.0 : cdf(b) - cdf(a);
    }

    /// Probability integral transform of an observed length n: P(length < n) under the model,
    /// calibrated. Uniform on [0, 1] over many requests when the predictor is calibrated; a
    /// reservation at quantile(p) holds n exactly when pit(n) <= p.
    double pit(std::uint32_t n) const noexcept { return n <= 1 ? 0.0 : cdf(n - 1); }

    /// The condensed form the allocator uses.
    prediction to_prediction() const {
        return detail::to_prediction(classes_, cum_.data(), calibration_, cap_);
    }

    /// Raw (uncalibrated) probability of class c.
    double class_probability(std::uint32_t c) const noexcept {
        return c ? cum_[c] - cum_[c - 1] : cum_[0];
    }
    const length_classes& classes() const noexcept { return classes_; }
    std::uint32_t cap() const noexcept { return cap_; }

private:
    length_classes classes_;
    quantile_calibration calibration_;
    std::uint32_t cap_;
    std::array<double, max_length_classes> cum_{};
};

}  // namespace odma::predict
