// odma/predict/length_distribution.hpp - a predicted distribution over generated lengths.
//
// Both learned predictors (predict::ngram, predict::prompt_quantile) describe a request's
// generated length as probability masses over log-spaced length classes (length_classes.hpp).
// This header holds the distribution with its quantile and CDF functions; it also brings in the
// class layout and the quantile recalibration map (quantile_calibration.hpp), which every user
// of a distribution needs.
//
// One continuous model ties quantiles, CDFs and "is this reservation safe" together: inside
// class c the length is log-uniform on [lower(c), lower(c+1)), and an integer length is that
// continuous value rounded down. So quantile(p) >= n exactly when p >= cdf(n - 1), and the
// probability integral transform pit(n) = cdf(n - 1) is what a calibration check needs.
#pragma once

#include <odma/predict/detail/class_quantiles.hpp>
#include <odma/predict/length_classes.hpp>
#include <odma/predict/quantile_calibration.hpp>
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
