// The allocator teaches its bucket policy each request's peak demand.
#include <odma/allocator.hpp>
#include <odma/backing/host.hpp>
#include <odma/bucket/fixed.hpp>
#include <odma/predict/callable.hpp>

#include <doctest/doctest.h>

#include <span>
#include <vector>

namespace {

// Equal-width buckets that remember what they were taught.
struct recording_buckets {
    odma::bucket::fixed inner = odma::bucket::fixed::uniform(10, 1000);
    std::vector<std::uint32_t> seen;
    std::uint32_t capacity_for(std::uint32_t t) const { return inner.capacity_for(t); }
    std::uint32_t max_tokens() const { return inner.max_tokens(); }
    std::span<const std::uint32_t> boundaries() const { return inner.boundaries(); }
    void observe(std::uint32_t tokens) { seen.push_back(tokens); }
};

}  // namespace

TEST_CASE("release teaches the bucket policy max(asked reservation, final length)") {
    // Predicts 50 new tokens, with a spread: at risk 0.05 the allocator asks for q95 = 150.
    auto predict = [](const odma::request&) {
        return odma::prediction::from_quantiles({20, 30, 50, 70, 100, 150, 200, 300});
    };
    odma::allocator kv({.bytes_per_token = 4, .max_tokens = 1000, .overflow_risk = 0.05},
                       odma::predict::callable(predict), recording_buckets{},
                       odma::backing::host(std::size_t(4) * 20000));
    const odma::request r{.id = 1, .prompt_tokens = 10, .max_new_tokens = 900};

    // Finishes short: the policy learns the asked 10 + 150 = 160, which is what was rounded up.
    auto a = kv.admit(r);
    REQUIRE(a);
    CHECK(kv.region_of(*a)->capacity == 200);  // bucket of 160
    REQUIRE(kv.extend(*a, 10 + 40));
    REQUIRE(kv.release(*a, 40));
    // Outgrows its reservation: the policy learns the final length.
    auto b = kv.admit(r);
    REQUIRE(b);
    REQUIRE(kv.extend(*b, 10 + 370));
    REQUIRE(kv.release(*b, 370));
    CHECK(kv.bucket_policy().seen == std::vector<std::uint32_t>{160, 380});
}
