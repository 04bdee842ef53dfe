// allocator::resize(): the elastic arena on an on-demand backing (host_vmm, for real on this
// machine). Growing, shrinking over free space, shrinking that moves runs within a copy budget
// (every byte of every lease verified), refusals that change nothing and report what could be
// freed, leases of several runs, the safety pool, exception safety, and resizes through
// synchronized while other threads admit, extend and release (run under ThreadSanitizer by the
// tsan preset: this executable is labelled `threads`).
#include <odma/backing/host_vmm.hpp>
#include <odma/backing/placement_only.hpp>
#include <odma/odma.hpp>

#include "support/test_backings.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using odma::errc;
using odma::growth;
using vmm_kv = odma::allocator<odma::predict::oracle, odma::bucket::fixed, odma::backing::host_vmm>;
using host_kv = odma::allocator<odma::predict::oracle, odma::bucket::fixed, odma::backing::host>;

// Only on-demand backings offer resize(), and synchronized forwards it only for those.
static_assert(odma::ResizableBacking<odma::backing::host_vmm>);
static_assert(!odma::ResizableBacking<odma::backing::host>);
static_assert(!odma::ResizableBacking<odma::backing::placement_only>);
static_assert(!odma::ResizableBacking<odma_test::counting_commit_backing>);  // no granules
template <class A>
concept offers_resize = requires(A& a, std::size_t bytes) {
    { a.resize(bytes, bytes) } -> std::same_as<odma::resize_result>;
    { a.resize(bytes) } -> std::same_as<odma::resize_result>;
};
static_assert(offers_resize<vmm_kv>);
static_assert(!offers_resize<host_kv>);
static_assert(offers_resize<odma::synchronized<vmm_kv>>);
static_assert(!offers_resize<odma::synchronized<host_kv>>);

constexpr std::uint32_t planes = 2;
constexpr std::size_t bpt = 64 * planes;  // bytes per token over both planes
constexpr std::uint32_t slots = 4096;     // token slots the backing holds (per plane)

odma::config base_config(std::uint32_t max_tokens = 256, double pool = 0.1) {
    return {.bytes_per_token = bpt,
            .max_tokens = max_tokens,
            .safety_pool_fraction = pool,
            .planes = planes};
}

std::unique_ptr<vmm_kv> make_kv(const odma::config& cfg, std::uint32_t buckets = 4) {
    return std::make_unique<vmm_kv>(cfg, odma::predict::oracle{},
                                    odma::bucket::fixed::uniform(buckets, cfg.max_tokens),
                                    odma::backing::host_vmm(std::size_t(slots) * bpt));
}

std::byte pattern(std::uint64_t id, std::uint32_t plane, std::size_t i) {
    return std::byte((id * 131 + plane * 17 + i * 7 + (i >> 8)) & 0xff);
}

/// Writes the lease's tokens [from, to), or checks them when `verify`, in every plane,
/// walking its runs (so it works for leases of several runs and after any move).
template <class Kv>
bool touch(Kv& kv, const odma::lease& l, std::uint64_t id, std::uint32_t from, std::uint32_t to,
           bool verify) {
    const std::size_t ppt = kv.config().bytes_per_plane_token();
    bool ok = true;
    for (std::uint32_t p = 0; p < kv.config().planes; ++p) {
        std::size_t i = 0;  // byte of the lease in this plane
        const auto walked = kv.for_each_run(l, p, [&](std::size_t offset, std::size_t bytes) {
            std::byte* run = kv.backing().address(offset);
            for (std::size_t k = 0; k < bytes; ++k, ++i) {
                if (i < from * ppt || i >= to * ppt) continue;
                if (verify)
                    ok = ok && run[k] == pattern(id, p, i);
                else
                    run[k] = pattern(id, p, i);
            }
        });
        ok = ok && walked.has_value();
    }
    return ok;
}

/// A lease the test knows: its handle, pattern id and used tokens.
struct known {
    odma::lease handle;
    std::uint64_t id;
    std::uint32_t used;
};

/// Admits `prompt` tokens reserving exactly `capacity` (the oracle is told the difference), and
/// stamps them.
known admit(vmm_kv& kv, std::uint64_t id, std::uint32_t prompt, std::uint32_t capacity) {
    kv.predictor().tell(id, capacity - prompt);
    auto l = kv.admit({.id = id, .prompt_tokens = prompt, .max_new_tokens = 1000});
    REQUIRE(l);
    REQUIRE(kv.region_of(*l)->capacity == capacity);
    touch(kv, *l, id, 0, prompt, false);
    return {*l, id, prompt};
}

bool all_intact(vmm_kv& kv, const std::vector<known>& leases) {
    for (const known& k : leases)
        if (!touch(kv, k.handle, k.id, 0, k.used, true)) return false;
    return true;
}

std::map<std::uint64_t, odma::region> regions(const vmm_kv& kv, const std::vector<known>& all) {
    std::map<std::uint64_t, odma::region> out;
    for (const known& k : all)
        out[k.id] = *kv.region_of(k.handle);
    return out;
}

bool same(const std::map<std::uint64_t, odma::region>& a,
          const std::map<std::uint64_t, odma::region>& b) {
    if (a.size() != b.size()) return false;
    for (const auto& [id, r] : a) {
        const odma::region& o = b.at(id);
        if (r.offset_tokens != o.offset_tokens || r.capacity != o.capacity || r.used != o.used ||
            r.runs != o.runs || r.in_safety_pool != o.in_safety_pool)
            return false;
    }
    return true;
}

/// Every token slot of the general area at or after `end`, in every plane, is unmapped: the
/// pages wholly inside [end, first pool slot) of each plane.
bool nothing_mapped_beyond(const vmm_kv& kv, std::uint32_t end) {
    const std::size_t page = odma::backing::host_vmm::page_size();
    const std::uint32_t pool_begin = kv.capacity_tokens() - kv.safety_pool_tokens();
    for (std::uint32_t p = 0; p < kv.config().planes; ++p) {
        const std::size_t from = (kv.byte_offset(p, end) + page - 1) / page * page;
        const std::size_t to = kv.byte_offset(p, pool_begin) / page * page;
        for (std::size_t at = from; at < to; at += page)
            if (kv.backing().is_committed(at)) return false;
    }
    return true;
}

std::uint32_t general_end(const vmm_kv& kv) {
    return std::uint32_t(kv.stats().arena_bytes / bpt) - kv.safety_pool_tokens();
}

/// 28 leases of capacity 128 holding 100 tokens each, at [128 i, 128 (i + 1)), then leases
/// 0, 2, ..., 10 released: six holes of 128 tokens low in the general area (which ends at 3687,
/// the pool holding the top 409 slots).
std::vector<known> holes_below(vmm_kv& kv) {
    std::vector<known> live;
    for (std::uint64_t id = 0; id < 28; ++id) {
        live.push_back(admit(kv, id, 100, 128));
        REQUIRE(kv.region_of(live.back().handle)->offset_tokens == id * 128);
    }
    for (std::uint64_t id = 0; id <= 10; id += 2)
        REQUIRE(kv.release(live[id].handle, 0));
    std::erase_if(live, [](const known& k) { return k.id <= 10 && k.id % 2 == 0; });
    REQUIRE(general_end(kv) == 3687);
    return live;
}

}  // namespace

TEST_CASE("resize: config::arena_bytes starts smaller; the whole backing places as before") {
    // The arena given as arena_bytes = the backing's capacity places exactly as the default.
    auto whole = make_kv(base_config());
    odma::config same_cfg = base_config();
    same_cfg.arena_bytes = std::size_t(slots) * bpt;
    auto explicit_whole = make_kv(same_cfg);
    std::mt19937 rng(5);
    for (std::uint64_t id = 1; id < 400; ++id) {
        const std::uint32_t prompt = 1 + rng() % 200, told = rng() % 300;
        whole->predictor().tell(id, told);
        explicit_whole->predictor().tell(id, told);
        const odma::request r{.id = id, .prompt_tokens = prompt, .max_new_tokens = 300};
        auto a = whole->admit(r);
        auto b = explicit_whole->admit(r);
        REQUIRE(a.has_value() == b.has_value());
        if (a)
            CHECK(whole->region_of(*a)->offset_tokens ==
                  explicit_whole->region_of(*b)->offset_tokens);
        if (a && rng() % 3 == 0) {
            REQUIRE(whole->release(*a, 1));
            REQUIRE(explicit_whole->release(*b, 1));
        }
    }
    CHECK(whole->stats().arena_bytes == explicit_whole->stats().arena_bytes);

    odma::config small = base_config();
    small.arena_bytes = 1000 * bpt + 5;  // rounded down to 1000 tokens
    auto kv = make_kv(small);
    const auto s = kv->stats();
    CHECK(s.arena_bytes == 1000 * bpt);
    CHECK(s.max_arena_bytes == slots * bpt);
    CHECK(s.safety_pool_bytes == 100 * bpt);  // a tenth of the arena in use, at the top
    CHECK(kv->capacity_tokens() == slots);
    CHECK(kv->safety_pool_tokens() == 100);
    CHECK(general_end(*kv) == 900);
    CHECK(s.free_bytes == s.arena_bytes);
    CHECK(kv->check());

    small.arena_bytes = std::size_t(slots) * bpt + 1;
    CHECK_THROWS_AS(make_kv(small), odma::config_error);
    small.arena_bytes = 255 * bpt;  // less than one max bucket
    CHECK_THROWS_AS(make_kv(small), odma::config_error);
}

TEST_CASE("resize: growing takes effect at once and the new space takes leases") {
    odma::config cfg = base_config();
    cfg.arena_bytes = 1000 * bpt;
    auto kv = make_kv(cfg);
    std::vector<known> live;
    for (std::uint64_t id = 0;; ++id) {
        kv->predictor().tell(id, 28);
        auto l = kv->admit({.id = id, .prompt_tokens = 100, .max_new_tokens = 1000});
        if (!l) {
            CHECK(l.error() == errc::no_memory);
            break;
        }
        live.push_back({*l, id, 100});
        touch(*kv, *l, id, 0, 100, false);
    }
    CHECK(live.size() == 7);  // 900 general tokens hold 7 x 128 (the pool takes no such lease)
    const auto before = regions(*kv, live);

    const auto grown = kv->resize(3000 * bpt);
    REQUIRE(grown);
    CHECK(grown.arena_bytes() == 3000 * bpt);
    CHECK(grown.copied_bytes() == 0);
    CHECK(general_end(*kv) == 2900);
    CHECK(same(before, regions(*kv, live)));
    CHECK(all_intact(*kv, live));
    const auto s = kv->stats();
    CHECK(s.arena_bytes == 3000 * bpt);
    CHECK(s.free_bytes == s.arena_bytes - s.reserved_bytes);
    CHECK(s.resizes == 1);
    CHECK(kv->check());

    for (std::uint64_t id = 100; id < 108; ++id) {
        live.push_back(admit(*kv, id, 90, 128));
        const auto at = kv->region_of(live.back().handle)->offset_tokens;
        CHECK(at >= 896);
        CHECK(at + 128 <= 2900);
    }
    CHECK(all_intact(*kv, live));
    CHECK(kv->check());

    // All the way: the general area meets the pool again, as in an allocator never resized.
    REQUIRE(kv->resize(std::size_t(slots) * bpt));
    CHECK(general_end(*kv) == slots - 100);
    CHECK(kv->check());
}

TEST_CASE("resize: shrinking over free space at the end moves nothing") {
    auto kv = make_kv(base_config());
    std::vector<known> live;
    for (std::uint64_t id = 0; id < 6; ++id)
        live.push_back(admit(*kv, id, 100, 128));
    const auto before = regions(*kv, live);
    const auto mapped = kv->backing().counters().mapped_bytes;

    const auto shrunk = kv->resize(2000 * bpt);
    REQUIRE(shrunk);
    CHECK(shrunk.copied_bytes() == 0);
    CHECK(general_end(*kv) == 2000 - 409);
    CHECK(same(before, regions(*kv, live)));
    CHECK(all_intact(*kv, live));
    CHECK(kv->backing().counters().mapped_bytes == mapped);
    CHECK(nothing_mapped_beyond(*kv, general_end(*kv)));
    auto s = kv->stats();
    CHECK(s.arena_bytes == 2000 * bpt);
    CHECK(s.free_bytes == (2000 - 6 * 128) * bpt);
    CHECK(s.largest_free_bytes == (2000 - 409 - 6 * 128) * bpt);
    CHECK(kv->check());

    // Admissions stay below the new end; when the general area is full they are refused.
    for (std::uint64_t id = 10;; ++id) {
        kv->predictor().tell(id, 28);
        auto l = kv->admit({.id = id, .prompt_tokens = 100, .max_new_tokens = 28});
        if (!l) break;
        const auto r = *kv->region_of(*l);
        CHECK((r.in_safety_pool || r.offset_tokens + r.capacity <= general_end(*kv)));
        live.push_back({*l, id, 100});
        touch(*kv, *l, id, 0, 100, false);
    }
    CHECK(all_intact(*kv, live));
    CHECK(kv->check());
    s = kv->stats();
    CHECK(s.reserved_bytes + s.free_bytes == s.arena_bytes);
}

TEST_CASE("resize: a shrink moves runs out of the cut within the copy budget, bytes intact") {
    auto kv = make_kv(base_config());
    std::vector<known> live = holes_below(*kv);
    const auto committed = kv->backing().counters().committed_bytes;
    CHECK(committed == live.size() * 100 * bpt);

    // Down to 3072 general tokens: leases 24..27 at [3072, 3584) must move (400 tokens used).
    const std::size_t target = (3072 + 409) * bpt;
    const std::size_t copy = 4 * 100 * bpt;
    const auto moved = kv->resize(target, copy);
    REQUIRE(moved);
    CHECK(moved.copied_bytes() == copy);
    CHECK(moved.arena_bytes() == target);
    CHECK(general_end(*kv) == 3072);
    CHECK(all_intact(*kv, live));
    for (const known& k : live) {
        const auto r = *kv->region_of(k.handle);
        CHECK(r.offset_tokens + r.capacity <= 3072);
        CHECK(r.capacity == 128);
        CHECK(r.used == 100);
        if (k.id >= 24) CHECK(r.offset_tokens <= 10 * 128);  // into the holes
    }
    CHECK(kv->backing().counters().committed_bytes == committed);  // moved, not duplicated
    CHECK(kv->backing().counters().contract_violations == 0);
    CHECK(nothing_mapped_beyond(*kv, 3072));
    const auto s = kv->stats();
    CHECK(s.arena_bytes == target);
    CHECK(s.reserved_bytes == live.size() * 128 * bpt);
    CHECK(s.free_bytes == target - s.reserved_bytes);
    CHECK(s.resize_copied_bytes == copy);
    CHECK(s.migrations == 0);  // a resize move is not a migration
    CHECK(kv->check());

    // The moved leases grow and are released as any other.
    for (known& k : live) {
        const auto g = kv->extend(k.handle, 128);
        REQUIRE(g);
        CHECK(*g == growth::unchanged);
        touch(*kv, k.handle, k.id, 100, 128, false);
        k.used = 128;
    }
    CHECK(all_intact(*kv, live));
    for (const known& k : live)
        REQUIRE(kv->release(k.handle, 28));
    CHECK(kv->backing().counters().committed_bytes == 0);
    CHECK(kv->backing().counters().mapped_bytes == 0);
    CHECK(kv->check());
}

TEST_CASE("resize: beyond the copy budget nothing changes and the freeable bytes are named") {
    auto kv = make_kv(base_config());
    std::vector<known> live = holes_below(*kv);
    const auto before = regions(*kv, live);
    const auto stats_before = kv->stats();
    const std::size_t target = (3072 + 409) * bpt;
    const std::size_t budget = 4 * 100 * bpt - 1;  // one byte short of moving four leases

    const auto refused = kv->resize(target, budget);
    REQUIRE_FALSE(refused);
    CHECK(refused.error() == errc::no_memory);
    CHECK(refused.arena_bytes() == stats_before.arena_bytes);
    CHECK(refused.copied_bytes() == 0);
    // Three leases fit the budget: the general area can end at 3200, after lease 24.
    CHECK(refused.freeable_bytes() == (3687 - 3200) * bpt);
    CHECK(same(before, regions(*kv, live)));
    CHECK(all_intact(*kv, live));
    CHECK(kv->stats().arena_bytes == stats_before.arena_bytes);
    CHECK(kv->stats().resizes == 0);
    CHECK(kv->backing().counters().committed_bytes == stats_before.used_bytes);
    CHECK(kv->check());

    // With no budget, only the free tail (3584..3687) can go.
    const auto free_only = kv->resize(target, 0);
    CHECK(free_only.error() == errc::no_memory);
    CHECK(free_only.freeable_bytes() == (3687 - 3584) * bpt);
    CHECK(same(before, regions(*kv, live)));

    // What was named can be had, with the same budget.
    const auto taken = kv->resize(stats_before.arena_bytes - refused.freeable_bytes(), budget);
    REQUIRE(taken);
    CHECK(taken.copied_bytes() == 3 * 100 * bpt);
    CHECK(general_end(*kv) == 3200);
    CHECK(all_intact(*kv, live));
    CHECK(kv->check());
}

TEST_CASE("resize: a shrink below the live data is refused, whatever the budget") {
    auto kv = make_kv(base_config());
    std::vector<known> live;
    for (std::uint64_t id = 0; id < 28; ++id)
        live.push_back(admit(*kv, id, 127, 128));  // 3584 tokens reserved, 3556 used
    const auto before = regions(*kv, live);
    const std::size_t huge = std::size_t(1) << 40;

    const auto refused = kv->resize((2000 + 409) * bpt, huge);
    CHECK(refused.error() == errc::no_memory);
    CHECK(refused.freeable_bytes() == (3687 - 3584) * bpt);  // the free tail, nothing more
    CHECK(same(before, regions(*kv, live)));
    CHECK(all_intact(*kv, live));
    CHECK(kv->check());

    // Sizes that can never work: past the backing, or a general area under one max bucket.
    CHECK(kv->resize(std::size_t(slots + 1) * bpt).error() == errc::invalid_request);
    CHECK(kv->resize((409 + 255) * bpt, huge).error() == errc::invalid_request);
    CHECK(kv->resize(0).error() == errc::invalid_request);
    CHECK(kv->resize((409 + 256) * bpt, huge).error() == errc::no_memory);  // the floor itself
    CHECK(same(before, regions(*kv, live)));
    CHECK(kv->stats().rejected.invalid_request == 0);  // resize() refusals are not counted there
}

TEST_CASE("resize: the safety pool stays at the top and keeps its leases") {
    odma::config cfg = base_config(256, 0.25);
    auto kv = make_kv(cfg);
    CHECK(kv->safety_pool_tokens() == 1024);
    std::vector<known> live;
    // Fill the general area with largest-bucket leases, then one more goes to the pool.
    for (std::uint64_t id = 0; id < 13; ++id)
        live.push_back(admit(*kv, id, 200, 256));
    const auto pooled = *kv->region_of(live.back().handle);
    REQUIRE(pooled.in_safety_pool);
    CHECK(pooled.offset_tokens == slots - 1024);

    // Release the general leases but one, shrink hard: the pool lease does not move.
    for (std::uint64_t id = 1; id < 12; ++id)
        REQUIRE(kv->release(live[id].handle, 1));
    live.erase(live.begin() + 1, live.begin() + 12);
    const auto shrunk = kv->resize((1024 + 512) * bpt);
    REQUIRE(shrunk);
    CHECK(general_end(*kv) == 512);
    CHECK(kv->region_of(live.back().handle)->offset_tokens == pooled.offset_tokens);
    CHECK(kv->safety_pool_tokens() == 1024);
    CHECK(kv->stats().safety_pool_bytes == 1024 * bpt);
    CHECK(all_intact(*kv, live));
    CHECK(kv->check());

    // The general area ends at 512: one more largest-bucket lease fills it, and a smaller
    // request (which may not use the pool) finds no room.
    live.push_back(admit(*kv, 20, 200, 256));
    CHECK(kv->region_of(live.back().handle)->offset_tokens == 256);
    kv->predictor().tell(21, 4);
    CHECK(kv->admit({.id = 21, .prompt_tokens = 60, .max_new_tokens = 100}).error() ==
          errc::no_memory);
    REQUIRE(kv->resize(std::size_t(slots) * bpt));
    CHECK(all_intact(*kv, live));
    CHECK(kv->check());
}

TEST_CASE("resize: leases of several runs move run by run") {
    odma::config cfg = base_config(128, 0.0);
    cfg.max_runs = 3;
    auto kv = make_kv(cfg, 2);  // buckets 64 and 128
    // A, B, C at [0,64), [64,128), [128,192); A grows by a second run at [192,256); D follows.
    std::vector<known> live;
    for (std::uint64_t id = 0; id < 3; ++id)
        live.push_back(admit(*kv, id, 60, 64));
    auto g = kv->extend(live[0].handle, 100);
    REQUIRE(g);
    REQUIRE(*g == growth::appended);
    touch(*kv, live[0].handle, 0, 60, 100, false);
    live[0].used = 100;
    live.push_back(admit(*kv, 3, 50, 64));
    CHECK(kv->region_of(live[3].handle)->offset_tokens == 256);

    // Only B's hole below 192: A's second run and D cannot both move.
    REQUIRE(kv->release(live[1].handle, 0));
    live.erase(live.begin() + 1);
    const std::size_t huge = std::size_t(1) << 30;
    auto refused = kv->resize(192 * bpt, huge);
    CHECK(refused.error() == errc::no_memory);
    CHECK(refused.freeable_bytes() == (slots - 256) * bpt);  // D's run may move; A's may not
    CHECK(all_intact(*kv, live));

    // With C gone too, both fit: A's second run into [64,128), D into [128,192).
    REQUIRE(kv->release(live[1].handle, 0));
    live.erase(live.begin() + 1);
    const auto moved = kv->resize(192 * bpt, huge);
    REQUIRE(moved);
    CHECK(moved.copied_bytes() == (36 + 50) * bpt);  // A's tokens 64..99, D's 50
    const auto a = *kv->region_of(live[0].handle);
    CHECK(a.runs == 2);
    CHECK(a.offset_tokens == 0);
    std::vector<std::size_t> offsets;
    REQUIRE(kv->for_each_run(live[0].handle, 1,
                             [&](std::size_t offset, std::size_t) { offsets.push_back(offset); }));
    CHECK(offsets == std::vector<std::size_t>{kv->byte_offset(1, 0), kv->byte_offset(1, 64)});
    CHECK(kv->region_of(live[1].handle)->offset_tokens == 128);
    CHECK(all_intact(*kv, live));
    CHECK(kv->check());

    // The moved runs serve the lease as before.
    REQUIRE(kv->extend(live[0].handle, 128));
    touch(*kv, live[0].handle, 0, 100, 128, false);
    live[0].used = 128;
    CHECK(all_intact(*kv, live));
    CHECK(kv->check());
}

namespace {

/// host_vmm whose commit() and copy() throw, or whose commit() refuses, at the n-th call.
struct faulty_vmm {
    using pointer = std::byte*;
    odma::backing::host_vmm inner;
    long throw_at = -1;   // calls to commit() or copy() before the throw; -1: never
    long refuse_at = -1;  // commit() calls before one returns false; -1: never
    bool threw = false;

    std::size_t capacity() const noexcept { return inner.capacity(); }
    pointer address(std::size_t offset) const noexcept { return inner.address(offset); }
    std::size_t granule_size() const noexcept { return inner.granule_size(); }
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) {
        fault();
        inner.copy(dst, src, bytes);
    }
    bool commit(std::size_t offset, std::size_t bytes) {
        fault();
        if (refuse_at >= 0 && refuse_at-- == 0) return false;
        return inner.commit(offset, bytes);
    }
    void decommit(std::size_t offset, std::size_t bytes) noexcept { inner.decommit(offset, bytes); }
    void fault() {
        if (throw_at >= 0 && throw_at-- == 0) {
            threw = true;
            throw std::runtime_error("injected backing failure");
        }
    }
};
static_assert(odma::ResizableBacking<faulty_vmm>);

}  // namespace

TEST_CASE("resize: a throw or a refused commit while moving leaves every lease as it was") {
    using kv_t = odma::allocator<odma::predict::oracle, odma::bucket::fixed, faulty_vmm>;
    const odma::config cfg = base_config();
    long points = 0;
    for (const bool refuse : {false, true}) {
        for (long at = 0;; ++at) {
            CAPTURE(refuse);
            CAPTURE(at);
            kv_t kv(cfg, {}, odma::bucket::fixed::uniform(4, cfg.max_tokens),
                    faulty_vmm{odma::backing::host_vmm(std::size_t(slots) * bpt)});
            // Leases 0..27 of 128 tokens, holes at 0, 2, ..., 10; then 24..27 must move.
            std::vector<known> live;
            for (std::uint64_t id = 0; id < 28; ++id) {
                kv.predictor().tell(id, 28);
                auto l = kv.admit({.id = id, .prompt_tokens = 100, .max_new_tokens = 1000});
                REQUIRE(l);
                live.push_back({*l, id, 100});
                touch(kv, *l, id, 0, 100, false);
            }
            for (std::uint64_t id = 0; id <= 10; id += 2)
                REQUIRE(kv.release(live[id].handle, 0));
            std::erase_if(live, [](const known& k) { return k.id <= 10 && k.id % 2 == 0; });
            std::map<std::uint64_t, odma::region> before;
            for (const known& k : live)
                before[k.id] = *kv.region_of(k.handle);
            const auto committed = kv.backing().inner.counters().committed_bytes;
            const auto arena = kv.stats().arena_bytes;

            (refuse ? kv.backing().refuse_at : kv.backing().throw_at) = at;
            bool threw = false;
            odma::resize_result r = odma::resize_result::done(0, 0);
            try {
                r = kv.resize((3072 + 409) * bpt, std::size_t(1) << 20);
            } catch (const std::runtime_error&) {
                threw = true;
            }
            kv.backing().throw_at = kv.backing().refuse_at = -1;
            REQUIRE(kv.check());
            for (const known& k : live)
                CHECK(touch(kv, k.handle, k.id, 0, k.used, true));
            if (threw || !r) {
                if (!threw) CHECK(r.error() == errc::no_memory);
                std::map<std::uint64_t, odma::region> after;
                for (const known& k : live)
                    after[k.id] = *kv.region_of(k.handle);
                CHECK(same(before, after));
                CHECK(kv.stats().arena_bytes == arena);
                CHECK(kv.backing().inner.counters().committed_bytes == committed);
                ++points;
                continue;
            }
            CHECK(r.copied_bytes() == 4 * 100 * bpt);
            break;  // every fault point swept
        }
    }
    CHECK(points >= 3 * 4);  // each move commits (two planes) and copies (two planes)
    std::printf("  resize exception safety: %ld fault points swept\n", points);
}

TEST_CASE("resize through synchronized while other threads admit, extend and release") {
    // Workers read and write lease memory only inside locked(), so resizes may move their
    // leases at any time; one thread resizes between the floor and the whole backing.
    odma::config cfg = base_config(256, 0.1);
    cfg.max_runs = 2;
    odma::synchronized<vmm_kv> kv(cfg, odma::predict::oracle{},
                                  odma::bucket::fixed::uniform(4, 256),
                                  odma::backing::host_vmm(std::size_t(slots) * bpt));
    constexpr int workers = 3;
#if defined(__SANITIZE_THREAD__)
    constexpr int lifecycles = 150;
#else
    constexpr int lifecycles = 600;
#endif
    std::atomic<int> running{workers};
    std::atomic<int> resized{0}, refused_resizes{0}, moved{0};
    std::atomic<bool> broken{false};

    // Each worker keeps up to six requests going, so the arena fills and shrinks must move.
    auto worker = [&](int w) {
        std::mt19937 rng(77 + w);
        struct going {
            odma::lease lease;
            std::uint64_t id;
            std::uint32_t prompt, used, target;
        };
        std::vector<going> mine;
        int started = 0;
        while (started < lifecycles || !mine.empty()) {
            if (started < lifecycles && ((mine.size() < 6 && rng() % 3 == 0) || mine.empty())) {
                const std::uint64_t id = std::uint64_t(w + 1) << 32 | std::uint64_t(started++);
                const std::uint32_t prompt = 1 + rng() % 150, generated = 1 + rng() % 100;
                const std::uint32_t told = rng() % 2 ? generated : 4;
                auto l = kv.locked([&](vmm_kv& a) {
                    a.predictor().tell(id, told);
                    auto got = a.admit({.id = id, .prompt_tokens = prompt, .max_new_tokens = 250});
                    if (got)
                        touch(a, *got, id, 0, prompt, false);
                    else
                        a.predictor().observe({.id = id}, 0);
                    return got;
                });
                if (l)
                    mine.push_back(
                        {*l, id, prompt, prompt, std::min<std::uint32_t>(255, prompt + generated)});
                else if (l.error() != errc::no_memory)
                    broken = true;
                continue;
            }
            const std::size_t k = rng() % mine.size();
            going& g = mine[k];
            const std::uint32_t next = std::min(g.target, g.used + 16);
            const bool grew = next > g.used && kv.locked([&](vmm_kv& a) {
                if (!touch(a, g.lease, g.id, 0, g.used, true)) broken = true;
                if (!a.extend(g.lease, next)) return false;
                touch(a, g.lease, g.id, g.used, next, false);
                return true;
            });
            if (grew) {
                g.used = next;
                if (g.used < g.target) continue;
            }
            kv.locked([&](vmm_kv& a) {  // finished, or no room to grow: release
                if (!touch(a, g.lease, g.id, 0, g.used, true)) broken = true;
                if (!a.release(g.lease, g.used - g.prompt)) broken = true;
            });
            mine[k] = mine.back();
            mine.pop_back();
        }
        --running;
    };
    auto resizer = [&] {
        std::mt19937 rng(3);
        const std::uint32_t pool = kv.safety_pool_tokens();
        while (running > 0) {
            // Around what the leases occupy now, so that shrinks often have runs to move.
            const auto held = std::uint32_t(kv.stats().reserved_bytes / bpt);
            const std::uint32_t general =
                std::clamp<std::uint32_t>(held + rng() % 1024, 512, slots - pool) - 256;
            const std::size_t budget = rng() % 2 ? 0 : std::size_t(64) << 10;
            const auto r = kv.resize(std::size_t(general + pool) * bpt, budget);
            if (r) {
                ++resized;
                moved += r.copied_bytes() > 0;
            } else {
                ++refused_resizes;
                if (r.error() != errc::no_memory) broken = true;
            }
            if (!kv.check()) broken = true;
            std::this_thread::yield();
        }
    };

    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w)
        threads.emplace_back(worker, w);
    threads.emplace_back(resizer);
    for (auto& t : threads)
        t.join();

    std::printf("  threaded resize: %d resizes (%d moved leases), %d refused\n", resized.load(),
                moved.load(), refused_resizes.load());
    CHECK_FALSE(broken.load());
    CHECK(resized > 0);
    CHECK(kv.check());
    const auto s = kv.stats();
    CHECK(s.live_leases == 0);
    CHECK(s.free_bytes == s.arena_bytes);
    CHECK(kv.locked([](const vmm_kv& a) { return a.backing().counters().committed_bytes; }) == 0);
}
