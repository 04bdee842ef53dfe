// predict::length_classes, length_distribution and quantile_calibration.
#include <odma/predict/length_distribution.hpp>
#include <odma/support/random.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

using odma::predict::length_classes;
using odma::predict::length_distribution;
using odma::predict::quantile_calibration;

TEST_CASE("length classes partition 1..max_length into log-spaced ranges") {
    for (const auto& [count, max] : {std::pair{32u, 32768u}, {20u, 1000u}, {4u, 4u}, {64u, 100u}}) {
        const length_classes cls(count, max);
        CHECK(cls.size() == count);
        CHECK(cls.max_length() == max);
        CHECK(cls.lower(0) == 1);
        CHECK(cls.upper(count - 1) == max);
        for (std::uint32_t c = 0; c < count; ++c) {
            REQUIRE(cls.lower(c) <= cls.upper(c));               // never empty
            if (c) CHECK(cls.lower(c) == cls.upper(c - 1) + 1);  // contiguous
        }
        for (std::uint32_t n = 1; n <= max; ++n) {
            const auto c = cls.class_of(n);
            REQUIRE(cls.lower(c) <= n);
            REQUIRE(n <= cls.upper(c));
        }
        CHECK(cls.class_of(0) == 0);
        CHECK(cls.class_of(max + 1000) == count - 1);
    }
    // Geometric above the one-token classes: each class is at most ~1.5x the previous one.
    const length_classes cls(32, 32768);
    for (std::uint32_t c = 8; c < 32; ++c)
        CHECK(double(cls.upper(c) + 1) / cls.lower(c) < 1.6);
    CHECK_THROWS_AS(length_classes(1, 100), std::invalid_argument);
    CHECK_THROWS_AS(length_classes(65, 10000), std::invalid_argument);
    CHECK_THROWS_AS(length_classes(10, 5), std::invalid_argument);
}

namespace {

std::vector<double> random_masses(std::uint32_t n, std::uint64_t seed) {
    odma::support::splitmix64 rng(seed);
    std::vector<double> m(n);
    for (auto& v : m)
        v = rng.unit() < 0.3 ? 0.0 : rng.unit();  // some empty classes
    return m;
}

}  // namespace

TEST_CASE("quantile, cdf and pit agree: a reservation at quantile(p) holds n iff p >= pit(n)") {
    const length_classes cls(24, 5000);
    for (std::uint64_t seed = 1; seed <= 5; ++seed) {
        const auto masses = random_masses(cls.size(), seed);
        const length_distribution d(cls, masses, quantile_calibration{}, 3000);
        double last_cdf = 0.0;
        for (std::uint32_t n = 1; n <= 3000; n += 7) {
            const double u = d.pit(n);
            CHECK(u >= last_cdf - 1e-12);  // pit(n) = cdf(n - 1) is monotone
            last_cdf = u;
            // Just above pit(n) the quantile reaches n; well below it, it does not.
            CHECK(d.quantile(std::min(1.0, u + 1e-9)) >= n);
            if (u > 1e-6) CHECK(d.quantile(u - 1e-6) < n);
        }
        CHECK(d.cdf(3000) == 1.0);  // the cap holds everything
        CHECK(d.quantile(1.0) <= 3000);
        // The condensed prediction carries the same quantiles.
        const auto p = d.to_prediction();
        for (std::size_t i = 0; i < odma::prediction::levels.size(); ++i)
            CHECK(p.quantiles()[i] == d.quantile(odma::prediction::levels[i]));
    }
}

TEST_CASE("a distribution's mass beyond the cap sits at the cap") {
    const length_classes cls(16, 4096);
    std::vector<double> m(cls.size(), 0.0);
    m[cls.class_of(2000)] = 1.0;                                       // everything near 2000...
    const length_distribution d(cls, m, quantile_calibration{}, 100);  // ...but the cap is 100
    CHECK(d.quantile(0.1) == 100);
    CHECK(d.quantile(0.999) == 100);
    CHECK(d.cdf(99) == doctest::Approx(0.0));
    CHECK(d.to_prediction() == odma::prediction::exact(100));
    CHECK_THROWS_AS(length_distribution(cls, std::vector<double>(3, 1.0), {}, 10),
                    std::invalid_argument);
}

TEST_CASE("quantile calibration maps nominal levels to the empirical PIT quantiles") {
    const quantile_calibration identity;
    CHECK(identity.is_identity());
    CHECK(identity.model_level(0.37) == doctest::Approx(0.37));

    // Too few values: stays the identity.
    CHECK(quantile_calibration::fit(std::vector<double>(10, 0.5)).is_identity());

    // Uniform PIT values: (nearly) the identity.
    std::vector<double> uniform;
    for (int i = 0; i < 10000; ++i)
        uniform.push_back((i + 0.5) / 10000.0);
    const auto near_identity = quantile_calibration::fit(uniform);
    for (double p : {0.05, 0.5, 0.9, 0.99})
        CHECK(near_identity.model_level(p) == doctest::Approx(p).epsilon(0.01));

    // An over-confident model: PIT values pile up near 0 and 1 (u = p^3 and 1 - (1-p)^3 mixed).
    std::vector<double> overconfident;
    for (int i = 0; i < 10000; ++i) {
        const double p = (i + 0.5) / 10000.0;
        overconfident.push_back(p < 0.5 ? 4 * p * p * p : 1 - 4 * (1 - p) * (1 - p) * (1 - p));
    }
    const auto cal = quantile_calibration::fit(overconfident);
    // To cover 90% of answers it must read the model further out than its own 90% quantile.
    CHECK(cal.model_level(0.9) > 0.95);
    CHECK(cal.model_level(0.1) < 0.05);
    // nominal_level inverts model_level.
    for (double p : {0.02, 0.1, 0.5, 0.9, 0.98})
        CHECK(cal.nominal_level(cal.model_level(p)) == doctest::Approx(p).epsilon(1e-6));

    quantile_calibration out;
    const std::vector<double> bad(quantile_calibration::knots.size(), 2.0);
    CHECK_FALSE(quantile_calibration::from_levels(bad, out));
    CHECK(quantile_calibration::from_levels(cal.levels(), out));
    CHECK(out == cal);
}
