// Property test: random admit / extend / release / bad-handle operations against a reference
// model, with check() after every operation.
//
// The model predicts every outcome from first principles: the capacity an admission must get,
// whether a growth is unchanged / in place / migrated, and when no_memory is allowed (only if
// no free extent is large enough, computed from the live regions, not from the allocator's
// heaps). Each lease's tokens hold a byte pattern, so overlap or a bad migration copy shows up
// as corrupted data.
#include <odma/odma.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace {

using odma::errc;
using odma::growth;

struct scenario {
    const char* name;
    odma::bucket::fixed buckets;
    std::uint32_t planes;
    double safety;
    bool oracle;  // oracle predictor with random lengths, else constant
};

std::byte pattern(std::uint64_t id, std::size_t i) {
    return std::byte((id * 131 + i * 7 + (i >> 8)) & 0xff);
}

template <class Predictor>
std::size_t run_scenario(const scenario& sc, std::uint32_t seed, int operations) {
    constexpr std::size_t bpt = 8;
    constexpr std::uint32_t max_tokens = 512;
    constexpr std::uint32_t arena_tokens = 4096;
    using kv_t = odma::allocator<Predictor, odma::bucket::fixed, odma::backing::host>;
    const odma::config cfg{.bytes_per_token = bpt,
                           .max_tokens = max_tokens,
                           .safety_pool_fraction = sc.safety,
                           .overflow_risk = 0.05,
                           .planes = sc.planes};
    kv_t kv(cfg, Predictor{}, sc.buckets, odma::backing::host(arena_tokens * bpt));
    kv_t other(cfg, Predictor{}, sc.buckets, odma::backing::host(arena_tokens * bpt));
    const auto foreign = *other.admit({.id = 1, .prompt_tokens = 4, .max_new_tokens = 4});

    const std::uint32_t pool_begin = kv.capacity_tokens() - kv.safety_pool_tokens();
    const std::size_t plane_token_bytes = cfg.bytes_per_plane_token();

    struct model_lease {
        odma::lease handle;
        std::uint64_t id;
        std::uint32_t prompt, max_new, used, capacity;
    };
    std::vector<model_lease> live;
    std::vector<odma::lease> stale;
    std::mt19937_64 rng(seed);
    auto uniform = [&](std::uint64_t lo, std::uint64_t hi) { return lo + rng() % (hi - lo + 1); };

    auto limit_of = [&](const model_lease& m) {
        return std::min(max_tokens, m.prompt + m.max_new);
    };
    auto bucket_of = [&](std::uint32_t t) {
        return std::clamp(sc.buckets.capacity_for(t), t, max_tokens);
    };
    auto write_tokens = [&](const model_lease& m, std::uint32_t from, std::uint32_t to) {
        for (std::uint32_t p = 0; p < cfg.planes; ++p) {
            std::byte* base = kv.data(m.handle, p);
            for (std::size_t i = from * plane_token_bytes; i < to * plane_token_bytes; ++i)
                base[i] = pattern(m.id * 8 + p, i);
        }
    };
    auto intact = [&](const model_lease& m) {
        for (std::uint32_t p = 0; p < cfg.planes; ++p) {
            const std::byte* base = kv.data(m.handle, p);
            for (std::size_t i = 0; i < m.used * plane_token_bytes; ++i)
                if (base[i] != pattern(m.id * 8 + p, i)) return false;
        }
        return true;
    };
    // Largest free extent of [begin, end), from the live regions alone.
    auto largest_free = [&](std::uint32_t begin, std::uint32_t end) {
        std::vector<std::pair<std::uint32_t, std::uint32_t>> used;
        for (const auto& m : live) {
            const auto r = *kv.region_of(m.handle);
            if (r.offset_tokens >= begin && r.offset_tokens < end)
                used.emplace_back(std::uint32_t(r.offset_tokens), r.capacity);
        }
        std::sort(used.begin(), used.end());
        std::uint32_t best = 0, cursor = begin;
        for (auto [off, len] : used) {
            best = std::max(best, off - cursor);
            cursor = off + len;
        }
        return std::max(best, end - cursor);
    };
    auto room_after = [&](const odma::region& r) {
        const std::uint32_t end = r.offset_tokens + r.capacity;
        std::uint32_t next = r.in_safety_pool ? kv.capacity_tokens() : pool_begin;
        for (const auto& m : live) {
            const auto o = kv.region_of(m.handle)->offset_tokens;
            if (o >= end && o < next) next = std::uint32_t(o);
        }
        return next - end;
    };
    auto expect_invalid_lease = [&](const odma::lease& l) {
        CHECK_FALSE(kv.is_live(l));
        CHECK(kv.extend(l, 5).error() == errc::invalid_lease);
        CHECK(kv.data(l).error() == errc::invalid_lease);
        CHECK(kv.region_of(l).error() == errc::invalid_lease);
        CHECK(kv.release(l, 1).error() == errc::invalid_lease);
    };

    std::uint64_t next_id = 1;
    std::size_t executed = 0;
    struct {
        int admitted = 0, pool_admits = 0, admit_full = 0, unchanged = 0, in_place = 0,
            migrated = 0, to_pool = 0, extend_full = 0;
    } seen;
    for (int step = 0; step < operations; ++step) {
        const auto op = uniform(0, 99);
        if (op < 40) {  // admit
            model_lease m{
                {}, next_id++, std::uint32_t(uniform(1, 300)), std::uint32_t(uniform(1, 600)),
                0,  0};
            if (uniform(0, 49) == 0) m.prompt = 0;
            if (uniform(0, 49) == 0) m.max_new = 0;
            if (uniform(0, 49) == 0) m.prompt = max_tokens + std::uint32_t(uniform(0, 5));
            std::uint32_t predicted = m.max_new;
            if constexpr (std::is_same_v<Predictor, odma::predict::oracle>) {
                predicted = std::uint32_t(uniform(1, 700));
                kv.predictor().tell(m.id, predicted);
            }
            const odma::request r{
                .id = m.id, .prompt_tokens = m.prompt, .max_new_tokens = m.max_new};
            const bool valid = m.prompt > 0 && m.max_new > 0 && m.prompt < max_tokens;
            const std::uint32_t limit = valid ? limit_of(m) : 0;
            const std::uint32_t need =
                valid ? std::min(limit, m.prompt + std::clamp(predicted, 1u, m.max_new)) : 0;
            const std::uint32_t bucket = valid ? bucket_of(need) : 0;
            const std::uint32_t expected_cap = std::max(need, std::min(bucket, limit));
            const bool general_fits = valid && largest_free(0, pool_begin) >= expected_cap;
            const bool pool_fits = valid && bucket == max_tokens &&
                                   largest_free(pool_begin, kv.capacity_tokens()) >= expected_cap;
            auto got = kv.admit(r);
            if (!valid) {
                REQUIRE(got.error() == errc::invalid_request);
            } else if (!general_fits && !pool_fits) {
                REQUIRE(got.error() == errc::no_memory);
                ++seen.admit_full;
            } else {
                REQUIRE(got.has_value());
                ++seen.admitted;
                seen.pool_admits += !general_fits;
                m.handle = *got;
                const auto reg = *kv.region_of(m.handle);
                REQUIRE(reg.capacity == expected_cap);
                REQUIRE(reg.in_safety_pool == !general_fits);
                m.used = m.prompt;
                m.capacity = expected_cap;
                write_tokens(m, 0, m.used);
                live.push_back(m);
            }
            if constexpr (std::is_same_v<Predictor, odma::predict::oracle>)
                if (!got) kv.predictor().observe(r, 0);  // forget the told length
        } else if (op < 70 && !live.empty()) {           // extend
            auto& m = live[uniform(0, live.size() - 1)];
            std::uint32_t total =
                std::min<std::uint32_t>(m.used + std::uint32_t(uniform(1, 96)), max_tokens);
            if (uniform(0, 19) == 0) total = std::uint32_t(uniform(1, m.used));  // shrink
            if (uniform(0, 49) == 0) total = uniform(0, 1) ? 0 : max_tokens + 1;
            // Everything the model needs is measured before the call changes the arena.
            const auto before = *kv.region_of(m.handle);
            const std::uint32_t room = room_after(before);
            const std::uint32_t general_free = largest_free(0, pool_begin);
            const std::uint32_t pool_free = largest_free(pool_begin, kv.capacity_tokens());
            auto g = kv.extend(m.handle, total);
            if (total == 0 || total > max_tokens) {
                REQUIRE(g.error() == errc::invalid_request);
            } else if (total <= m.capacity) {
                REQUIRE(*g == growth::unchanged);
                ++seen.unchanged;
            } else {
                const std::uint32_t target =
                    std::max(total, std::min(bucket_of(total), limit_of(m)));
                if (m.capacity + room >= total) {
                    REQUIRE(*g == growth::in_place);
                    ++seen.in_place;
                    REQUIRE(kv.region_of(m.handle)->offset_tokens == before.offset_tokens);
                    REQUIRE(kv.region_of(m.handle)->capacity ==
                            std::min(target, m.capacity + room));
                } else if (general_free >= total || pool_free >= total) {
                    // The whole target where an area has it (the general area first), else
                    // the largest extent that holds the tokens (the general area first).
                    const bool whole = general_free >= target || pool_free >= target;
                    const bool to_pool = whole ? general_free < target : general_free < total;
                    REQUIRE(*g == growth::migrated);
                    ++seen.migrated;
                    seen.to_pool += to_pool;
                    REQUIRE(kv.region_of(m.handle)->capacity == (whole     ? target
                                                                 : to_pool ? pool_free
                                                                           : general_free));
                    REQUIRE(kv.region_of(m.handle)->in_safety_pool == to_pool);
                } else {
                    REQUIRE(g.error() == errc::no_memory);
                    ++seen.extend_full;
                    REQUIRE(kv.region_of(m.handle)->offset_tokens == before.offset_tokens);
                }
            }
            REQUIRE(intact(m));  // the old tokens survived whatever happened
            if (g) {
                const auto reg = *kv.region_of(m.handle);
                if (total > m.used) {
                    const auto old_used = m.used;
                    m.used = total;
                    write_tokens(m, old_used, total);
                } else {
                    m.used = total;
                }
                m.capacity = reg.capacity;
                REQUIRE(reg.used == m.used);
            }
        } else if (op < 92 && !live.empty()) {  // release or abandon
            const std::size_t i = uniform(0, live.size() - 1);
            REQUIRE(intact(live[i]));
            const odma::lease handle = live[i].handle;
            if (uniform(0, 3) == 0)
                REQUIRE(kv.abandon(handle));
            else
                REQUIRE(kv.release(handle, live[i].used - live[i].prompt));
            stale.push_back(handle);
            live[i] = live.back();
            live.pop_back();
        } else {  // a bad handle of every kind
            switch (uniform(0, 3)) {
                case 0:
                    if (!stale.empty()) expect_invalid_lease(stale[uniform(0, stale.size() - 1)]);
                    break;
                case 1:
                    expect_invalid_lease(foreign);
                    break;
                case 2:
                    expect_invalid_lease(odma::lease{});
                    break;
                default:
                    if (!live.empty()) {
                        odma::lease copy = live[uniform(0, live.size() - 1)].handle;
                        odma::lease taken = std::move(copy);
                        expect_invalid_lease(copy);  // moved-from
                        REQUIRE(kv.is_live(taken));
                    }
            }
        }
        ++executed;
        REQUIRE(kv.check());
        if (step % 1000 == 0)
            for (const auto& m : live)
                REQUIRE(intact(m));
    }
    // Every outcome the model distinguishes really happened, so no branch passed vacuously.
    std::printf(
        "  %-34s admitted %d (pool %d), admit no_memory %d; extend unchanged %d, "
        "in place %d, migrated %d (to pool %d), no_memory %d\n",
        sc.name, seen.admitted, seen.pool_admits, seen.admit_full, seen.unchanged, seen.in_place,
        seen.migrated, seen.to_pool, seen.extend_full);
    CHECK(seen.admitted > 0);
    CHECK(seen.admit_full > 0);
    CHECK(seen.unchanged > 0);
    CHECK(seen.in_place > 0);
    CHECK(seen.migrated > 0);
    CHECK(seen.extend_full > 0);
    if (sc.safety > 0) CHECK(seen.to_pool > 0);
    if (kv.safety_pool_tokens() >= max_tokens) CHECK(seen.pool_admits > 0);
    CHECK(kv.stats().admissions == std::uint64_t(seen.admitted));
    CHECK(kv.stats().migrations == std::uint64_t(seen.migrated));
    CHECK(kv.stats().in_place_growths == std::uint64_t(seen.in_place));
    // The allocator's own counters agree with the model.
    std::uint64_t used = 0;
    for (const auto& m : live)
        used += m.used;
    CHECK(kv.stats().live_leases == live.size());
    CHECK(kv.stats().used_bytes == used * bpt);
    for (const auto& m : live)
        REQUIRE(kv.release(m.handle, 0));
    CHECK(kv.stats().free_bytes == kv.stats().arena_bytes);
    CHECK(kv.check());
    CHECK(other.check());
    return executed;
}

}  // namespace

TEST_CASE("property: random operations keep every invariant and match the reference model") {
    constexpr int operations = 30000;  // per scenario; 4 scenarios = 120,000 operations
    const scenario scenarios[] = {
        {"constant+uniform(8)", odma::bucket::fixed::uniform(8, 512), 1, 0.15, false},
        {"constant+powers_of_two, 2 planes", odma::bucket::fixed::powers_of_two(16, 512), 2, 0.20,
         false},
        {"oracle+geometric, no pool", odma::bucket::fixed::geometric(8, 512), 1, 0.0, true},
        {"oracle+uniform(4), 4 planes", odma::bucket::fixed::uniform(4, 512), 4, 0.25, true},
    };
    std::size_t total = 0;
    const auto start = std::chrono::steady_clock::now();
    std::uint32_t seed = 2026;
    for (const auto& sc : scenarios) {
        INFO("scenario: " << std::string(sc.name));
        total += sc.oracle ? run_scenario<odma::predict::oracle>(sc, seed++, operations)
                           : run_scenario<odma::predict::constant>(sc, seed++, operations);
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(total >= 100000);
    std::printf("property test: %zu operations (each followed by check()) in %.2f s = %.0f ops/s\n",
                total, seconds, double(total) / seconds);
}
