// odma::paged: block tables, free-list order, the error contract, stats, the runs a kernel
// reads, and a property test against a reference model with check() after every operation.
#include <odma/paged.hpp>

#include <odma/backing/host.hpp>

#include "support/test_backings.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <limits>
#include <random>
#include <utility>
#include <vector>

namespace {

using odma::errc;
using odma::growth;
using paged_host = odma::paged<odma::backing::host>;

constexpr std::size_t bpt = 8;

odma::paged_config small(std::uint32_t planes = 1, odma::free_order order = odma::free_order::fifo,
                         double watermark = 0.0) {
    return {.bytes_per_token = bpt,
            .max_tokens = 64,
            .planes = planes,
            .block_tokens = 4,
            .watermark = watermark,
            .order = order};
}

std::vector<std::uint32_t> table_of(const paged_host& kv, const odma::lease& l) {
    const auto t = kv.blocks(l);
    REQUIRE(t.has_value());
    return {t->begin(), t->end()};
}

}  // namespace

TEST_CASE("paged: admit takes the prompt's blocks, extend appends, release frees") {
    paged_host kv(small(), odma::backing::host(64 * 4 * bpt));  // 64 blocks of 4 tokens
    REQUIRE(kv.capacity_blocks() == 64);
    auto l = kv.admit({.id = 1, .prompt_tokens = 9, .max_new_tokens = 10});
    REQUIRE(l);
    CHECK(table_of(kv, *l) == std::vector<std::uint32_t>{0, 1, 2});
    CHECK(*kv.used_tokens(*l) == 9);
    CHECK(kv.free_blocks() == 61);

    CHECK(*kv.extend(*l, 12) == growth::unchanged);  // block 2 has room for tokens 9..11
    CHECK(*kv.extend(*l, 13) == growth::in_place);   // a fourth block
    CHECK(table_of(kv, *l) == std::vector<std::uint32_t>{0, 1, 2, 3});
    CHECK(*kv.extend(*l, 5) == growth::unchanged);  // shrinking keeps the blocks
    CHECK(kv.blocks(*l)->size() == 4);

    const auto& s = kv.stats();
    CHECK(s.arena_bytes == 64 * 4 * bpt);
    CHECK(s.reserved_bytes == 4 * 4 * bpt);
    CHECK(s.used_bytes == 5 * bpt);
    CHECK(s.free_bytes == 60 * 4 * bpt);
    CHECK(s.live_leases == 1);
    CHECK(s.in_place_growths == 1);
    CHECK(s.migrations == 0);
    CHECK(s.external_fragmentation == 0.0);
    CHECK(kv.check());

    CHECK(kv.release(*l, 4));
    CHECK(kv.free_blocks() == 64);
    CHECK(kv.stats().reserved_bytes == 0);
    CHECK(kv.stats().releases == 1);
    CHECK(kv.check());
}

TEST_CASE("paged: FIFO reuses the block freed longest ago, tail first; LIFO the newest") {
    for (const auto order : {odma::free_order::fifo, odma::free_order::lifo}) {
        CAPTURE(int(order));
        paged_host kv(small(1, order), odma::backing::host(20 * 4 * bpt));       // 20 blocks
        auto a = *kv.admit({.id = 1, .prompt_tokens = 8, .max_new_tokens = 4});  // 2 blocks
        auto b = *kv.admit({.id = 2, .prompt_tokens = 4, .max_new_tokens = 4});  // 1 block
        if (order == odma::free_order::fifo) {
            CHECK(table_of(kv, a) == std::vector<std::uint32_t>{0, 1});
            CHECK(table_of(kv, b) == std::vector<std::uint32_t>{2});
        } else {
            CHECK(table_of(kv, a) == std::vector<std::uint32_t>{19, 18});
            CHECK(table_of(kv, b) == std::vector<std::uint32_t>{17});
        }
        REQUIRE(kv.release(a, 0));
        auto c = *kv.admit({.id = 3, .prompt_tokens = 12, .max_new_tokens = 4});  // 3 blocks
        if (order == odma::free_order::fifo)  // blocks 3..19 were freed before a's
            CHECK(table_of(kv, c) == std::vector<std::uint32_t>{3, 4, 5});
        else  // a's blocks went back tail first (18, then 19): 19 is on top
            CHECK(table_of(kv, c) == std::vector<std::uint32_t>{19, 18, 16});
        CHECK(kv.check());
        (void)b;
    }
}

TEST_CASE("paged: for_each_run lists one run per block and plane, the last one partial") {
    paged_host kv(small(2), odma::backing::host(16 * 4 * bpt));  // 16 blocks, 2 planes
    auto filler = *kv.admit({.id = 9, .prompt_tokens = 4, .max_new_tokens = 4});  // block 0
    auto l = *kv.admit({.id = 1, .prompt_tokens = 6, .max_new_tokens = 8});       // blocks 1, 2
    REQUIRE(kv.release(filler, 0));
    REQUIRE(*kv.extend(l, 9) == growth::in_place);  // block 3
    const std::size_t plane_token = bpt / 2;
    for (std::uint32_t p = 0; p < 2; ++p) {
        std::vector<std::pair<std::size_t, std::size_t>> runs;
        REQUIRE(kv.for_each_run(
            l, p, [&](std::size_t off, std::size_t n) { runs.emplace_back(off, n); }));
        const std::size_t plane = std::size_t(p) * kv.capacity_tokens() * plane_token;
        const std::vector<std::pair<std::size_t, std::size_t>> want{
            {plane + 4 * plane_token, 4 * plane_token},
            {plane + 8 * plane_token, 4 * plane_token},
            {plane + 12 * plane_token, 1 * plane_token}};
        CHECK(runs == want);
        CHECK(kv.byte_offset(p, 4) == want[0].first);
    }
    CHECK(kv.for_each_run(l, 2, [](std::size_t, std::size_t) {}).error() == errc::invalid_request);
}

TEST_CASE("paged: data() addresses token slots through the block table") {
    paged_host kv(small(2), odma::backing::host(16 * 4 * bpt));
    auto l = *kv.admit({.id = 1, .prompt_tokens = 7, .max_new_tokens = 4});
    std::byte* t0 = kv.data(l, 1, 0);
    std::byte* t5 = kv.data(l, 1, 5);
    const std::byte* arena = kv.backing().address(0);
    CHECK(t0 == arena + kv.byte_offset(1, 0));
    CHECK(t5 == arena + kv.byte_offset(1, kv.blocks(l)->operator[](1) * 4 + 1));
    CHECK(kv.data(l, 2).error() == errc::invalid_request);
    CHECK(kv.data(l, 0, 8).error() == errc::invalid_request);  // beyond its two blocks
    CHECK(kv.data(l, 0, 7).has_value());                       // inside block 1
}

TEST_CASE("paged: error contract") {
    paged_host kv(small(), odma::backing::host(32 * 4 * bpt));  // 32 blocks
    paged_host other(small(), odma::backing::host(32 * 4 * bpt));

    CHECK(kv.admit({.id = 1, .prompt_tokens = 0, .max_new_tokens = 1}).error() ==
          errc::invalid_request);
    CHECK(kv.admit({.id = 1, .prompt_tokens = 1, .max_new_tokens = 0}).error() ==
          errc::invalid_request);
    CHECK(kv.admit({.id = 1, .prompt_tokens = 64, .max_new_tokens = 1}).error() ==
          errc::invalid_request);
    CHECK(kv.stats().rejected.invalid_request == 3);

    auto l = *kv.admit({.id = 1, .prompt_tokens = 8, .max_new_tokens = 8});
    CHECK(kv.extend(l, 0).error() == errc::invalid_request);
    CHECK(kv.extend(l, 65).error() == errc::invalid_request);
    CHECK(*kv.extend(l, 64) == growth::in_place);  // up to max_tokens, like the allocator

    const auto foreign = *other.admit({.id = 2, .prompt_tokens = 4, .max_new_tokens = 4});
    CHECK(kv.extend(foreign, 5).error() == errc::invalid_lease);
    CHECK(kv.release(foreign, 1).error() == errc::invalid_lease);
    CHECK(kv.blocks(odma::lease{}).error() == errc::invalid_lease);
    CHECK_FALSE(kv.is_live(odma::lease{}));

    const odma::lease copy = l;
    REQUIRE(kv.release(l, 3));
    CHECK(kv.release(copy, 3).error() == errc::invalid_lease);
    CHECK(kv.abandon(copy).error() == errc::invalid_lease);
    CHECK(kv.extend(copy, 9).error() == errc::invalid_lease);
    CHECK(kv.data(copy).error() == errc::invalid_lease);
    CHECK(kv.stats().rejected.invalid_lease == 7);

    // A reused slot gets a new generation: the old handle stays dead.
    auto again = *kv.admit({.id = 3, .prompt_tokens = 4, .max_new_tokens = 4});
    CHECK(kv.is_live(again));
    CHECK_FALSE(kv.is_live(copy));

    // no_memory: the extend keeps the lease whole.
    auto big = *kv.admit({.id = 4, .prompt_tokens = 63, .max_new_tokens = 1});  // 16 blocks
    auto mid = *kv.admit({.id = 5, .prompt_tokens = 56, .max_new_tokens = 8});  // 14 blocks
    CHECK(kv.free_blocks() == 1);
    CHECK(kv.admit({.id = 6, .prompt_tokens = 8, .max_new_tokens = 1}).error() == errc::no_memory);
    CHECK(*kv.extend(mid, 60) == growth::in_place);
    CHECK(kv.extend(mid, 61).error() == errc::no_memory);
    CHECK(*kv.used_tokens(mid) == 60);
    CHECK(kv.blocks(mid)->size() == 15);
    CHECK(kv.stats().rejected.admit_no_memory == 1);
    CHECK(kv.stats().rejected.extend_no_memory == 1);
    CHECK(kv.check());
    (void)big;
}

TEST_CASE("paged: the watermark holds back blocks from admissions only") {
    // 20 blocks, watermark 0.1 -> 2 blocks kept free for growth.
    paged_host kv(small(1, odma::free_order::fifo, 0.1), odma::backing::host(20 * 4 * bpt));
    auto a = *kv.admit({.id = 1, .prompt_tokens = 60, .max_new_tokens = 4});  // 15 blocks
    CHECK(kv.admit({.id = 2, .prompt_tokens = 13, .max_new_tokens = 4}).error() ==
          errc::no_memory);  // 4 blocks would leave 1 < 2
    auto b = kv.admit({.id = 3, .prompt_tokens = 12, .max_new_tokens = 4});  // leaves 2
    CHECK(b);
    CHECK(*kv.extend(a, 64) == growth::in_place);  // growth may dig into the watermark
    CHECK(kv.free_blocks() == 1);
}

TEST_CASE("paged: bad configurations throw config_error naming the field") {
    const auto field_of = [](odma::paged_config c, std::size_t bytes = 1 << 16) {
        try {
            paged_host kv(c, odma::backing::host(bytes));
        } catch (const odma::config_error& e) {
            return std::string(e.field());
        }
        return std::string("none");
    };
    auto c = small();
    CHECK(field_of(c) == "none");
    c.bytes_per_token = 0;
    CHECK(field_of(c) == "bytes_per_token");
    c = small();
    c.max_tokens = 0;
    CHECK(field_of(c) == "max_tokens");
    c = small(3);  // 3 does not divide 8
    CHECK(field_of(c) == "planes");
    c = small();
    c.block_tokens = 0;
    CHECK(field_of(c) == "block_tokens");
    c = small();
    c.watermark = 1.0;
    CHECK(field_of(c) == "watermark");
    CHECK(field_of(small(), 15 * 4 * bpt) == "backing");  // 64 tokens need 16 blocks
}

TEST_CASE("paged: property test against a reference model, check() after every operation") {
    for (const auto order : {odma::free_order::fifo, odma::free_order::lifo}) {
        for (const std::uint32_t planes : {1u, 2u}) {
            CAPTURE(int(order));
            CAPTURE(planes);
            constexpr std::uint32_t blocks = 96, bt = 4, max_tokens = 64;
            const odma::paged_config cfg{.bytes_per_token = bpt,
                                         .max_tokens = max_tokens,
                                         .planes = planes,
                                         .block_tokens = bt,
                                         .watermark = 0.05,
                                         .order = order};
            paged_host kv(cfg, odma::backing::host(blocks * bt * bpt));
            const std::uint32_t watermark = std::uint32_t(blocks * 0.05);

            // The model: the free list as a deque with the documented order, and each lease's
            // block table and length. Every block id the allocator hands out is predicted.
            std::deque<std::uint32_t> free_list;
            for (std::uint32_t b = 0; b < blocks; ++b)
                free_list.push_back(b);
            const auto take = [&] {
                std::uint32_t b;
                if (order == odma::free_order::fifo) {
                    b = free_list.front();
                    free_list.pop_front();
                } else {
                    b = free_list.back();
                    free_list.pop_back();
                }
                return b;
            };
            struct model_lease {
                odma::lease handle;
                std::vector<std::uint32_t> table;
                std::uint32_t used;
                std::byte tag;
            };
            std::vector<model_lease> live;
            std::vector<odma::lease> dead;
            std::mt19937 rng(1234 + planes);
            const std::size_t plane_token = bpt / planes;

            // Each lease's tokens carry its tag, so overlapping blocks would show.
            const auto fill = [&](const model_lease& m, std::uint32_t from, std::uint32_t to) {
                for (std::uint32_t p = 0; p < planes; ++p)
                    for (std::uint32_t t = from; t < to; ++t)
                        std::memset(kv.data(m.handle, p, t).get(), int(m.tag), plane_token);
            };
            const auto intact = [&](const model_lease& m) {
                for (std::uint32_t p = 0; p < planes; ++p)
                    for (std::uint32_t t = 0; t < m.used; ++t) {
                        const std::byte* q = kv.data(m.handle, p, t);
                        for (std::size_t i = 0; i < plane_token; ++i)
                            if (q[i] != m.tag) return false;
                    }
                return true;
            };

            std::uint8_t next_tag = 1;
            for (int op = 0; op < 6000; ++op) {
                const unsigned kind = rng() % 10;
                if (kind < 4) {                                   // admit
                    const std::uint32_t prompt = 1 + rng() % 70;  // some are invalid
                    auto r = kv.admit(
                        {.id = std::uint64_t(op), .prompt_tokens = prompt, .max_new_tokens = 8});
                    const std::uint32_t need = (prompt + bt - 1) / bt;
                    if (prompt >= max_tokens) {
                        CHECK(r.error() == errc::invalid_request);
                    } else if (need + watermark > free_list.size()) {
                        CHECK(r.error() == errc::no_memory);
                    } else {
                        REQUIRE(r);
                        model_lease m{*r, {}, prompt, std::byte(next_tag++ | 1)};
                        for (std::uint32_t i = 0; i < need; ++i)
                            m.table.push_back(take());
                        CHECK(table_of(kv, m.handle) == m.table);
                        fill(m, 0, prompt);
                        live.push_back(std::move(m));
                    }
                } else if (kind < 8 && !live.empty()) {  // extend
                    auto& m = live[rng() % live.size()];
                    const std::uint32_t total = 1 + rng() % 66;
                    const auto g = kv.extend(m.handle, total);
                    const std::uint32_t need = (total + bt - 1) / bt;
                    if (total > max_tokens) {
                        CHECK(g.error() == errc::invalid_request);
                    } else if (need <= m.table.size()) {
                        CHECK(*g == growth::unchanged);
                        if (total > m.used) fill(m, m.used, total);
                        m.used = total;
                    } else if (need - m.table.size() > free_list.size()) {
                        CHECK(g.error() == errc::no_memory);
                    } else {
                        CHECK(*g == growth::in_place);
                        while (m.table.size() < need)
                            m.table.push_back(take());
                        const std::uint32_t before = m.used;
                        m.used = total;
                        if (total > before) fill(m, before, total);
                    }
                    CHECK(table_of(kv, m.handle) == m.table);
                    CHECK(*kv.used_tokens(m.handle) == m.used);
                } else if (!live.empty()) {  // release or abandon
                    const std::size_t i = rng() % live.size();
                    auto& m = live[i];
                    CHECK(intact(m));
                    if (rng() % 2)
                        CHECK(kv.release(m.handle, 1));
                    else
                        CHECK(kv.abandon(m.handle));
                    for (auto it = m.table.rbegin(); it != m.table.rend(); ++it)
                        free_list.push_back(*it);
                    dead.push_back(m.handle);
                    live.erase(live.begin() + std::ptrdiff_t(i));
                }
                if (!dead.empty() && rng() % 16 == 0)
                    CHECK(kv.extend(dead[rng() % dead.size()], 4).error() == errc::invalid_lease);
                REQUIRE(kv.check());
                REQUIRE(kv.free_blocks() == free_list.size());
            }
            std::uint64_t used = 0;
            for (const auto& m : live) {
                CHECK(intact(m));
                used += m.used;
            }
            CHECK(kv.stats().used_bytes == used * bpt);
            CHECK(kv.stats().live_leases == live.size());
        }
    }
}

TEST_CASE("paged: resume takes the blocks for prompt + generated tokens") {
    paged_host kv(small(), odma::backing::host(16 * 4 * bpt));
    const odma::request r{.id = 1, .prompt_tokens = 5, .max_new_tokens = 20};
    auto l = kv.resume(r, 6);  // 11 tokens: 3 blocks of 4
    REQUIRE(l);
    CHECK(*kv.used_tokens(*l) == 11);
    CHECK(table_of(kv, *l).size() == 3);
    CHECK(kv.stats().resumptions == 1);
    CHECK(kv.stats().admissions == 1);
    CHECK(kv.resume(r, 20).error() == errc::invalid_request);
    CHECK(kv.resume({.id = 2, .prompt_tokens = 60, .max_new_tokens = 20}, 4).error() ==
          errc::invalid_request);  // 64 tokens: no room left to generate
    CHECK(kv.check());
}

TEST_CASE("paged: a committing backing holds exactly the blocks leases hold, all or nothing") {
    using paged_commit = odma::paged<odma_test::counting_commit_backing>;
    const auto cfg = small(2);  // 2 planes: every block commits twice
    const std::size_t block_bytes = 4 * bpt / 2;
    paged_commit kv(cfg, odma_test::counting_commit_backing(16 * 4 * bpt));
    auto a = *kv.admit({.id = 1, .prompt_tokens = 6, .max_new_tokens = 20});  // 2 blocks
    CHECK(kv.backing().committed == 2 * 2 * block_bytes);
    REQUIRE(*kv.extend(a, 13) == growth::in_place);  // 4 blocks
    CHECK(kv.backing().committed == 4 * 2 * block_bytes);

    // The device runs out part-way through the third block of an admission: the blocks taken
    // so far go back, the free list is as before, and nothing stays committed.
    const auto free_before = kv.free_blocks();
    kv.backing().refuse_after_calls = kv.backing().commit_calls + 5;
    CHECK(kv.admit({.id = 2, .prompt_tokens = 12, .max_new_tokens = 20}).error() ==
          errc::no_memory);
    CHECK(kv.free_blocks() == free_before);
    CHECK(kv.backing().committed == 4 * 2 * block_bytes);
    CHECK(kv.check());
    // A failed extend keeps the lease at its size.
    kv.backing().refuse_after_calls = kv.backing().commit_calls + 1;
    CHECK(kv.extend(a, 20).error() == errc::no_memory);
    CHECK(*kv.used_tokens(a) == 13);
    CHECK(kv.backing().committed == 4 * 2 * block_bytes);
    CHECK(kv.check());

    kv.backing().refuse_after_calls = std::numeric_limits<std::size_t>::max();
    REQUIRE(kv.release(a, 7));
    CHECK(kv.backing().committed == 0);
}
