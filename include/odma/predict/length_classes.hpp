// odma/predict/length_classes.hpp - log-spaced length classes, the layout both learned
// predictors (predict::ngram, predict::prompt_quantile) describe generated lengths on.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

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

}  // namespace odma::predict
