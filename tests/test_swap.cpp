// odma/swap.hpp: a lease's KV copied to host memory and back, byte for byte, on the allocator
// (one run and several) and on the paged baseline.
#include <odma/allocator.hpp>
#include <odma/backing/host.hpp>
#include <odma/bucket/fixed.hpp>
#include <odma/paged.hpp>
#include <odma/swap.hpp>

#include "support/kv_stamp.hpp"
#include "support/test_backings.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace {

using odma::errc;
using odma_test::scripted_predictor;
using odma_test::stamp;

constexpr std::size_t bpt = 32;  // bytes per token: two planes of 16
using kv_t = odma::allocator<scripted_predictor, odma::bucket::fixed, odma::backing::host>;

kv_t make_kv(std::uint32_t max_runs) {
    const odma::config cfg{.bytes_per_token = bpt,
                           .max_tokens = 256,
                           .safety_pool_fraction = 0.0,
                           .planes = 2,
                           .max_runs = max_runs};
    return kv_t(cfg, scripted_predictor{.tokens = 16}, odma::bucket::fixed::uniform(4, 256),
                odma::backing::host(1024 * bpt));
}

odma::request req(std::uint64_t id, std::uint32_t prompt) {
    return {.id = id, .prompt_tokens = prompt, .max_new_tokens = 200};
}

}  // namespace

TEST_CASE("swap: a lease of several runs goes to host memory and comes back intact elsewhere") {
    auto kv = make_kv(4);
    auto a = *kv.admit(req(1, 20));
    auto b = *kv.admit(req(2, 20));  // right after a: a grows by further runs
    REQUIRE(kv.extend(a, 20 + 100));
    REQUIRE(kv.region_of(a)->runs > 1);
    stamp(kv, a, 1, true);
    stamp(kv, b, 2, true);

    const auto s = odma::swap_out(kv, a, req(1, 20), 100);
    REQUIRE(s);
    CHECK_FALSE(kv.is_live(a));  // abandoned: its memory is free for others
    CHECK(s->tokens == 120);
    CHECK(s->bytes.size() == 120 * bpt);
    CHECK(kv.stats().releases == 1);
    CHECK(kv.check());

    // Someone else takes the memory a had; a comes back into different runs.
    auto c = *kv.admit(req(3, 60));
    stamp(kv, c, 3, true);
    const auto back = odma::swap_in(kv, *s);
    REQUIRE(back);
    CHECK(stamp(kv, *back, 1, false));  // every byte as it was, in token order
    CHECK(stamp(kv, b, 2, false));
    CHECK(stamp(kv, c, 3, false));
    CHECK(kv.region_of(*back)->used == 120);
    CHECK(kv.stats().resumptions == 1);
    CHECK(kv.check());
    // release() through the resumed lease teaches the original request's whole length.
    REQUIRE(kv.release(*back, 150));
    CHECK(kv.predictor().last_observed == 150);
}

TEST_CASE("swap: errors leave everything as it was") {
    auto kv = make_kv(1);
    auto a = *kv.admit(req(1, 30));
    stamp(kv, a, 1, true);
    // The lease must hold exactly prompt + generated tokens.
    CHECK(odma::swap_out(kv, a, req(1, 30), 5).error() == errc::invalid_request);
    CHECK(kv.is_live(a));
    CHECK(odma::swap_out(kv, odma::lease{}, req(1, 30), 0).error() == errc::invalid_lease);

    const auto s = *odma::swap_out(kv, a, req(1, 30), 0);  // nothing generated yet: fine
    CHECK(odma::swap_out(kv, a, req(1, 30), 0).error() == errc::invalid_lease);  // gone

    // No room to come back: no_memory, and `s` can be tried again later.
    std::vector<odma::lease> fill;
    while (auto l = kv.admit(req(10 + fill.size(), 40)))
        fill.push_back(*l);
    const auto live = kv.stats().live_leases;
    CHECK(odma::swap_in(kv, s).error() == errc::no_memory);
    CHECK(kv.stats().live_leases == live);
    for (const auto& l : fill)
        REQUIRE(kv.release(l, 0));
    const auto back = odma::swap_in(kv, s);
    REQUIRE(back);
    CHECK(stamp(kv, *back, 1, false));

    // A copy that does not fit the resumed lease is refused, and the lease given back.
    odma::swapped_lease wrong = s;
    wrong.bytes.pop_back();
    const auto before = kv.stats().live_leases;
    CHECK(odma::swap_in(kv, wrong).error() == errc::invalid_request);
    CHECK(kv.stats().live_leases == before);
    CHECK(kv.check());
}

TEST_CASE("swap: random swaps on the allocator and the paged baseline keep every byte") {
    std::mt19937 rng(7);
    auto kv = make_kv(4);
    odma::paged<odma::backing::host> pg(
        odma::paged_config{
            .bytes_per_token = bpt, .max_tokens = 256, .planes = 2, .block_tokens = 16},
        odma::backing::host(1024 * bpt));
    auto run = [&](auto& a) {
        struct entry {
            odma::lease l;
            odma::request r;
            std::uint32_t generated;
        };
        std::vector<entry> live;
        std::vector<odma::swapped_lease> out;
        std::uint64_t next = 1;
        for (int step = 0; step < 400; ++step) {
            const unsigned op = rng() % 4;
            if (op == 0) {
                const auto r = req(next, 1 + rng() % 40);
                if (auto l = a.admit(r)) {
                    live.push_back({*l, r, 0});
                    stamp(a, *l, next, true);
                }
                ++next;
            } else if (op == 1 && !live.empty()) {  // generate a few tokens
                auto& e = live[rng() % live.size()];
                const std::uint32_t g = e.generated + 1 + rng() % 20;
                if (g < e.r.max_new_tokens && a.extend(e.l, e.r.prompt_tokens + g)) {
                    e.generated = g;
                    stamp(a, e.l, e.r.id, true);
                }
            } else if (op == 2 && !live.empty()) {  // swap one out
                const std::size_t i = rng() % live.size();
                REQUIRE(stamp(a, live[i].l, live[i].r.id, false));
                auto s = odma::swap_out(a, live[i].l, live[i].r, live[i].generated);
                REQUIRE(s);
                out.push_back(std::move(*s));
                live.erase(live.begin() + std::ptrdiff_t(i));
            } else if (op == 3 && !out.empty()) {  // and one back in, if there is room
                const std::size_t i = rng() % out.size();
                if (out[i].generated < out[i].original.max_new_tokens) {
                    if (auto l = odma::swap_in(a, out[i])) {
                        REQUIRE(stamp(a, *l, out[i].original.id, false));
                        live.push_back({*l, out[i].original, out[i].generated});
                        out.erase(out.begin() + std::ptrdiff_t(i));
                    }
                }
            }
            REQUIRE(a.check());
        }
        for (const auto& e : live)
            REQUIRE(stamp(a, e.l, e.r.id, false));
    };
    run(kv);
    run(pg);
}
