// odma/tiered.hpp with the tier policies: placement across a fast and a slow tier, demotion on
// growth, promotion by rebalance(), and every byte of every lease kept across every move.
#include <odma/allocator.hpp>
#include <odma/backing/host.hpp>
#include <odma/bucket/fixed.hpp>
#include <odma/kv_allocator.hpp>
#include <odma/predict/oracle.hpp>
#include <odma/support/random.hpp>
#include <odma/swap.hpp>
#include <odma/tier/balanced.hpp>
#include <odma/tier/host_link.hpp>
#include <odma/tier/static_spill.hpp>
#include <odma/tiered.hpp>

#include "support/kv_stamp.hpp"
#include "support/test_backings.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <stdexcept>
#include <vector>

namespace {

using odma::errc;
using odma::tier;
using odma_test::scripted_predictor;
using odma_test::stamp;
namespace tp = odma::tier_policies;

constexpr std::size_t bpt = 32;  // bytes per token: two planes of 16
using kv_t = odma::allocator<scripted_predictor, odma::bucket::fixed, odma::backing::host>;

kv_t make_kv(std::uint32_t tokens, std::uint32_t max_runs = 4, std::size_t bytes_per_token = bpt) {
    const odma::config cfg{.bytes_per_token = bytes_per_token,
                           .max_tokens = 128,
                           .safety_pool_fraction = 0.0,
                           .planes = 2,
                           .max_runs = max_runs};
    return kv_t(cfg, scripted_predictor{.tokens = 16}, odma::bucket::fixed::uniform(8, 128),
                odma::backing::host(tokens * bytes_per_token));
}

odma::request req(std::uint64_t id, std::uint32_t prompt) {
    return {.id = id, .prompt_tokens = prompt, .max_new_tokens = 200};
}

// A policy that moves, with a fixed expected output, so tests can predict its choices.
using balanced_t = tp::balanced<odma::predict::oracle>;
balanced_t balanced(double slow_share = 1.0) {
    return balanced_t(odma::predict::oracle{}, slow_share);
}

template <class Policy>
using tiered_t = odma::tiered<kv_t, kv_t, Policy, tp::host_link>;

static_assert(odma::KvAllocator<tiered_t<tp::static_spill>>);
static_assert(odma::KvAllocator<tiered_t<balanced_t>>);
static_assert(odma::HostAddressableKv<tiered_t<balanced_t>>);
static_assert(odma::TierPolicy<tp::static_spill>);
static_assert(odma::TierPolicy<balanced_t>);

// A link that fails after `budget` pieces.
struct failing_link {
    int budget = 0;
    template <class From, class To>
    void operator()(From& from, std::size_t fo, To& to, std::size_t to_offset, std::size_t n) {
        if (budget-- <= 0) throw std::runtime_error("injected link failure");
        tp::host_link{}(from, fo, to, to_offset, n);
    }
};

}  // namespace

TEST_CASE("tiered, static placement: fast first, spill to slow, never move") {
    auto fast = make_kv(128), slow = make_kv(512);
    tiered_t<tp::static_spill> kv(fast, slow, tp::static_spill{});
    auto a = *kv.admit(req(1, 60));  // 80 reserved of 128: fast
    auto c = *kv.admit(req(3, 30));  // 48: fills the fast tier
    auto b = *kv.admit(req(2, 40));  // no room in fast: spills
    CHECK(*kv.tier_of(a) == tier::fast);
    CHECK(*kv.tier_of(b) == tier::slow);
    CHECK(kv.tier_stats().spills == 1);
    stamp(kv, a, 1, true);
    stamp(kv, b, 2, true);
    // a outgrows the fast tier: static placement does not move it, the engine must preempt.
    const auto g = kv.extend(a, 100);
    CHECK(g.error() == errc::no_memory);
    CHECK(*kv.tier_of(a) == tier::fast);
    CHECK(stamp(kv, a, 1, false));
    CHECK(kv.rebalance() == 0);
    CHECK(kv.tier_stats().moved_bytes == 0);
    CHECK(kv.check());
    REQUIRE(kv.release(a, 1));
    REQUIRE(kv.release(b, 1));
    REQUIRE(kv.release(c, 1));
    CHECK(kv.stats().live_leases == 0);
    CHECK(kv.check());
}

TEST_CASE("tiered, balanced: a fast lease that must grow demotes another, bytes intact") {
    auto fast = make_kv(128), slow = make_kv(512);
    tiered_t<balanced_t> kv(fast, slow, balanced());
    kv.policy().predictor().tell(1, 150);  // long: stays in the fast tier
    kv.policy().predictor().tell(2, 2);    // nearly done: the cheapest to read from slow
    auto a = *kv.admit(req(1, 40));
    auto b = *kv.admit(req(2, 40));
    REQUIRE(*kv.tier_of(a) == tier::fast);
    REQUIRE(*kv.tier_of(b) == tier::fast);
    stamp(kv, a, 1, true);
    stamp(kv, b, 2, true);

    REQUIRE(kv.extend(a, 120));  // needs b's room
    CHECK(*kv.tier_of(a) == tier::fast);
    CHECK(*kv.tier_of(b) == tier::slow);
    CHECK(kv.tier_stats().demotions == 1);
    CHECK(kv.tier_stats().moved_bytes == 40 * bpt);
    CHECK(stamp(kv, b, 2, false));
    // a's first 40 tokens are what was stamped; stamp the grown lease again to check later.
    stamp(kv, a, 1, true);
    CHECK(kv.check());

    // b comes back when a leaves.
    REQUIRE(kv.release(a, 80));
    CHECK(kv.rebalance() == 40 * bpt);
    CHECK(*kv.tier_of(b) == tier::fast);
    CHECK(kv.tier_stats().promotions == 1);
    CHECK(stamp(kv, b, 2, false));
    CHECK(kv.check());
    REQUIRE(kv.release(b, 2));
    CHECK(kv.check());
}

TEST_CASE("tiered, balanced: the growing lease demotes itself when it is the cheapest to read") {
    auto fast = make_kv(128), slow = make_kv(512);
    tiered_t<balanced_t> kv(fast, slow, balanced());
    kv.policy().predictor().tell(1, 1);
    kv.policy().predictor().tell(2, 150);
    auto a = *kv.admit(req(1, 40));
    auto b = *kv.admit(req(2, 40));
    REQUIRE(*kv.tier_of(b) == tier::fast);
    stamp(kv, a, 1, true);
    const auto g = kv.extend(a, 100);
    REQUIRE(g);
    CHECK(*kv.tier_of(a) == tier::slow);
    CHECK(*kv.tier_of(b) == tier::fast);
    // The first 40 tokens moved; the lease now holds 100.
    std::size_t held = 0;
    REQUIRE(kv.for_each_run(a, 0, [&](std::size_t, std::size_t n) { held += n; }));
    CHECK(held == 100 * bpt / 2);
    CHECK(kv.check());
}

TEST_CASE("tiered, balanced: the slow tier admits only up to its share of the fast tier") {
    auto fast = make_kv(128), slow = make_kv(512);
    tiered_t<balanced_t> kv(fast, slow, balanced(0.5));  // slow may hold 64 tokens
    auto a = *kv.admit(req(1, 100));                     // fills the fast tier
    CHECK(*kv.tier_of(a) == tier::fast);
    CHECK(kv.admit(req(2, 70)).error() == errc::no_memory);  // 70 > 64: waits
    auto c = *kv.admit(req(3, 60));                          // 60 <= 64: spills
    CHECK(*kv.tier_of(c) == tier::slow);
    CHECK(kv.check());
    CHECK_THROWS_AS(balanced_t(odma::predict::oracle{}, 1.5), std::invalid_argument);
}

TEST_CASE("tiered: a move that cannot be made leaves the lease where it was") {
    auto fast = make_kv(128), slow = make_kv(128);
    tiered_t<balanced_t> kv(fast, slow, balanced());
    auto a = *kv.admit(req(1, 100));
    auto b = *kv.admit(req(2, 100));  // slow, and full
    stamp(kv, a, 1, true);
    stamp(kv, b, 2, true);
    CHECK(kv.move(a, tier::slow).error() == errc::no_memory);
    CHECK(*kv.tier_of(a) == tier::fast);
    CHECK(stamp(kv, a, 1, false));
    CHECK(kv.tier_stats().failed_moves == 1);
    CHECK(kv.move(a, tier::fast));  // already there
    CHECK(kv.move(odma::lease{}, tier::fast).error() == errc::invalid_lease);
    CHECK(kv.check());
}

TEST_CASE("tiered: a link that throws mid-move leaves the lease intact in its tier") {
    auto fast = make_kv(128), slow = make_kv(512);
    odma::tiered<kv_t, kv_t, balanced_t, failing_link> kv(fast, slow, balanced(), failing_link{1});
    auto a = *kv.admit(req(1, 40));
    stamp(kv, a, 1, true);
    CHECK_THROWS_AS((void)kv.move(a, tier::slow), std::runtime_error);
    CHECK(*kv.tier_of(a) == tier::fast);
    CHECK(stamp(kv, a, 1, false));
    CHECK(slow.stats().live_leases == 0);
    CHECK(kv.check());
}

TEST_CASE("tiered: the tiers must agree on the token layout") {
    auto fast = make_kv(128), slow = make_kv(128, 4, 64);
    CHECK_THROWS_AS(tiered_t<tp::static_spill>(fast, slow, tp::static_spill{}),
                    std::invalid_argument);
}

TEST_CASE("tiered: swap_out and swap_in work on the composition") {
    auto fast = make_kv(128), slow = make_kv(512);
    tiered_t<balanced_t> kv(fast, slow, balanced());
    auto a = *kv.admit(req(1, 100));
    auto b = *kv.admit(req(2, 40));  // slow
    stamp(kv, b, 2, true);
    auto saved = odma::swap_out(kv, b, req(2, 40), 0);
    REQUIRE(saved);
    REQUIRE(kv.release(a, 1));
    auto back = odma::swap_in(kv, *saved);
    REQUIRE(back);
    CHECK(*kv.tier_of(*back) == tier::fast);
    CHECK(stamp(kv, *back, 2, false));
    CHECK(kv.check());
}

TEST_CASE("tiered soak: random admissions, growth, moves and rebalancing keep every byte") {
    for (const std::uint32_t max_runs : {1u, 4u}) {
        CAPTURE(max_runs);
        auto fast = make_kv(256, max_runs), slow = make_kv(768, max_runs);
        tiered_t<balanced_t> kv(fast, slow, balanced(0.8));
        odma::support::splitmix64 rng(max_runs);
        struct live_request {
            odma::lease l;
            std::uint32_t prompt, held;
        };
        std::map<std::uint64_t, live_request> live;
        std::uint64_t next_id = 1;
        std::size_t moves = 0;
        for (int step = 0; step < 3000; ++step) {
            const auto op = rng.below(10);
            if (op < 3) {
                const auto prompt = std::uint32_t(1 + rng.below(60));
                kv.policy().predictor().tell(next_id, std::uint32_t(1 + rng.below(100)));
                if (auto l = kv.admit(req(next_id, prompt))) {
                    stamp(kv, *l, next_id, true);
                    live[next_id] = {*l, prompt, prompt};
                } else {
                    CHECK(l.error() == errc::no_memory);
                }
                ++next_id;
            } else if (op < 7 && !live.empty()) {
                auto it = live.begin();
                std::advance(it, std::ptrdiff_t(rng.below(live.size())));
                const auto want = std::min<std::uint32_t>(it->second.held + 1 + rng.below(20), 127);
                if (kv.extend(it->second.l, want)) {
                    it->second.held = want;
                    stamp(kv, it->second.l, it->first, true);
                }
            } else if (op < 9 && !live.empty()) {
                auto it = live.begin();
                std::advance(it, std::ptrdiff_t(rng.below(live.size())));
                REQUIRE(kv.release(it->second.l, it->second.held - it->second.prompt));
                live.erase(it);
            } else if (!live.empty()) {
                auto it = live.begin();
                std::advance(it, std::ptrdiff_t(rng.below(live.size())));
                const tier to = odma::other(*kv.tier_of(it->second.l));
                if (kv.move(it->second.l, to)) ++moves;
                moves += kv.rebalance() > 0;
            }
            REQUIRE(kv.check());
            for (auto& [id, r] : live)
                REQUIRE(stamp(kv, r.l, id, false));
        }
        CHECK(moves > 50);
        CHECK(kv.tier_stats().demotions > 0);
        CHECK(kv.tier_stats().promotions > 0);
    }
}
