// odma/bucket/detail/fill_spare.hpp - where bucket::optimal_boundaries() puts the capacities
// the histogram does not need.
//
// With fewer distinct lengths than buckets, more capacities never cost anything on the
// histogram; spread geometrically into the widest gaps, they keep requests of lengths not yet
// seen from rounding up far.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace odma::bucket::detail {

/// Adds capacities (among `upper`) into the widest gaps of `caps` until it has k of them or no
/// bin edge is left in any gap. Gap width is measured as a ratio (the next capacity over the
/// previous one), so spare buckets spread geometrically, like size classes.
inline void fill_spare(std::vector<std::uint32_t>& caps, std::span<const std::uint32_t> upper,
                       std::uint32_t k) {
    while (caps.size() < k) {
        double widest = 1.0;
        std::size_t at = caps.size();
        std::uint32_t pick = 0;
        for (std::size_t i = 0; i < caps.size(); ++i) {
            const double lo = i ? caps[i - 1] : 0.0, hi = caps[i];
            // Edges strictly inside (lo, hi): the one nearest the geometric middle.
            const auto first = std::upper_bound(upper.begin(), upper.end(), std::uint32_t(lo));
            const auto last = std::lower_bound(upper.begin(), upper.end(), caps[i]);
            if (first >= last) continue;
            const double ratio = hi / std::max(lo, 1.0);
            if (ratio <= widest) continue;
            const double middle = std::sqrt(std::max(lo, 1.0) * hi);
            auto it = std::lower_bound(first, last, std::uint32_t(std::min(middle, hi - 1.0)));
            if (it == last) --it;
            widest = ratio;
            at = i;
            pick = *it;
        }
        if (at == caps.size()) return;  // no room left
        caps.insert(caps.begin() + std::ptrdiff_t(at), pick);
    }
}

}  // namespace odma::bucket::detail
