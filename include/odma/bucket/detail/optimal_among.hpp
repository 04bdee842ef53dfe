// odma/bucket/detail/optimal_among.hpp - the exact dynamic program behind
// bucket::optimal_boundaries().
//
// Method: dynamic programming over (buckets used, last bin covered),
//   f_t(j) = min_{i<j} f_{t-1}(i) + upper_j * (W_j - W_i),   W = prefix sums of w,
// where, for fixed j, each candidate i is a line of slope -W_i (falling as i grows) evaluated
// at upper_j (rising as j grows). The minimum of such lines is a monotone convex-hull query, so
// each layer costs O(M) and the whole solution O(k * M): about 65,000 steps for 4,096 bins and
// 16 buckets. Tests check it against brute force.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

namespace odma::bucket::detail {

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

}  // namespace odma::bucket::detail
