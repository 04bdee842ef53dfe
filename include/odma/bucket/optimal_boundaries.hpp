// odma/bucket/optimal_boundaries.hpp - the bucket capacities that waste the fewest tokens on a
// length histogram, found exactly.
//
// Problem: a histogram has M bins; bin i holds weight w_i of requests whose length is at most
// upper_i (ascending, the last being max_tokens). Choose k capacities among the upper edges,
// the largest being upper_{M-1}, so that every request reserves the smallest capacity that holds
// it, and the expected reserved-minus-used tokens are minimal. The used tokens do not depend on
// the choice, so this minimises sum_i w_i * capacity(i).
//
// Method: dynamic programming over (buckets used, last bin covered),
//   f_t(j) = min_{i<j} f_{t-1}(i) + upper_j * (W_j - W_i),   W = prefix sums of w,
// where, for fixed j, each candidate i is a line of slope -W_i (falling as i grows) evaluated
// at upper_j (rising as j grows). The minimum of such lines is a monotone convex-hull query, so
// each layer costs O(M) and the whole solution O(k * M): about 65,000 steps for 4,096 bins and
// 16 buckets. Tests check it against brute force.
//
// Only edges of non-empty bins (and the last edge) can be needed: a capacity above an empty bin
// can move down to the nearest non-empty edge without costing anything. So the program runs on
// those candidates, and capacities it does not need (fewer distinct lengths than buckets) are
// spread into the widest gaps, geometrically: more capacities never cost anything on the
// histogram, and they keep requests of lengths not yet seen from rounding up far.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace odma::detail {

/// The optimum of optimal_boundaries() restricted to exactly min(k, M) capacities among
/// `upper` (all bins are candidates). Inputs are already validated.
inline std::vector<std::uint32_t> optimal_among(std::span<const double> weights,
                                                std::span<const std::uint32_t> upper,
                                                std::uint32_t k) {
    const std::size_t m = upper.size();
    const std::size_t layers = std::min<std::size_t>(k, m);
    std::vector<double> prefix(m);  // W_j: weight of bins 0..j
    double run = 0.0;
    for (std::size_t i = 0; i < m; ++i)
        prefix[i] = (run += weights[i]);

    // f[j] for the current layer; from[t][j] is the argmin i (last bin of the previous bucket).
    std::vector<double> prev(m), cur(m);
    std::vector<std::uint32_t> from(layers * m, 0);
    for (std::size_t j = 0; j < m; ++j)
        prev[j] = double(upper[j]) * prefix[j];

    std::vector<std::uint32_t> hull;  // candidate i's, slopes -W_i non-increasing
    hull.reserve(m);
    for (std::size_t t = 1; t < layers; ++t) {
        hull.clear();
        std::size_t best = 0;  // query pointer into hull
        // Line i: y = prev[i] - W_i * x. Line b is useless between a and c when the a/c
        // crossing lies at or left of the a/b crossing (all in long double: the products reach
        // 1e18 on large histograms).
        auto useless = [&](std::uint32_t a, std::uint32_t b, std::uint32_t c) {
            const long double ab = (long double)(prefix[b]) - prefix[a];
            const long double ac = (long double)(prefix[c]) - prefix[a];
            return ((long double)(prev[c]) - prev[a]) * ab <=
                   ((long double)(prev[b]) - prev[a]) * ac;
        };
        auto value = [&](std::uint32_t i, double x) {
            return (long double)(prev[i]) - (long double)(prefix[i]) * x;
        };
        for (std::size_t j = t; j < m; ++j) {
            // Make line i = j - 1 available (a bucket must end at or after bin t - 1).
            const auto i = static_cast<std::uint32_t>(j - 1);
            bool add = true;
            if (!hull.empty() && prefix[hull.back()] == prefix[i]) {  // parallel: keep the lower
                if (prev[i] < prev[hull.back()])
                    hull.pop_back();
                else
                    add = false;
            }
            if (add) {
                while (hull.size() >= 2 && useless(hull[hull.size() - 2], hull.back(), i))
                    hull.pop_back();
                hull.push_back(i);
            }
            best = std::min(best, hull.size() - 1);
            const double x = upper[j];
            while (best + 1 < hull.size() && value(hull[best + 1], x) <= value(hull[best], x))
                ++best;
            const std::uint32_t arg = hull[best];
            cur[j] = double(value(arg, x) + (long double)(x)*prefix[j]);
            from[t * m + j] = arg;
        }
        for (std::size_t j = 0; j < t; ++j)
            cur[j] = std::numeric_limits<double>::infinity();
        std::swap(prev, cur);
    }

    std::vector<std::uint32_t> out(layers);
    std::size_t j = m - 1;
    for (std::size_t t = layers; t-- > 0;) {
        out[t] = upper[j];
        if (t) j = from[t * m + j];
    }
    return out;
}

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

}  // namespace odma::detail

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
