// detail::granule_map: byte-counted granules, run mapping, rollback and refused unmaps.
#include <odma/backing/detail/granule_map.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

namespace {

/// Records map/unmap calls and keeps its own set of mapped granules, so a test can check the
/// map never maps a granule twice or unmaps one it did not map.
struct recorder {
    std::set<std::size_t> mapped;
    std::vector<std::pair<std::size_t, std::size_t>> map_runs, unmap_runs;
    std::size_t map_budget = ~std::size_t(0);  // granules map() may still map
    std::set<std::size_t> refuse_unmap;        // granules unmap() refuses

    auto map() {
        return [this](std::size_t g, std::size_t n) {
            map_runs.emplace_back(g, n);
            std::size_t done = 0;
            for (; done < n && map_budget > 0; ++done, --map_budget) {
                REQUIRE(mapped.insert(g + done).second);  // never mapped twice
            }
            return done;
        };
    }
    auto unmap() {
        return [this](std::size_t g, std::size_t n) {
            unmap_runs.emplace_back(g, n);
            for (std::size_t i = 0; i < n; ++i) {
                if (refuse_unmap.count(g + i)) return i;
                REQUIRE(mapped.erase(g + i) == 1);  // never unmaps what is not mapped
            }
            return n;
        };
    }
};

}  // namespace

TEST_CASE("granule_map: a granule is mapped while any of its bytes is committed") {
    odma::detail::granule_map m(10 * 100, 100);
    recorder r;
    // Two leases share granule 1: [50, 150) and [150, 260).
    REQUIRE(m.commit(50, 100, r.map(), r.unmap()));
    CHECK(r.mapped == std::set<std::size_t>{0, 1});
    REQUIRE(m.commit(150, 110, r.map(), r.unmap()));
    CHECK(r.mapped == std::set<std::size_t>{0, 1, 2});
    CHECK(r.map_runs.size() == 2);  // granule 1 was not mapped again
    CHECK(m.counters().committed_bytes == 210);
    CHECK(m.counters().mapped_bytes == 300);
    CHECK(m.committed_in(1) == 100);

    // Release the first lease: granule 0 goes, granule 1 stays for the second lease.
    m.decommit(50, 100, r.unmap());
    CHECK(r.mapped == std::set<std::size_t>{1, 2});
    m.decommit(150, 110, r.unmap());
    CHECK(r.mapped.empty());
    CHECK(m.counters().mapped_bytes == 0);
    CHECK(m.counters().peak_mapped_bytes == 300);
    CHECK(m.counters().maps == 3);
    CHECK(m.counters().unmaps == 3);
    CHECK(m.counters().contract_violations == 0);
}

TEST_CASE("granule_map: a lease growing token by token maps each granule once") {
    odma::detail::granule_map m(64 * 1000, 1000);
    recorder r;
    constexpr std::size_t token = 96;  // does not divide the granule: tokens straddle granules
    for (std::size_t t = 0; t < 400; ++t)
        REQUIRE(m.commit(t * token, token, r.map(), r.unmap()));
    const std::size_t granules = (400 * token + 999) / 1000;
    CHECK(r.mapped.size() == granules);
    CHECK(m.counters().maps == granules);
    CHECK(m.counters().commits == 400);
    // The allocator decommits a lease in one call at release.
    m.decommit(0, 400 * token, r.unmap());
    CHECK(r.mapped.empty());
    CHECK(r.unmap_runs.size() == 1);  // one run for the whole lease
    CHECK(m.counters().committed_bytes == 0);
}

TEST_CASE("granule_map: a commit that cannot map everything changes nothing") {
    odma::detail::granule_map m(10 * 100, 100);
    recorder r;
    REQUIRE(m.commit(250, 100, r.map(), r.unmap()));  // granules 2, 3
    r.map_budget = 2;
    // [0, 700) needs 0, 1 (a run) and 4, 5, 6 (a run); the budget runs out inside the second.
    CHECK_FALSE(m.commit(0, 700, r.map(), r.unmap()));
    CHECK(r.mapped == std::set<std::size_t>{2, 3});  // 0 and 1 were mapped, then undone
    CHECK(m.counters().committed_bytes == 100);
    CHECK(m.counters().mapped_bytes == 200);
    CHECK(m.counters().failed_commits == 1);
    CHECK(m.committed_in(0) == 0);
    CHECK(m.committed_in(2) == 50);
    r.map_budget = ~std::size_t(0);
    REQUIRE(m.commit(0, 250, r.map(), r.unmap()));  // the same range works once memory is back
    CHECK(r.mapped == std::set<std::size_t>{0, 1, 2, 3});
}

TEST_CASE("granule_map: a granule the driver refuses to unmap stays mapped and is reused") {
    odma::detail::granule_map m(8 * 100, 100);
    recorder r;
    REQUIRE(m.commit(0, 400, r.map(), r.unmap()));
    r.refuse_unmap = {1};
    m.decommit(0, 400, r.unmap());
    CHECK(r.mapped == std::set<std::size_t>{1});
    CHECK(m.is_mapped(1));
    CHECK(m.counters().unmap_failures == 1);
    CHECK(m.counters().mapped_bytes == 100);
    // The next commit over it does not map it again (the recorder would fail on a double map).
    const auto maps = m.counters().maps;
    REQUIRE(m.commit(100, 100, r.map(), r.unmap()));
    CHECK(m.counters().maps == maps);
    r.refuse_unmap.clear();
    m.decommit(100, 100, r.unmap());
    CHECK(r.mapped.empty());
    CHECK(m.unmap_all(r.unmap()));
}

TEST_CASE("granule_map: bad ranges are refused and counted, never corrupt the counts") {
    odma::detail::granule_map m(4 * 100, 100);
    recorder r;
    CHECK_FALSE(m.commit(350, 100, r.map(), r.unmap()));  // past the end
    CHECK(r.mapped.empty());
    REQUIRE(m.commit(0, 50, r.map(), r.unmap()));
    m.decommit(0, 80, r.unmap());  // 30 bytes never committed
    CHECK(m.counters().contract_violations == 2);
    CHECK(m.counters().committed_bytes == 0);
    CHECK(r.mapped.empty());
    CHECK(m.commit(10, 0, r.map(), r.unmap()));  // empty range: nothing to do
    CHECK_THROWS_AS(odma::detail::granule_map(1000, 0), std::invalid_argument);
    CHECK_THROWS_AS(odma::detail::granule_map(1050, 100), std::invalid_argument);
}

TEST_CASE("granule_map: random disjoint commits match a byte-level model") {
    constexpr std::size_t granule = 64, granules = 50, size = granule * granules;
    odma::detail::granule_map m(size, granule);
    recorder r;
    std::vector<bool> committed(size, false);
    struct range {
        std::size_t offset, bytes;
    };
    std::vector<range> live;
    std::mt19937 rng(7);
    for (int step = 0; step < 5000; ++step) {
        if (rng() % 2 == 0 || live.empty()) {
            const std::size_t offset = rng() % size;
            std::size_t bytes = 1 + rng() % 200;
            bytes = std::min(bytes, size - offset);
            bool free = true;
            for (std::size_t i = offset; i < offset + bytes; ++i)
                free = free && !committed[i];
            if (!free) continue;  // the allocator never commits a byte twice
            REQUIRE(m.commit(offset, bytes, r.map(), r.unmap()));
            for (std::size_t i = offset; i < offset + bytes; ++i)
                committed[i] = true;
            live.push_back({offset, bytes});
        } else {
            const std::size_t k = rng() % live.size();
            m.decommit(live[k].offset, live[k].bytes, r.unmap());
            for (std::size_t i = live[k].offset; i < live[k].offset + live[k].bytes; ++i)
                committed[i] = false;
            live[k] = live.back();
            live.pop_back();
        }
        // Expected: exactly the granules with a committed byte are mapped.
        std::set<std::size_t> expected;
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < size; ++i)
            if (committed[i]) expected.insert(i / granule), ++bytes;
        REQUIRE(r.mapped == expected);
        REQUIRE(m.counters().committed_bytes == bytes);
        REQUIRE(m.counters().mapped_bytes == expected.size() * granule);
    }
    CHECK(m.counters().contract_violations == 0);
}
