// backing::host_vmm: real reserve / commit / decommit on this machine, resident-set checks,
// and the allocator driving it through random operations.
#include <odma/backing/host_vmm.hpp>
#include <odma/odma.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <stdexcept>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

namespace {

constexpr std::size_t mib = std::size_t(1) << 20;

/// The process's resident set in bytes, from /proc/self/statm (Linux).
std::size_t process_rss() {
    std::ifstream statm("/proc/self/statm");
    std::size_t size = 0, resident = 0;
    statm >> size >> resident;
    return resident * odma::backing::host_vmm::page_size();
}

}  // namespace

TEST_CASE("host_vmm: reserving costs no memory, commit backs and decommit returns pages") {
    const std::size_t page = odma::backing::host_vmm::page_size();
    odma::backing::host_vmm arena(256 * mib);
    CHECK(arena.capacity() == 256 * mib);
    CHECK(arena.granule_size() == page);
    CHECK(arena.resident_bytes() == 0);
    CHECK_FALSE(arena.is_committed(0));

    REQUIRE(arena.commit(mib, 3 * page));
    CHECK(arena.is_committed(mib));
    CHECK(arena.is_committed(mib + 3 * page - 1));
    CHECK_FALSE(arena.is_committed(mib + 3 * page));
    std::memset(arena.address(mib), 0x5a, 3 * page);
    CHECK(arena.resident_bytes() == 3 * page);
    CHECK(arena.counters().mapped_bytes == 3 * page);

    arena.decommit(mib, 3 * page);
    CHECK(arena.resident_bytes() == 0);
    CHECK_FALSE(arena.is_committed(mib));
    // Committed again, the pages come back zeroed: nothing of the old lease leaks through.
    REQUIRE(arena.commit(mib, page));
    CHECK(std::to_integer<int>(*arena.address(mib)) == 0);
    arena.decommit(mib, page);
    CHECK(arena.counters().contract_violations == 0);
}

TEST_CASE("host_vmm: the process resident set follows commit and decommit") {
    constexpr std::size_t touched = 64 * mib;
    odma::backing::host_vmm arena(1024 * mib);  // 1 GiB of address space, no memory
    const std::size_t before = process_rss();
    REQUIRE(arena.commit(0, touched));
    std::memset(arena.address(0), 1, touched);
    const std::size_t during = process_rss();
    arena.decommit(0, touched);
    const std::size_t after = process_rss();
    std::printf(
        "host_vmm RSS: before %zu MiB, 64 MiB committed and written %zu MiB, "
        "decommitted %zu MiB\n",
        before / mib, during / mib, after / mib);
    CHECK(during >= before + touched * 9 / 10);
    CHECK(during - after >= touched * 9 / 10);  // the pages really went back to the system
    CHECK(arena.resident_bytes() == 0);
}

TEST_CASE("host_vmm: granules, validation and moves") {
    const std::size_t page = odma::backing::host_vmm::page_size();
    CHECK_THROWS_AS(odma::backing::host_vmm(mib, page + 1), std::invalid_argument);

    odma::backing::host_vmm arena(10 * page + 1, 4 * page);  // rounded up to 3 granules
    CHECK(arena.capacity() == 12 * page);
    REQUIRE(arena.commit(5 * page, 1));  // one byte commits its whole granule
    CHECK(arena.counters().mapped_bytes == 4 * page);
    CHECK(arena.is_committed(4 * page));
    CHECK(arena.is_committed(8 * page - 1));
    CHECK_FALSE(arena.commit(11 * page, 2 * page));  // past the end: refused, counted
    CHECK(arena.counters().contract_violations == 1);

    odma::backing::host_vmm moved(std::move(arena));
    CHECK(moved.is_committed(4 * page));
    *moved.address(5 * page) = std::byte{7};
    CHECK(arena.capacity() == 0);  // NOLINT(bugprone-use-after-move): moved-from is empty
    odma::backing::host_vmm empty(0);
    CHECK(empty.capacity() == 0);
    CHECK(empty.resident_bytes() == 0);
}

namespace {

std::byte pattern(std::uint64_t id, std::size_t i) {
    return std::byte((id * 131 + i * 7 + (i >> 9)) & 0xff);
}

}  // namespace

TEST_CASE("host_vmm under the allocator: random operations, exact physical accounting") {
    // Tokens of 96 bytes per plane do not divide a 4 KiB page: leases and planes share pages.
    constexpr std::uint32_t planes = 2, max_tokens = 512, arena_tokens = 8192;
    constexpr std::size_t bpt = 96 * planes;
    using kv_t =
        odma::allocator<odma::predict::oracle, odma::bucket::fixed, odma::backing::host_vmm>;
    const odma::config cfg{.bytes_per_token = bpt,
                           .max_tokens = max_tokens,
                           .safety_pool_fraction = 0.2,
                           .overflow_risk = 0.05,
                           .planes = planes};
    kv_t kv(cfg, {}, odma::bucket::fixed::powers_of_two(16, max_tokens),
            odma::backing::host_vmm(arena_tokens * bpt));
    const std::size_t page = odma::backing::host_vmm::page_size();
    const std::size_t ppt = cfg.bytes_per_plane_token();

    struct model_lease {
        odma::lease handle;
        std::uint64_t id;
        std::uint32_t used, committed;  // committed: what the allocator must have committed
    };
    std::vector<model_lease> live;
    std::mt19937_64 rng(11);
    auto uniform = [&](std::uint64_t lo, std::uint64_t hi) { return lo + rng() % (hi - lo + 1); };
    auto write = [&](const model_lease& m, std::uint32_t from, std::uint32_t to) {
        for (std::uint32_t p = 0; p < planes; ++p) {
            std::byte* base = kv.data(m.handle, p);
            for (std::size_t i = from * ppt; i < to * ppt; ++i)
                base[i] = pattern(m.id * 8 + p, i);
        }
    };
    auto intact = [&](const model_lease& m) {
        for (std::uint32_t p = 0; p < planes; ++p) {
            const std::byte* base = kv.data(m.handle, p);
            for (std::size_t i = 0; i < m.used * ppt; ++i)
                if (base[i] != pattern(m.id * 8 + p, i)) return false;
        }
        return true;
    };
    // The pages that must be mapped: those touched by a committed token of a live lease.
    auto expected_pages = [&] {
        std::set<std::size_t> pages;
        for (const auto& m : live) {
            const auto offset = kv.region_of(m.handle)->offset_tokens;
            for (std::uint32_t p = 0; p < planes; ++p) {
                const std::size_t begin = kv.byte_offset(p, offset);
                const std::size_t end = begin + std::size_t(m.committed) * ppt;
                for (std::size_t b = begin / page; b <= (end - 1) / page; ++b)
                    pages.insert(b);
            }
        }
        return pages;
    };

    std::uint64_t next_id = 1;
    int admitted = 0, migrated = 0, in_place = 0, refused = 0;
    std::size_t peak_mapped = 0, peak_reserved = 0;
    for (int step = 0; step < 4000; ++step) {
        const auto op = uniform(0, 99);
        if (op < 40) {
            const auto prompt = std::uint32_t(uniform(1, 200));
            const auto max_new = std::uint32_t(uniform(1, 400));
            kv.predictor().tell(next_id, std::uint32_t(uniform(1, 400)));
            const odma::request r{
                .id = next_id, .prompt_tokens = prompt, .max_new_tokens = max_new};
            auto got = kv.admit(r);
            if (got) {
                live.push_back({*got, next_id, prompt, prompt});
                write(live.back(), 0, prompt);
                ++admitted;
            } else {
                REQUIRE(got.error() == odma::errc::no_memory);
                kv.predictor().observe(r, 0);
                ++refused;
            }
            ++next_id;
        } else if (op < 80 && !live.empty()) {
            auto& m = live[uniform(0, live.size() - 1)];
            const auto total =
                std::min<std::uint32_t>(max_tokens, m.used + std::uint32_t(uniform(1, 64)));
            REQUIRE(intact(m));
            auto g = kv.extend(m.handle, total);
            REQUIRE(intact(m));
            if (g) {
                if (*g == odma::growth::migrated) {
                    ++migrated;
                    m.committed = total;  // the new region holds exactly the tokens now live
                } else {
                    in_place += *g == odma::growth::in_place;
                    m.committed = std::max(m.committed, total);
                }
                const auto old = m.used;
                m.used = std::max(m.used, total);
                write(m, old, m.used);
            }
        } else if (!live.empty()) {
            const std::size_t k = uniform(0, live.size() - 1);
            REQUIRE(intact(live[k]));
            REQUIRE(kv.release(live[k].handle, live[k].used));
            live[k] = live.back();
            live.pop_back();
        }
        const auto& c = kv.backing().counters();
        std::size_t committed_tokens = 0;
        for (const auto& m : live)
            committed_tokens += m.committed;
        REQUIRE(c.committed_bytes == committed_tokens * bpt);
        if (step % 50 == 0) {
            const auto pages = expected_pages();
            REQUIRE(c.mapped_bytes == pages.size() * page);
            for (std::size_t b = 0; b < kv.backing().capacity() / page; ++b)
                REQUIRE(kv.backing().is_committed(b * page) == (pages.count(b) == 1));
            // Every resident page is a mapped one: decommitted pages were really returned.
            REQUIRE(kv.backing().resident_bytes() <= c.mapped_bytes);
        }
        REQUIRE(kv.check());
        peak_mapped = std::max(peak_mapped, c.mapped_bytes);
        peak_reserved = std::max(peak_reserved, kv.stats().reserved_bytes);
    }
    std::printf(
        "host_vmm property: admitted %d (refused %d), in place %d, migrated %d; "
        "peak mapped %zu KiB vs peak reserved %zu KiB of %zu KiB reserved\n",
        admitted, refused, in_place, migrated, peak_mapped / 1024, peak_reserved / 1024,
        kv.backing().capacity() / 1024);
    CHECK(admitted > 100);
    CHECK(migrated > 0);
    CHECK(in_place > 0);
    CHECK(refused > 0);
    CHECK(peak_mapped < peak_reserved);  // on-demand mapping saved physical memory
    for (const auto& m : live)
        REQUIRE(kv.release(m.handle, m.used));
    CHECK(kv.backing().counters().mapped_bytes == 0);
    CHECK(kv.backing().counters().committed_bytes == 0);
    CHECK(kv.backing().counters().contract_violations == 0);
    CHECK(kv.backing().resident_bytes() == 0);
}
