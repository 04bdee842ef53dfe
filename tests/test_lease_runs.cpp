// Leases of several runs under pressure: admission into several runs, admission by predicted
// demand (config::demand_limit), soft reservations (config::lend_reserved), run alignment and
// the block table a paged kernel reads.
#include <odma/allocator.hpp>
#include <odma/backing/host.hpp>
#include <odma/bucket/fixed.hpp>

#include "support/test_backings.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace {

using odma::errc;
using odma::growth;
using odma_test::scripted_predictor;

constexpr std::size_t bpt = 16;  // bytes per token
constexpr std::uint32_t max_tokens = 256;

using kv_t = odma::allocator<scripted_predictor, odma::bucket::fixed, odma::backing::host>;

// 1024 token slots, no safety pool unless asked; buckets 64, 128, 192, 256; every request is
// predicted to generate 16 tokens.
kv_t make_kv(odma::config cfg) {
    cfg.bytes_per_token = bpt;
    cfg.max_tokens = max_tokens;
    return kv_t(cfg, scripted_predictor{.tokens = 16}, odma::bucket::fixed::uniform(4, max_tokens),
                odma::backing::host(1024 * bpt));
}

odma::request req(std::uint64_t id, std::uint32_t prompt, std::uint32_t max_new = 100) {
    return {.id = id, .prompt_tokens = prompt, .max_new_tokens = max_new};
}

// The lease's runs in plane 0 as (first token, tokens).
std::vector<std::pair<std::size_t, std::size_t>> runs_of(const kv_t& kv, const odma::lease& l) {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    REQUIRE(kv.for_each_run(l, 0, [&](std::size_t offset, std::size_t bytes) {
        out.emplace_back(offset / bpt, bytes / bpt);
    }));
    return out;
}

// Writes (or checks) a per-token pattern over the lease's first `to` tokens through its runs.
bool pattern(kv_t& kv, const odma::lease& l, std::uint32_t to, unsigned seed, bool write) {
    std::uint32_t token = 0;
    bool ok = true;
    for (const auto& [first, count] : runs_of(kv, l))
        for (std::size_t i = 0; i < count && token < to; ++i, ++token) {
            std::byte* p = kv.backing().address((first + i) * bpt);
            const auto v = std::byte((token * 13 + seed) & 0xff);
            if (write)
                p[0] = v;
            else
                ok = ok && p[0] == v;
        }
    return ok && token >= to;
}

// Fills the arena with 16 leases of 64 tokens (prompt 40), then frees leases 1, 5 and 9: three
// free extents of 64 tokens, none adjacent to another.
std::vector<odma::lease> shred(kv_t& kv) {
    std::vector<odma::lease> live;
    for (std::uint64_t i = 0; i < 16; ++i) {
        auto l = kv.admit(req(i, 40));
        REQUIRE(l);
        REQUIRE(kv.region_of(*l)->capacity == 64);
        pattern(kv, *l, 40, unsigned(i), true);
        live.push_back(*l);
    }
    REQUIRE_FALSE(kv.admit(req(99, 40)));
    for (const std::size_t i : {9, 5, 1}) {
        REQUIRE(kv.release(live[i], 16));
        live.erase(live.begin() + std::ptrdiff_t(i));
    }
    return live;
}

}  // namespace

TEST_CASE("runs: an admission no extent can hold is placed in several runs, all or nothing") {
    auto kv = make_kv({.safety_pool_fraction = 0.0, .max_runs = 4});
    const auto others = shred(kv);
    // 150 prompt tokens want the 192 bucket; the largest extent has 64.
    const auto l = kv.admit(req(100, 150));
    REQUIRE(l);
    CHECK(kv.stats().admissions_in_runs == 1);
    const auto r = *kv.region_of(*l);
    CHECK(r.runs == 3);
    CHECK(r.used == 150);
    CHECK(r.capacity == 151);  // the prompt and one more token: 64 + 64 + 23
    const auto runs = runs_of(kv, *l);
    REQUIRE(runs.size() == 3);
    std::size_t held = 0;
    for (const auto& [first, count] : runs) {
        CHECK(first % 64 == 0);  // each run starts in one of the freed 64-token holes
        held += count;
    }
    CHECK(held == 150);
    pattern(kv, *l, 150, 7, true);
    CHECK(kv.check());
    // It grows like any lease of several runs: here in place, into the rest of its last hole.
    REQUIRE(kv.extend(*l, 160));
    CHECK(pattern(kv, *l, 150, 7, false));
    for (std::size_t i = 0; i < others.size(); ++i)
        CHECK(kv.is_live(others[i]));
    CHECK(kv.check());

    // With two runs at most the same request cannot get in, and nothing is left behind.
    auto two = make_kv({.safety_pool_fraction = 0.0, .max_runs = 2});
    shred(two);
    const auto free_before = two.stats().free_bytes;
    CHECK(two.admit(req(100, 150)).error() == errc::no_memory);
    CHECK(two.stats().free_bytes == free_before);
    CHECK(two.stats().live_leases == 13);
    CHECK(two.check());
}

TEST_CASE("runs: demand_limit refuses admissions under pressure once predicted demand is full") {
    // 13 live leases predicted at 40 + 16 = 56 tokens each: 728 tokens of predicted demand.
    auto limited = make_kv({.safety_pool_fraction = 0.0, .max_runs = 4, .demand_limit = 0.8});
    shred(limited);
    const auto refused = limited.stats().demand_refusals;  // shred's probe of the full arena
    // + 166 = 894 > 0.8 x 1024: refused although three runs could hold the prompt.
    CHECK(limited.admit(req(100, 150)).error() == errc::no_memory);
    CHECK(limited.stats().demand_refusals == refused + 1);
    CHECK(limited.stats().admissions_in_runs == 0);
    // A small request that finds its whole reservation free is never limited.
    CHECK(limited.admit(req(101, 40)));
    CHECK(limited.stats().demand_refusals == refused + 1);
    CHECK(limited.check());

    auto roomy = make_kv({.safety_pool_fraction = 0.0, .max_runs = 4, .demand_limit = 1.0});
    shred(roomy);
    CHECK(roomy.admit(req(100, 150)));  // 894 <= 1024
    CHECK(roomy.stats().demand_refusals == 0);

    odma::config bad{.bytes_per_token = bpt, .max_tokens = max_tokens, .demand_limit = -1.0};
    CHECK_THROWS_AS(make_kv(bad), odma::config_error);
}

TEST_CASE("runs: with lend_reserved a growth borrows the unused tails of other leases") {
    auto kv = make_kv({.safety_pool_fraction = 0.0, .max_runs = 4, .lend_reserved = true});
    std::vector<odma::lease> all;
    for (std::uint64_t i = 0; i < 16; ++i) {
        all.push_back(*kv.admit(req(i, 10)));  // 64 reserved, 10 held
        pattern(kv, all.back(), 10, unsigned(i), true);
    }
    REQUIRE(kv.stats().free_bytes == 0);
    REQUIRE(*kv.extend(all[0], 64) == growth::unchanged);
    const auto g = kv.extend(all[0], 65);  // no free token anywhere until the others lend
    REQUIRE(g);
    CHECK(*g == growth::appended);
    CHECK(kv.stats().lending_passes == 1);
    CHECK(kv.stats().lent_bytes == 15 * 54 * bpt);
    for (std::size_t i = 1; i < all.size(); ++i) {
        CHECK(kv.region_of(all[i])->capacity == 10);  // shrunk to what it holds
        CHECK(pattern(kv, all[i], 10, unsigned(i), false));
    }
    CHECK(kv.check());
    // A lease that lent its tail grows back into it while it is free.
    CHECK(*kv.extend(all[5], 30) == growth::in_place);
    CHECK(kv.check());

    // Without lending the same growth fails and leaves the lease intact.
    auto hard = make_kv({.safety_pool_fraction = 0.0, .max_runs = 4});
    std::vector<odma::lease> held;
    for (std::uint64_t i = 0; i < 16; ++i)
        held.push_back(*hard.admit(req(i, 10)));
    REQUIRE(*hard.extend(held[0], 64) == growth::unchanged);
    CHECK(hard.extend(held[0], 65).error() == errc::no_memory);
    CHECK(hard.region_of(held[0])->capacity == 64);
    CHECK(hard.stats().lending_passes == 0);
}

TEST_CASE("runs: run_alignment keeps every run on block boundaries; block_table lists them") {
    auto kv = make_kv({.safety_pool_fraction = 0.25, .max_runs = 4, .run_alignment = 16});
    std::vector<odma::lease> all;
    for (std::uint64_t i = 0; i < 8; ++i)
        all.push_back(*kv.admit(req(i, 5 + 3 * std::uint32_t(i))));
    // Grow some of them past their buckets so they take further runs.
    for (std::size_t i = 0; i < all.size(); i += 2)
        REQUIRE(kv.extend(all[i], 70 + 20 * std::uint32_t(i)));
    REQUIRE(kv.check());
    for (const auto& l : all) {
        const auto runs = runs_of(kv, l);
        for (std::size_t k = 0; k < runs.size(); ++k) {
            CHECK(runs[k].first % 16 == 0);
            if (k + 1 < runs.size()) CHECK(runs[k].second % 16 == 0);  // whole blocks
        }
        CHECK(kv.region_of(l)->capacity % 16 == 0);

        // The block table: consecutive ids inside each run, in token order.
        std::vector<std::uint32_t> want;
        for (const auto& [first, count] : runs)
            for (std::size_t b = first / 16; b <= (first + count - 1) / 16; ++b)
                want.push_back(std::uint32_t(b));
        std::vector<std::uint32_t> table(64, 0xffffffffu);
        const auto n = kv.block_table(l, 16, table);
        REQUIRE(n);
        REQUIRE(*n == want.size());
        table.resize(*n);
        CHECK(table == want);
        // Any divisor of the alignment works: twice the blocks of half the size.
        std::vector<std::uint32_t> halves(128);
        const auto m = kv.block_table(l, 8, halves);
        REQUIRE(m);
        CHECK(*m >= 2 * want.size() - runs.size());
        CHECK(halves[0] == 2 * want[0]);
        // A short buffer gets the first ids and the full count.
        std::vector<std::uint32_t> one(1);
        CHECK(*kv.block_table(l, 16, one) == want.size());
        CHECK(one[0] == want[0]);
    }
    std::vector<std::uint32_t> table(64);
    CHECK(kv.block_table(all[0], 32, table).error() == errc::invalid_request);  // 32 ∤ 16
    CHECK(kv.block_table(all[0], 0, table).error() == errc::invalid_request);
    CHECK(kv.block_table(odma::lease{}, 16, table).error() == errc::invalid_lease);

    odma::config bad{.bytes_per_token = bpt, .max_tokens = max_tokens, .run_alignment = 0};
    CHECK_THROWS_AS(make_kv(bad), odma::config_error);
}
