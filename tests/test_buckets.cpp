// bucket::fixed: named constructors, lookups and validation.
#include <odma/bucket/fixed.hpp>
#include <odma/concepts.hpp>

#include <doctest/doctest.h>

#include <stdexcept>
#include <vector>

using odma::bucket::fixed;

static std::vector<std::uint32_t> as_vector(const fixed& f) {
    return {f.boundaries().begin(), f.boundaries().end()};
}

TEST_CASE("uniform buckets have equal widths and end at max_tokens") {
    CHECK(as_vector(fixed::uniform(8, 4096)) ==
          std::vector<std::uint32_t>{512, 1024, 1536, 2048, 2560, 3072, 3584, 4096});
    const auto ten = fixed::uniform(10, 1000);
    CHECK(ten.boundaries().size() == 10);
    CHECK(ten.boundaries().front() == 100);
    CHECK(ten.max_tokens() == 1000);
    // Widths that do not divide evenly round up, still ending exactly at max_tokens.
    CHECK(as_vector(fixed::uniform(3, 10)) == std::vector<std::uint32_t>{4, 7, 10});
}

TEST_CASE("powers_of_two and geometric buckets") {
    CHECK(as_vector(fixed::powers_of_two(16, 128)) == std::vector<std::uint32_t>{16, 32, 64, 128});
    CHECK(as_vector(fixed::powers_of_two(100, 1000)) ==
          std::vector<std::uint32_t>{100, 200, 400, 800, 1000});
    const auto g = fixed::geometric(16, 4096, 4);
    CHECK(g.max_tokens() == 4096);
    CHECK(g.boundaries().front() == 16);
    // Four classes per doubling: each is at most ~19% above the previous one.
    for (std::size_t i = 1; i < g.boundaries().size(); ++i)
        CHECK(double(g.boundaries()[i]) <= double(g.boundaries()[i - 1]) * 1.19 + 1);
    CHECK(g.boundaries().size() == 4 * 8 + 1);
}

TEST_CASE("capacity_for returns the smallest bucket that holds the tokens") {
    const auto f = fixed::explicit_list({64, 256, 1024});
    CHECK(f.capacity_for(1) == 64);
    CHECK(f.capacity_for(64) == 64);
    CHECK(f.capacity_for(65) == 256);
    CHECK(f.capacity_for(1024) == 1024);
    CHECK(f.capacity_for(5000) == 1024);  // beyond max: the largest bucket
    static_assert(odma::BucketPolicy<fixed>);
}

TEST_CASE("bad bucket lists are refused with a message") {
    CHECK_THROWS_AS(fixed::explicit_list({}), std::invalid_argument);
    CHECK_THROWS_AS(fixed::explicit_list({0, 10}), std::invalid_argument);
    CHECK_THROWS_AS(fixed::explicit_list({10, 10}), std::invalid_argument);
    CHECK_THROWS_AS(fixed::explicit_list({20, 10}), std::invalid_argument);
    CHECK_THROWS_AS(fixed::uniform(0, 100), std::invalid_argument);
    CHECK_THROWS_AS(fixed::uniform(10, 5), std::invalid_argument);
    CHECK_THROWS_AS(fixed::powers_of_two(0, 100), std::invalid_argument);
    CHECK_THROWS_AS(fixed::geometric(200, 100), std::invalid_argument);
}
