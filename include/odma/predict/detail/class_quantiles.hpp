// odma/predict/detail/class_quantiles.hpp - quantiles and CDF values of probability masses
// over length classes, under the log-uniform-within-a-class model of length_distribution.hpp.
//
// Private: shared by length_distribution and the predictors that condense their class masses
// straight to an odma::prediction without building a length_distribution first.
#pragma once

#include <odma/predict/length_classes.hpp>
#include <odma/predict/quantile_calibration.hpp>
#include <odma/prediction.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>

namespace odma::predict::detail {

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

}  // namespace odma::predict::detail
