// odma/bucket/detail/capacities.hpp - lists of bucket capacities: building, checking and
// rounding up to them, shared by the bucket policies.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace odma::bucket::detail {

/// `count` capacities of equal width up to `max_tokens`: max/count, 2*max/count, ..., max
/// (rounded up). Requires 0 < count <= max_tokens.
inline std::vector<std::uint32_t> uniform_capacities(std::uint32_t count,
                                                     std::uint32_t max_tokens) {
    std::vector<std::uint32_t> b(count);
    for (std::uint32_t i = 0; i < count; ++i)
        b[i] = std::uint32_t((std::uint64_t(i + 1) * max_tokens + count - 1) / count);
    return b;
}

/// True if every capacity is above the one before it.
inline bool strictly_ascending(std::span<const std::uint32_t> capacities) noexcept {
    for (std::size_t i = 1; i < capacities.size(); ++i)
        if (capacities[i] <= capacities[i - 1]) return false;
    return true;
}

/// The smallest of `capacities` (ascending, not empty) that is >= tokens; the largest for
/// anything larger.
inline std::uint32_t round_up(std::span<const std::uint32_t> capacities,
                              std::uint32_t tokens) noexcept {
    const auto it = std::lower_bound(capacities.begin(), capacities.end(), tokens);
    return it == capacities.end() ? capacities.back() : *it;
}

}  // namespace odma::bucket::detail
