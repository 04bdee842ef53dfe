// odma::synchronized: the allocator's calls through one mutex, and a multi-threaded stress
// test that the tsan preset runs under ThreadSanitizer.
#include <odma/odma.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

namespace {

using odma::errc;
using odma::growth;
using kv_t = odma::allocator<odma::predict::oracle, odma::bucket::fixed, odma::backing::host>;
using shared_kv = odma::synchronized<kv_t>;

constexpr std::size_t bpt = 16;
constexpr std::uint32_t max_tokens = 512;

odma::config small_config() {
    return {.bytes_per_token = bpt, .max_tokens = max_tokens, .safety_pool_fraction = 0.2};
}

std::byte pattern(std::uint64_t id, std::size_t i) {
    return std::byte((id * 29 + i * 3) & 0xff);
}

}  // namespace

TEST_CASE("synchronized forwards every call to the allocator it wraps") {
    shared_kv kv(small_config(), odma::predict::oracle{},
                 odma::bucket::fixed::uniform(8, max_tokens), odma::backing::host(4096 * bpt));
    CHECK(kv.config().bytes_per_token == bpt);
    CHECK(kv.capacity_tokens() == 4096);
    CHECK(kv.safety_pool_tokens() == 819);
    CHECK(kv.byte_offset(0, 10) == 10 * bpt);

    kv.locked([](kv_t& a) { a.predictor().tell(1, 40); });
    auto l = kv.admit({.id = 1, .prompt_tokens = 20, .max_new_tokens = 400});
    REQUIRE(l);
    CHECK(kv.is_live(*l));
    CHECK(kv.region_of(*l)->capacity == 64);  // 20 + 40 told -> bucket 64
    std::byte* p = kv.data(*l);
    REQUIRE(p != nullptr);
    p[0] = std::byte{42};
    CHECK(*kv.extend(*l, 64) == growth::unchanged);
    CHECK(*kv.extend(*l, 65) == growth::in_place);
    CHECK(kv.data(*l).get()[0] == std::byte{42});

    int seen = 0;
    kv.for_each_live([&](const odma::lease& each, const odma::region& r) {
        CHECK(each == *l);
        CHECK(r.used == 65);
        ++seen;
    });
    CHECK(seen == 1);

    const odma::stats snapshot = kv.stats();  // a copy, not a reference into the allocator
    CHECK(snapshot.live_leases == 1);
    CHECK(kv.check());
    CHECK(kv.locked([](const kv_t& a) { return a.predictor().pending(); }) == 1);

    REQUIRE(kv.release(*l, 45));
    CHECK(kv.release(*l, 45).error() == errc::invalid_lease);
    CHECK(kv.abandon(*l).error() == errc::invalid_lease);
    CHECK(kv.data(*l).error() == errc::invalid_lease);
    CHECK(snapshot.live_leases == 1);
    CHECK(kv.stats().live_leases == 0);
    CHECK(kv.locked([](const kv_t& a) { return a.predictor().pending(); }) == 0);
}

TEST_CASE("synchronized: threads admitting, growing and freeing at once keep the arena whole") {
    // A small arena, so threads meet full memory, in-place growth and migrations all the time.
    shared_kv kv(small_config(), odma::predict::oracle{},
                 odma::bucket::fixed::geometric(16, max_tokens), odma::backing::host(1200 * bpt));
    constexpr int workers = 4;
    constexpr int lifecycles = 1500;  // per worker
    std::atomic<int> running{workers};
    std::atomic<std::uint64_t> admitted{0}, released{0}, migrated{0}, refused{0};

    auto worker = [&](int w) {
        std::mt19937 rng(1000 + w);
        for (int i = 0; i < lifecycles; ++i) {
            const std::uint64_t id = std::uint64_t(w) << 32 | std::uint64_t(i);
            const std::uint32_t prompt = 1 + rng() % 200;
            const std::uint32_t generated = 1 + rng() % 250;
            kv.locked([&](kv_t& a) { a.predictor().tell(id, rng() % 2 ? generated : 8); });
            auto l = kv.admit({.id = id, .prompt_tokens = prompt, .max_new_tokens = 400});
            if (!l) {
                CHECK(l.error() == errc::no_memory);
                kv.locked([&](kv_t& a) { a.predictor().observe({.id = id}, 0); });
                std::this_thread::yield();
                continue;
            }
            ++admitted;
            std::byte* p = kv.data(*l);
            for (std::size_t b = 0; b < prompt * bpt; ++b)
                p[b] = pattern(id, b);
            std::uint32_t used = prompt;
            const std::uint32_t target = std::min(max_tokens, prompt + generated);
            while (used < target) {
                const std::uint32_t next = std::min(target, used + 16);
                auto g = kv.extend(*l, next);
                if (!g) {  // full: give up on this request, like a preemption
                    CHECK(g.error() == errc::no_memory);
                    break;
                }
                if (*g == growth::migrated) ++migrated;
                p = kv.data(*l);  // after a migration the region moved
                for (std::size_t b = used * bpt; b < next * bpt; ++b)
                    p[b] = pattern(id, b);
                used = next;
            }
            bool intact = true;
            for (std::size_t b = 0; b < used * bpt; ++b)
                intact = intact && p[b] == pattern(id, b);
            CHECK(intact);
            CHECK((i % 5 == 0 ? kv.abandon(*l) : kv.release(*l, used - prompt)));
            if (i % 5 == 0) kv.locked([&](kv_t& a) { a.predictor().observe({.id = id}, 0); });
            ++released;
            if (kv.release(*l, 1).error() == errc::invalid_lease) ++refused;  // stale handle
        }
        --running;
    };
    // An observer reads stats and walks the invariants while the workers run.
    auto observer = [&] {
        int checks = 0;
        while (running.load() > 0) {
            CHECK(kv.check());
            const auto s = kv.stats();
            CHECK(s.reserved_bytes + s.free_bytes == s.arena_bytes);
            std::size_t live = 0;
            kv.for_each_live([&](const odma::lease&, const odma::region&) { ++live; });
            CHECK(live <= workers);
            ++checks;
            std::this_thread::yield();
        }
        CHECK(checks > 0);
    };

    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w)
        threads.emplace_back(worker, w);
    threads.emplace_back(observer);
    for (auto& t : threads)
        t.join();

    const auto s = kv.stats();
    std::printf(
        "  synchronized stress: %llu admitted, %llu migrations, %llu stale handles refused\n",
        static_cast<unsigned long long>(admitted.load()),
        static_cast<unsigned long long>(migrated.load()),
        static_cast<unsigned long long>(refused.load()));
    CHECK(admitted.load() > workers * lifecycles / 2);
    CHECK(migrated.load() > 0);
    CHECK(refused.load() == released.load());
    CHECK(s.admissions == admitted.load());
    CHECK(s.releases == released.load());
    CHECK(s.live_leases == 0);
    CHECK(s.free_bytes == s.arena_bytes);
    CHECK(kv.locked([](const kv_t& a) { return a.predictor().pending(); }) == 0);
    CHECK(kv.check());
}
