// odma/bucket/fixed.hpp - bucket boundaries chosen once, up front.
#pragma once

#include <odma/bucket/detail/capacities.hpp>

#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace odma::bucket {

/// A fixed set of bucket capacities (in tokens), ascending, the last one being max_tokens.
///
/// Build it with a named constructor: uniform() (equal widths, as in S3), powers_of_two(),
/// geometric() (a few classes per doubling, as size-class allocators such as mimalloc use) or
/// explicit_list(). It never learns: observe() does nothing.
class fixed {
public:
    /// `count` buckets of equal width up to `max_tokens`: max/count, 2*max/count, ..., max
    /// (rounded up). The S3 baseline uses 10 such buckets.
    static fixed uniform(std::uint32_t count, std::uint32_t max_tokens) {
        if (count == 0) throw std::invalid_argument("odma::bucket::fixed::uniform: count is 0");
        if (max_tokens < count)
            throw std::invalid_argument("odma::bucket::fixed::uniform: max_tokens (" +
                                        std::to_string(max_tokens) + ") < count (" +
                                        std::to_string(count) + ")");
        return fixed(detail::uniform_capacities(count, max_tokens));
    }

    /// min_tokens, 2*min_tokens, 4*min_tokens, ... and finally max_tokens.
    static fixed powers_of_two(std::uint32_t min_tokens, std::uint32_t max_tokens) {
        if (min_tokens == 0 || min_tokens > max_tokens)
            throw std::invalid_argument(
                "odma::bucket::fixed::powers_of_two: need 0 < min_tokens <= max_tokens");
        std::vector<std::uint32_t> b;
        for (std::uint64_t c = min_tokens; c < max_tokens; c *= 2)
            b.push_back(std::uint32_t(c));
        b.push_back(max_tokens);
        return fixed(std::move(b));
    }

    /// `per_doubling` capacities per power of two from min_tokens up (worst-case rounding waste
    /// about 1/per_doubling), finally max_tokens.
    static fixed geometric(std::uint32_t min_tokens, std::uint32_t max_tokens,
                           std::uint32_t per_doubling = 4) {
        if (min_tokens == 0 || min_tokens > max_tokens || per_doubling == 0)
            throw std::invalid_argument(
                "odma::bucket::fixed::geometric: need 0 < min_tokens <= max_tokens and "
                "per_doubling > 0");
        std::vector<std::uint32_t> b;
        const double step = std::exp2(1.0 / per_doubling);
        for (double c = min_tokens; c < max_tokens; c *= step) {
            const auto v = std::uint32_t(std::ceil(c - 1e-9));
            if (b.empty() || v > b.back()) b.push_back(v);
        }
        if (b.empty() || b.back() != max_tokens) b.push_back(max_tokens);
        return fixed(std::move(b));
    }

    /// Exactly these capacities: strictly ascending, all > 0. The last is max_tokens.
    static fixed explicit_list(std::vector<std::uint32_t> capacities) {
        return fixed(std::move(capacities));
    }

    /// Smallest capacity >= tokens; max_tokens() for anything larger.
    std::uint32_t capacity_for(std::uint32_t tokens) const noexcept {
        return detail::round_up(bounds_, tokens);
    }

    std::uint32_t max_tokens() const noexcept { return bounds_.back(); }
    std::span<const std::uint32_t> boundaries() const noexcept { return bounds_; }
    void observe(std::uint32_t) const noexcept {}

private:
    explicit fixed(std::vector<std::uint32_t> b) : bounds_(std::move(b)) {
        if (bounds_.empty())
            throw std::invalid_argument("odma::bucket::fixed: no bucket capacities given");
        if (bounds_.front() == 0)
            throw std::invalid_argument("odma::bucket::fixed: a bucket capacity is 0");
        if (!detail::strictly_ascending(bounds_))
            throw std::invalid_argument(
                "odma::bucket::fixed: capacities must be strictly ascending");
    }

    std::vector<std::uint32_t> bounds_;
};

}  // namespace odma::bucket
