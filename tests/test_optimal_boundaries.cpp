// bucket::optimal_boundaries against brute force, and expected_waste.
#include <odma/bucket/optimal_boundaries.hpp>
#include <odma/support/random.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <limits>
#include <stdexcept>
#include <vector>

using odma::bucket::optimal_boundaries;

namespace {

// sum_i w_i * capacity(i) for capacities chosen among the upper edges.
double reserved(const std::vector<double>& w, const std::vector<std::uint32_t>& upper,
                const std::vector<std::uint32_t>& caps) {
    double total = 0.0;
    for (std::size_t i = 0; i < w.size(); ++i) {
        const auto it = std::lower_bound(caps.begin(), caps.end(), upper[i]);
        REQUIRE(it != caps.end());  // the last capacity must cover every bin
        total += w[i] * *it;
    }
    return total;
}

// The best cost over every choice of k - 1 capacities among the first m - 1 edges.
double brute_force(const std::vector<double>& w, const std::vector<std::uint32_t>& upper,
                   std::uint32_t k) {
    const std::size_t m = upper.size();
    double best = std::numeric_limits<double>::infinity();
    for (std::uint32_t mask = 0; mask < (1u << (m - 1)); ++mask) {
        if (std::uint32_t(std::popcount(mask)) != std::min<std::uint32_t>(k, m) - 1) continue;
        std::vector<std::uint32_t> caps;
        for (std::size_t i = 0; i + 1 < m; ++i)
            if (mask >> i & 1) caps.push_back(upper[i]);
        caps.push_back(upper.back());
        best = std::min(best, reserved(w, upper, caps));
    }
    return best;
}

}  // namespace

TEST_CASE("optimal_boundaries matches brute force on small histograms") {
    odma::support::splitmix64 rng(2024);
    for (int trial = 0; trial < 400; ++trial) {
        const auto m = static_cast<std::size_t>(1 + rng.below(10));
        const auto k = static_cast<std::uint32_t>(1 + rng.below(6));
        std::vector<double> w(m);
        std::vector<std::uint32_t> upper(m);
        std::uint32_t edge = 0;
        for (std::size_t i = 0; i < m; ++i) {
            edge += static_cast<std::uint32_t>(1 + rng.below(50));  // uneven bin widths
            upper[i] = edge;
            // Integers, fractions (decayed counts) and empty bins.
            const auto kind = rng.below(3);
            w[i] = kind == 0 ? double(rng.below(20)) : kind == 1 ? rng.unit() * 5 : 0.0;
        }
        const auto caps = optimal_boundaries(w, upper, k);
        CAPTURE(trial);
        REQUIRE(caps.size() == std::min<std::size_t>(k, m));
        CHECK(caps.back() == upper.back());
        for (std::size_t i = 1; i < caps.size(); ++i)
            CHECK(caps[i - 1] < caps[i]);
        const double want = brute_force(w, upper, k);
        CHECK(reserved(w, upper, caps) == doctest::Approx(want).epsilon(1e-12));
    }
}

TEST_CASE("optimal_boundaries puts capacities at the tops of clusters") {
    // Lengths 1..100 in one-token bins; requests at 10, 11, 12 and 60, 61 and one at 100.
    std::vector<double> w(100, 0.0);
    std::vector<std::uint32_t> upper(100);
    for (std::uint32_t i = 0; i < 100; ++i)
        upper[i] = i + 1;
    for (std::uint32_t n : {10, 11, 12, 60, 61, 100})
        w[n - 1] = 5.0;
    CHECK(optimal_boundaries(w, upper, 3) == std::vector<std::uint32_t>{12, 61, 100});
    const auto six = optimal_boundaries(w, upper, 6);
    CHECK(six == std::vector<std::uint32_t>{10, 11, 12, 60, 61, 100});
    // Zero waste with one bucket per distinct length.
    const std::vector<std::uint32_t> lengths(upper.begin(), upper.end());
    CHECK(odma::bucket::expected_waste(w, lengths, six) == 0.0);
    // With 3 buckets: 10 -> 12 wastes 2, 11 -> 12 wastes 1, 60 -> 61 wastes 1: mean 4/6.
    CHECK(odma::bucket::expected_waste(w, lengths, std::vector<std::uint32_t>{12, 61, 100}) ==
          doctest::Approx(4.0 / 6.0));
}

TEST_CASE("spare buckets spread geometrically when the histogram needs fewer") {
    // Only two distinct lengths, 16 buckets: the optimum needs 16, 762 and the safeguard 4096;
    // the other 13 go into the widest gaps instead of piling up at 1, 2, 3...
    std::vector<double> w(4096, 0.0);
    std::vector<std::uint32_t> upper(4096);
    for (std::uint32_t i = 0; i < 4096; ++i)
        upper[i] = i + 1;
    w[16 - 1] = 100;
    w[762 - 1] = 100;
    const auto caps = optimal_boundaries(w, upper, 16);
    REQUIRE(caps.size() == 16);
    CHECK(std::find(caps.begin(), caps.end(), 16u) != caps.end());
    CHECK(std::find(caps.begin(), caps.end(), 762u) != caps.end());
    CHECK(caps.back() == 4096);
    for (std::size_t i = 1; i < caps.size(); ++i) {
        CHECK(caps[i - 1] < caps[i]);
        CHECK(double(caps[i]) / caps[i - 1] < 2.1);  // no gap wider than about a doubling
    }
    // Still optimal: both lengths reserve exactly.
    CHECK(odma::bucket::expected_waste(w, upper, caps) == 0.0);
}

TEST_CASE("optimal_boundaries on a large histogram is exact against a slower dynamic program") {
    // 300 bins, 7 buckets: the O(k M^2) textbook recurrence as reference.
    odma::support::splitmix64 rng(7);
    const std::size_t m = 300;
    const std::uint32_t k = 7;
    std::vector<double> w(m);
    std::vector<std::uint32_t> upper(m);
    for (std::size_t i = 0; i < m; ++i) {
        upper[i] = std::uint32_t(3 * (i + 1));
        w[i] = rng.unit() < 0.5 ? 0.0 : rng.unit() * 100;
    }
    std::vector<double> prefix(m + 1, 0.0);
    for (std::size_t i = 0; i < m; ++i)
        prefix[i + 1] = prefix[i] + w[i];
    const double inf = std::numeric_limits<double>::infinity();
    std::vector<std::vector<double>> f(k + 1, std::vector<double>(m + 1, inf));
    f[0][0] = 0.0;
    for (std::uint32_t t = 1; t <= k; ++t)
        for (std::size_t j = 1; j <= m; ++j)
            for (std::size_t i = 0; i < j; ++i)
                f[t][j] = std::min(f[t][j], f[t - 1][i] + upper[j - 1] * (prefix[j] - prefix[i]));
    const auto caps = optimal_boundaries(w, upper, k);
    CHECK(reserved(w, upper, caps) == doctest::Approx(f[k][m]).epsilon(1e-12));
}

TEST_CASE("optimal_boundaries refuses bad input") {
    const std::vector<std::uint32_t> upper{1, 2, 3};
    CHECK_THROWS_AS(optimal_boundaries(std::vector<double>{1, 1}, upper, 2), std::invalid_argument);
    CHECK_THROWS_AS(optimal_boundaries(std::vector<double>{1, -1, 1}, upper, 2),
                    std::invalid_argument);
    CHECK_THROWS_AS(optimal_boundaries(std::vector<double>{1, 1, 1}, upper, 0),
                    std::invalid_argument);
    CHECK_THROWS_AS(
        optimal_boundaries(std::vector<double>{1, 1, 1}, std::vector<std::uint32_t>{1, 3, 2}, 2),
        std::invalid_argument);
    CHECK_THROWS_AS(optimal_boundaries({}, {}, 1), std::invalid_argument);
}
