// prediction quantiles and the two reference predictors.
#include <odma/concepts.hpp>
#include <odma/predict/constant.hpp>
#include <odma/predict/oracle.hpp>
#include <odma/prediction.hpp>

#include <doctest/doctest.h>

using odma::prediction;

TEST_CASE("an exact prediction has every quantile equal and no uncertainty") {
    const auto p = prediction::exact(300);
    CHECK(p.tokens() == 300);
    CHECK(p.quantile(0.0) == 300);
    CHECK(p.quantile(0.95) == 300);
    CHECK(p.quantile(1.0) == 300);
    CHECK(p.uncertainty() == doctest::Approx(0.0));
}

TEST_CASE("quantiles interpolate between levels and clamp outside them") {
    const auto p = prediction::from_quantiles({10, 20, 100, 150, 200, 300, 500, 1000});
    CHECK(p.tokens() == 100);
    CHECK(p.quantile(0.05) == 10);
    CHECK(p.quantile(0.9) == 200);
    CHECK(p.quantile(0.925) == 250);  // halfway between q90 and q95
    CHECK(p.quantile(0.9999) == 1000);
    CHECK(p.uncertainty() == doctest::Approx(1.0));  // q90 is twice the median
    // Quantile is monotone in p.
    std::uint32_t last = 0;
    for (double q = 0.0; q <= 1.0; q += 0.001) {
        CHECK(p.quantile(q) >= last);
        last = p.quantile(q);
    }
}

TEST_CASE("from_quantiles repairs a non-monotone table") {
    const auto p = prediction::from_quantiles({50, 40, 30, 20, 60, 70, 80, 90});
    CHECK(p.quantile(0.1) == 20);
    CHECK(p.tokens() == 40);
}

TEST_CASE("predict::constant predicts the request's cap") {
    odma::predict::constant c;
    const odma::request r{.id = 1, .prompt_tokens = 10, .max_new_tokens = 777};
    CHECK(c.predict(r) == prediction::exact(777));
    c.observe(r, 5);  // learns nothing
    CHECK(c.predict(r).tokens() == 777);
}

TEST_CASE("predict::oracle predicts what it was told, and the cap otherwise") {
    odma::predict::oracle o;
    const odma::request known{.id = 7, .prompt_tokens = 10, .max_new_tokens = 1000};
    const odma::request unknown{.id = 8, .prompt_tokens = 10, .max_new_tokens = 900};
    o.tell(7, 123);
    CHECK(o.pending() == 1);
    CHECK(o.predict(known) == prediction::exact(123));
    CHECK(o.predict(unknown) == prediction::exact(900));
    o.observe(known, 123);
    CHECK(o.pending() == 0);  // forgotten once finished
    CHECK(o.predict(known).tokens() == 1000);
}
