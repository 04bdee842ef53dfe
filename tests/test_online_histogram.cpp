// bucket::online_histogram: calibration, the large-bucket safeguard, decay, drift recovery,
// and that recalibrating never moves a live lease.
#include <odma/allocator.hpp>
#include <odma/backing/host.hpp>
#include <odma/bucket/fixed.hpp>
#include <odma/bucket/online_histogram.hpp>
#include <odma/bucket/optimal_boundaries.hpp>
#include <odma/concepts.hpp>
#include <odma/predict/oracle.hpp>
#include <odma/support/random.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <numeric>
#include <stdexcept>
#include <vector>

using odma::bucket::online_histogram;

static_assert(odma::BucketPolicy<online_histogram>);

namespace {

// Log-normal lengths in [1, max], deterministic.
class lognormal {
public:
    lognormal(double median, double sigma, std::uint32_t max, std::uint64_t seed)
        : mu_(std::log(median)), sigma_(sigma), max_(max), rng_(seed) {}
    std::uint32_t operator()() {
        const double u1 = std::max(rng_.unit(), 1e-12), u2 = rng_.unit();
        const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
        return std::uint32_t(std::clamp(std::exp(mu_ + sigma_ * z), 1.0, double(max_)));
    }

private:
    double mu_, sigma_;
    std::uint32_t max_;
    odma::support::splitmix64 rng_;
};

// Histogram of many draws, one-token bins 1..max.
std::vector<double> histogram_of(lognormal draw, std::uint32_t max, int n) {
    std::vector<double> h(max, 0.0);
    for (int i = 0; i < n; ++i)
        h[draw() - 1] += 1.0;
    return h;
}

std::vector<std::uint32_t> one_to(std::uint32_t max) {
    std::vector<std::uint32_t> v(max);
    std::iota(v.begin(), v.end(), 1u);
    return v;
}

}  // namespace

TEST_CASE("before warm-up it uses equal-width buckets; the last is always max_tokens") {
    online_histogram h(4, 1000, {.warmup = 50});
    CHECK(std::vector<std::uint32_t>(h.boundaries().begin(), h.boundaries().end()) ==
          std::vector<std::uint32_t>{250, 500, 750, 1000});
    CHECK(h.capacity_for(1) == 250);
    CHECK(h.capacity_for(251) == 500);
    CHECK(h.capacity_for(5000) == 1000);
    CHECK(h.max_tokens() == 1000);
    CHECK(h.recalibrations() == 0);
    for (int i = 0; i < 49; ++i)
        h.observe(10 + i % 5);
    CHECK(h.recalibrations() == 0);
    h.observe(12);
    CHECK(h.recalibrations() == 1);  // warm-up over: first calibration
    // All mass at 10..14: buckets fit them exactly, and the safeguard stays.
    CHECK(h.capacity_for(10) <= 11);  // {10, 12, 14} and {11, 12, 14} tie
    CHECK(h.capacity_for(14) == 14);
    CHECK(h.boundaries().back() == 1000);
    CHECK(h.capacity_for(15) == 1000);
}

TEST_CASE("boundaries are the exact optimum of the histogram, recalibrated every N observations") {
    const std::uint32_t max = 2048;
    online_histogram h(
        8, max, {.half_life = 0, .recalibrate_every = 500, .drift_threshold = 0, .warmup = 500});
    lognormal draw(300, 0.7, max, 11);
    std::vector<double> counts(max, 0.0);
    for (int i = 1; i <= 2600; ++i) {
        const auto n = draw();
        h.observe(n);
        counts[n - 1] += 1.0;
        if (i % 500 == 0) {
            CHECK(h.recalibrations() == std::uint64_t(i / 500));
            const auto want = odma::bucket::optimal_boundaries(counts, one_to(max), 8);
            CHECK(std::vector<std::uint32_t>(h.boundaries().begin(), h.boundaries().end()) == want);
            CHECK(h.boundaries().back() == max);
        }
    }
    CHECK(h.recalibrations() == 5);
    CHECK(h.observations() == 2600);
}

TEST_CASE("the histogram forgets with the configured half-life") {
    online_histogram h(4, 100, {.half_life = 100, .drift_threshold = 0, .warmup = ~0u});
    for (int i = 0; i < 100; ++i)
        h.observe(10);
    for (int i = 0; i < 100; ++i)
        h.observe(90);
    const auto w = h.histogram();
    // The first 100 observations are one half-life older than the last 100.
    CHECK(w[9] / w[89] == doctest::Approx(0.5).epsilon(0.01));
    online_histogram forever(4, 100, {.half_life = 0, .drift_threshold = 0, .warmup = ~0u});
    for (int i = 0; i < 100; ++i)
        forever.observe(10);
    for (int i = 0; i < 100; ++i)
        forever.observe(90);
    CHECK(forever.histogram()[9] == forever.histogram()[89]);
}

TEST_CASE("after an abrupt shift, online_histogram recovers its waste and fixed does not") {
    const std::uint32_t max = 4096, k = 16;
    const lognormal before(200, 0.6, max, 1), after(1500, 0.35, max, 2);
    // The new regime's true histogram, and the best any policy can do on it.
    const auto truth = histogram_of(after, max, 200000);
    const auto lengths = one_to(max);
    const double best = odma::bucket::expected_waste(
        truth, lengths, odma::bucket::optimal_boundaries(truth, lengths, k));

    online_histogram h(k, max);  // default options
    lognormal a = before;
    for (int i = 0; i < 20000; ++i)
        h.observe(a());
    // `fixed` calibrated (optimally) on the old regime.
    const auto old_hist = histogram_of(before, max, 200000);
    const auto fixed =
        odma::bucket::fixed::explicit_list(odma::bucket::optimal_boundaries(old_hist, lengths, k));
    auto waste = [&](std::span<const std::uint32_t> bounds) {
        return odma::bucket::expected_waste(truth, lengths, bounds);
    };
    CHECK(waste(h.boundaries()) > 1.5 * best);  // tuned for the old regime, like fixed

    const auto calibrations_before = h.recalibrations();
    lognormal b = after;
    int recovered_at = -1;
    for (int i = 1; i <= 4000; ++i) {
        h.observe(b());
        if (recovered_at < 0 && waste(h.boundaries()) <= 1.10 * best) recovered_at = i;
    }
    CAPTURE(best);
    CAPTURE(recovered_at);
    // Drift detection fired (the periodic recalibration alone would wait for 1024 requests).
    CHECK(h.drift_detections() >= 1);
    CHECK(h.recalibrations() > calibrations_before);
    // Recovered within a bounded number of requests, and stays recovered.
    CHECK(recovered_at > 0);
    CHECK(recovered_at <= 600);  // detection (~100) + warm-up (256), measured 352
    CHECK(waste(h.boundaries()) <= 1.10 * best);
    // The fixed policy stays far from the new optimum.
    CHECK(waste(fixed.boundaries()) > 1.10 * best);
    CHECK(waste(fixed.boundaries()) > 2.0 * waste(h.boundaries()));
}

TEST_CASE("without drift, the drift statistic stays below the threshold") {
    online_histogram h(16, 4096);
    lognormal draw(300, 0.8, 4096, 5);
    double worst = 0.0;
    for (int i = 0; i < 30000; ++i) {
        h.observe(draw());
        if (i > 2000 && i % 64 == 0) worst = std::max(worst, h.drift());
    }
    CHECK(h.drift_detections() == 0);
    CHECK(worst < 0.05);
}

TEST_CASE("a coarse histogram picks boundaries among its bin edges") {
    online_histogram h(4, 10000, {.bins = 100, .warmup = 10});  // 100-token bins
    for (int i = 0; i < 10; ++i)
        h.observe(150 + i);
    for (const auto b : h.boundaries())
        CHECK((b % 100 == 0 || b == 10000));
    CHECK(h.capacity_for(155) == 200);
    CHECK(h.bin_upper().size() == 100);
}

TEST_CASE("online_histogram validates its options") {
    CHECK_THROWS_AS(online_histogram(0, 100), std::invalid_argument);
    CHECK_THROWS_AS(online_histogram(4, 0), std::invalid_argument);
    CHECK_THROWS_AS(online_histogram(4, 100, {.bins = 0}), std::invalid_argument);
    CHECK_THROWS_AS(online_histogram(4, 100, {.drift_groups = 1}), std::invalid_argument);
    CHECK_THROWS_AS(online_histogram(2, 100, {.initial = {10, 50, 100}}), std::invalid_argument);
    CHECK_THROWS_AS(online_histogram(4, 100, {.initial = {10, 50, 90}}), std::invalid_argument);
    CHECK_THROWS_AS(online_histogram(4, 100, {.initial = {50, 10, 100}}), std::invalid_argument);
    const online_histogram ok(4, 100, {.initial = {10, 100}});
    CHECK(ok.boundaries().size() == 2);
}

TEST_CASE("recalibration never moves a live lease; new admissions get the new buckets") {
    using kv_type = odma::allocator<odma::predict::oracle, online_histogram, odma::backing::host>;
    const odma::config cfg{.bytes_per_token = 8, .max_tokens = 1024, .safety_pool_fraction = 0.1};
    kv_type kv(cfg, {}, online_histogram(4, 1024, {.recalibrate_every = 20, .warmup = 20}),
               odma::backing::host(std::size_t(64) * 1024 * 8));
    // Before warm-up: equal widths 256, 512, ... A request needing 100 tokens gets 256.
    kv.predictor().tell(1, 90);
    auto first = kv.admit({.id = 1, .prompt_tokens = 10, .max_new_tokens = 500});
    REQUIRE(first);
    const auto before = *kv.region_of(*first);
    CHECK(before.capacity == 256);
    // Twenty requests of exactly 100 tokens finish: the buckets recalibrate around 100.
    for (std::uint64_t id = 2; id < 22; ++id) {
        kv.predictor().tell(id, 90);
        auto l = kv.admit({.id = id, .prompt_tokens = 10, .max_new_tokens = 500});
        REQUIRE(l);
        REQUIRE(kv.release(*l, 90));
    }
    CHECK(kv.bucket_policy().recalibrations() == 1);
    CHECK(kv.bucket_policy().capacity_for(100) == 100);
    // The first lease kept its region and capacity.
    const auto after = *kv.region_of(*first);
    CHECK(after.offset_tokens == before.offset_tokens);
    CHECK(after.capacity == 256);
    // A new request of the same size now gets the tight bucket.
    kv.predictor().tell(50, 90);
    auto fresh = kv.admit({.id = 50, .prompt_tokens = 10, .max_new_tokens = 500});
    REQUIRE(fresh);
    CHECK(kv.region_of(*fresh)->capacity == 100);
    CHECK(kv.check());
}
