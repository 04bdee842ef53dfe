// odma/bucket/optimal_boundaries.hpp - the bucket capacities that waste the fewest tokens on a
// length histogram, found exactly.
//
// Problem: a histogram has M bins; bin i holds weight w_i of requests whose length is at most
// upper_i (ascending, the last being max_tokens). Choose k capacities among the upper edges,
// the largest being upper_{M-1}, so that every request reserves the smallest capacity that holds
// it, and the expected reserved-minus-used tokens are minimal. The used tokens do not depend on
// the choice, so this minimises sum_i w_i * capacity(i).
//
// Method: an exact dynamic program in O(k * M), solved as a monotone convex-hull query
// (detail/optimal_among.hpp); tests check it against brute force.
//
// Only edges of non-empty bins (and the last edge) can be needed: a capacity above an empty bin
// can move down to the nearest non-empty edge without costing anything. So the program runs on
// those candidates, and capacities it does not need (fewer distinct lengths than buckets) are
// spread into the widest gaps, geometrically (detail/fill_spare.hpp).
#pragma once

#include <odma/bucket/detail/fill_spare.hpp>
#include <odma/bucket/detail/optimal_among.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace odma::bucket {

/// The at most `k` capacities, chosen among `upper`, that minimise the expected reserved tokens
/// sum_i weights[i] * capacity(upper[i]) (equivalently, the reserved-minus-used waste). The last
/// capacity is always upper.back() (the large-bucket safeguard). Exactly min(k, M) capacities
/// are returned, ascending: where the histogram needs fewer, the spare ones are spread
/// geometrically into the widest gaps (which never costs anything on the histogram).
///
/// Requires weights.size() == upper.size() > 0, upper strictly ascending, weights >= 0, k > 0;
/// throws std::invalid_argument otherwise.
inline std::vector<std::uint32_t> optimal_boundaries(std::span<const double> weights,
                                                     std::span<const std::uint32_t> upper,
                                                     std::uint32_t k) {
    const std::size_t m = upper.size();
    if (m == 0 || weights.size() != m || k == 0)
        throw std::invalid_argument(
            "odma::bucket::optimal_boundaries: need as many weights as bins (" +
            std::to_string(weights.size()) + " vs " + std::to_string(m) + "), at least one, k > 0");
    for (std::size_t i = 0; i < m; ++i)
        if (!(weights[i] >= 0.0) || (i && upper[i] <= upper[i - 1]))
            throw std::invalid_argument(
                "odma::bucket::optimal_boundaries: weights must be >= 0 and bin edges strictly "
                "ascending");
    // Candidates: non-empty bins and the last one.
    std::vector<double> w;
    std::vector<std::uint32_t> edge;
    for (std::size_t i = 0; i < m; ++i)
        if (weights[i] > 0.0 || i + 1 == m) {
            w.push_back(weights[i]);
            edge.push_back(upper[i]);
        }
    std::vector<std::uint32_t> caps = detail::optimal_among(w, edge, k);
    detail::fill_spare(caps, upper, k);
    return caps;
}

/// Mean reserved-minus-used tokens when requests of length lengths[i] (weight weights[i]) each
/// reserve the smallest capacity in `boundaries` that holds them (lengths above the largest
/// capacity reserve exactly their length: they are not counted as waste). 0 for zero weight.
inline double expected_waste(std::span<const double> weights,
                             std::span<const std::uint32_t> lengths,
                             std::span<const std::uint32_t> boundaries) {
    double total = 0.0, waste = 0.0;
    for (std::size_t i = 0; i < weights.size() && i < lengths.size(); ++i) {
        const auto it = std::lower_bound(boundaries.begin(), boundaries.end(), lengths[i]);
        const double cap = it == boundaries.end() ? double(lengths[i]) : double(*it);
        waste += weights[i] * (cap - double(lengths[i]));
        total += weights[i];
    }
    return total > 0.0 ? waste / total : 0.0;
}

}  // namespace odma::bucket
