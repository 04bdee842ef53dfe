// predict::prompt_quantile and predict::callable.
#include <odma/allocator.hpp>
#include <odma/backing/host.hpp>
#include <odma/bucket/fixed.hpp>
#include <odma/concepts.hpp>
#include <odma/predict/callable.hpp>
#include <odma/predict/prompt_quantile.hpp>
#include <odma/support/random.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

using odma::predict::prompt_quantile;

static_assert(odma::Predictor<prompt_quantile>);

namespace {

odma::request req(std::uint32_t prompt, std::uint32_t tag = 0) {
    return {.id = 0, .prompt_tokens = prompt, .max_new_tokens = 10000, .tag = tag};
}

// Empirical quantile of a sample.
double quantile_of(std::vector<std::uint32_t> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, std::size_t(p * double(v.size())))];
}

}  // namespace

TEST_CASE("prompt_quantile answers max_new_tokens until warmed up") {
    prompt_quantile pq({.warmup = 5});
    for (int i = 0; i < 4; ++i)
        pq.observe(req(10), 50);
    CHECK(pq.predict(req(10)) == odma::prediction::exact(10000));
    pq.observe(req(10), 50);
    CHECK(pq.predict(req(10)).tokens() < 100);
}

TEST_CASE("prompt_quantile conditions on prompt length and its quantiles match the data") {
    prompt_quantile pq;
    odma::support::splitmix64 rng(1);
    std::vector<std::uint32_t> short_answers, long_answers;
    for (int i = 0; i < 20000; ++i) {
        // Prompts of ~20 tokens answer 20..220; prompts of ~1000 tokens answer 400..2400.
        const bool long_prompt = i % 2;
        const auto answer =
            std::uint32_t(long_prompt ? 400 + rng.below(2000) : 20 + rng.below(200));
        (long_prompt ? long_answers : short_answers).push_back(answer);
        pq.observe(req(long_prompt ? 1000 : 20), answer);
    }
    for (const double p : {0.5, 0.9}) {
        CAPTURE(p);
        // Within the resolution of the length classes (~25%).
        CHECK(double(pq.predict_quantile(req(20), p)) ==
              doctest::Approx(quantile_of(short_answers, p)).epsilon(0.25));
        CHECK(double(pq.predict_quantile(req(1000), p)) ==
              doctest::Approx(quantile_of(long_answers, p)).epsilon(0.25));
    }
    CHECK(pq.observations() == 20000);
}

TEST_CASE("prompt_quantile separates request classes, and shrinks rare cells to their parent") {
    prompt_quantile pq;
    for (int i = 0; i < 5000; ++i) {
        pq.observe(req(100, 7), 50);
        pq.observe(req(100, 9), 800);
    }
    CHECK(pq.predict(req(100, 7)).tokens() < 70);
    CHECK(pq.predict(req(100, 9)).tokens() > 600);
    // A prompt length never seen for tag 7: borrows tag 7's distribution, not the global one.
    CHECK(pq.predict(req(5000, 7)).tokens() < 70);
    // One observation in a new cell barely moves it (prior weight 20).
    pq.observe(req(3, 7), 5000);
    CHECK(pq.predict(req(3, 7)).tokens() < 70);

    prompt_quantile untagged({.tag_slots = 0});
    for (int i = 0; i < 5000; ++i) {
        untagged.observe(req(100, 7), 50);
        untagged.observe(req(100, 9), 800);
    }
    CHECK(untagged.predict(req(100, 7)) == untagged.predict(req(100, 9)));
}

TEST_CASE("with a half-life prompt_quantile follows a shift quickly") {
    prompt_quantile forgetful({.half_life = 200}), forever;
    for (int i = 0; i < 5000; ++i) {
        forgetful.observe(req(50), 100);
        forever.observe(req(50), 100);
    }
    for (int i = 0; i < 1000; ++i) {
        forgetful.observe(req(50), 1000);
        forever.observe(req(50), 1000);
    }
    CHECK(forgetful.predict(req(50)).tokens() > 700);
    CHECK(forever.predict(req(50)).tokens() < 200);
    CHECK_THROWS_AS(prompt_quantile({.prompt_bins = 0}), std::invalid_argument);
    CHECK_THROWS_AS(prompt_quantile({.half_life = -1}), std::invalid_argument);
}

TEST_CASE("predict::callable adapts numbers and predictions, and forwards observations") {
    using odma::predict::callable;
    const odma::request r{.id = 1, .prompt_tokens = 10, .max_new_tokens = 500};

    const callable from_int([](const odma::request& q) { return int(q.prompt_tokens) * 3; });
    static_assert(odma::Predictor<std::remove_const_t<decltype(from_int)>>);
    CHECK(from_int.predict(r) == odma::prediction::exact(30));

    const callable negative([](const odma::request&) { return -1; });
    CHECK(negative.predict(r) == odma::prediction::exact(500));  // "no idea": the safe answer

    const callable from_double([](const odma::request&) { return 41.2; });
    CHECK(from_double.predict(r) == odma::prediction::exact(42));
    const callable nan(
        [](const odma::request&) { return std::numeric_limits<double>::quiet_NaN(); });
    CHECK(nan.predict(r) == odma::prediction::exact(500));
    const callable huge([](const odma::request&) { return 1e30; });
    CHECK(huge.predict(r).tokens() == std::numeric_limits<std::uint32_t>::max());

    const auto spread = odma::prediction::from_quantiles({10, 20, 30, 40, 50, 60, 70, 80});
    const callable full([&](const odma::request&) { return spread; });
    CHECK(full.predict(r) == spread);

    // A C function pointer works too, and observations reach the second callable.
    std::vector<std::uint32_t> seen;
    callable c(
        +[](const odma::request&) -> unsigned { return 7; },
        [&](const odma::request&, std::uint32_t n) { seen.push_back(n); });
    CHECK(c.predict(r).tokens() == 7);
    c.observe(r, 99);
    CHECK(seen == std::vector<std::uint32_t>{99});

    // In an allocator, with the risk knob: a callable returning a distribution honours it.
    auto alloc_with = [&](double risk) {
        odma::allocator kv({.bytes_per_token = 4, .max_tokens = 1000, .overflow_risk = risk},
                           callable([&](const odma::request&) { return spread; }),
                           odma::bucket::fixed::uniform(100, 1000),
                           odma::backing::host(std::size_t(4) * 20000));
        auto l = kv.admit(r);
        REQUIRE(l);
        return kv.region_of(*l)->capacity;
    };
    CHECK(alloc_with(0.5) == 40);   // prompt 10 + median 30
    CHECK(alloc_with(0.01) == 80);  // prompt 10 + q99 70
}
