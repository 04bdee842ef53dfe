// odma::allocator: admission sizing, growth, the safety pool, the error contract, stats,
// planes, committing backings and exception safety.
#include <odma/odma.hpp>

#include "support/test_backings.hpp"

#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <utility>
#include <vector>

namespace {

using odma::errc;
using odma::growth;
using odma::request;
using odma_test::scripted_predictor;

constexpr std::size_t bpt = 16;  // bytes per token
constexpr std::uint32_t max_tokens = 256;

// 1024 tokens: 768 general + 256 safety pool.
odma::config small_config(double safety = 0.25) {
    return {.bytes_per_token = bpt, .max_tokens = max_tokens, .safety_pool_fraction = safety};
}

using scripted_kv = odma::allocator<scripted_predictor, odma::bucket::fixed, odma::backing::host>;
using static_kv =
    odma::allocator<odma::predict::constant, odma::bucket::fixed, odma::backing::host>;

scripted_kv make_scripted(std::uint32_t predicted_new = 16, double safety = 0.25,
                          std::size_t tokens = 1024) {
    return scripted_kv(small_config(safety), scripted_predictor{.tokens = predicted_new},
                       odma::bucket::fixed::uniform(4, max_tokens),  // 64, 128, 192, 256
                       odma::backing::host(tokens * bpt));
}

request req(std::uint64_t id, std::uint32_t prompt, std::uint32_t max_new = 1000) {
    return {.id = id, .prompt_tokens = prompt, .max_new_tokens = max_new};
}

void fill(std::byte* p, std::size_t bytes, unsigned seed) {
    for (std::size_t i = 0; i < bytes; ++i)
        p[i] = std::byte((i * 31 + seed) & 0xff);
}
bool holds(const std::byte* p, std::size_t bytes, unsigned seed) {
    for (std::size_t i = 0; i < bytes; ++i)
        if (p[i] != std::byte((i * 31 + seed) & 0xff)) return false;
    return true;
}

}  // namespace

TEST_CASE("the quickstart flow works end to end") {
    using kv_allocator =
        odma::allocator<odma::predict::constant, odma::bucket::fixed, odma::backing::host>;
    odma::config cfg{.bytes_per_token = 57344, .max_tokens = 4096, .safety_pool_fraction = 0.10};
    kv_allocator kv{cfg, odma::predict::constant{}, odma::bucket::fixed::uniform(8, 4096),
                    odma::backing::host{256ull << 20}};
    const request r{.id = 7, .prompt_tokens = 120, .max_new_tokens = 1024, .prompt_text = "hi"};
    auto admitted = kv.admit(r);
    REQUIRE(admitted);
    odma::lease l = *admitted;
    std::byte* base = kv.data(l);
    CHECK(base != nullptr);
    auto g = kv.extend(l, 121);
    REQUIRE(g);
    CHECK(*g == growth::unchanged);  // constant reserved prompt + max_new_tokens up front
    // Bucket of 1144 tokens is 1536, but the request can never hold more than 1144.
    CHECK(kv.region_of(l)->capacity == 1144);
    CHECK(kv.release(l, 1));
    CHECK(kv.stats().admissions == 1);
    CHECK(kv.stats().releases == 1);
    CHECK(kv.check());
}

TEST_CASE("admission reserves the bucket of prompt + predicted tokens, capped by the request") {
    auto kv = make_scripted(16);
    auto a = kv.admit(req(1, 10));  // needs 26 -> bucket 64
    REQUIRE(a);
    CHECK(kv.region_of(*a)->capacity == 64);
    CHECK(kv.region_of(*a)->used == 10);
    auto b = kv.admit(req(2, 10, 20));  // needs 26, but the request can never exceed 30
    REQUIRE(b);
    CHECK(kv.region_of(*b)->capacity == 30);
    auto c = kv.admit(req(3, 100));  // needs 116 -> bucket 128
    REQUIRE(c);
    CHECK(kv.region_of(*c)->capacity == 128);

    static_kv st(small_config(), {}, odma::bucket::fixed::explicit_list({max_tokens}),
                 odma::backing::host(1024 * bpt));
    auto s = st.admit(req(4, 10, 50));  // static: prompt + max_new_tokens, exactly
    REQUIRE(s);
    CHECK(st.region_of(*s)->capacity == 60);
    auto big = st.admit(req(5, 10, 5000));  // clipped at max_tokens
    REQUIRE(big);
    CHECK(st.region_of(*big)->capacity == max_tokens);
    CHECK(kv.check());
    CHECK(st.check());
}

TEST_CASE("overflow_risk picks the reservation quantile") {
    struct spread_predictor {
        odma::prediction predict(const request&) const {
            return odma::prediction::from_quantiles({10, 20, 40, 60, 100, 130, 180, 200});
        }
        void observe(const request&, std::uint32_t) {}
    };
    using kv_t = odma::allocator<spread_predictor, odma::bucket::fixed, odma::backing::host>;
    auto capacity_at = [](double risk) {
        auto cfg = small_config();
        cfg.overflow_risk = risk;
        kv_t kv(cfg, {}, odma::bucket::fixed::explicit_list({16, 32, 64, 128, 256}),
                odma::backing::host(1024 * bpt));
        auto l = kv.admit(req(1, 8));
        REQUIRE(l);
        return kv.region_of(*l)->capacity;
    };
    CHECK(capacity_at(0.5) == 64);   // 8 + median 40 = 48 -> 64
    CHECK(capacity_at(0.1) == 128);  // 8 + q90 100 = 108 -> 128
    CHECK(capacity_at(0.0) == 256);  // 8 + q99.9 200 = 208 -> 256
    CHECK(capacity_at(0.75) == 32);  // 8 + q25 20 = 28 -> 32
}

TEST_CASE("extend: unchanged inside the reservation, in place into free space, else migrate") {
    auto kv = make_scripted(16);
    auto a = *kv.admit(req(1, 10));  // [0, 64)
    CHECK(*kv.extend(a, 64) == growth::unchanged);
    CHECK(*kv.extend(a, 30) == growth::unchanged);  // shrinking is allowed
    CHECK(kv.region_of(a)->used == 30);

    std::byte* before = kv.data(a);
    CHECK(*kv.extend(a, 65) == growth::in_place);  // free space follows a
    CHECK(kv.data(a).get() == before);
    CHECK(kv.region_of(a)->capacity == 128);  // grew to the bucket of 65 tokens
    CHECK(kv.stats().in_place_growths == 1);

    auto b = *kv.admit(req(2, 10));  // placed right after a: a can no longer grow in place
    CHECK(kv.region_of(b)->offset_tokens == 128);
    fill(kv.data(a), 128 * bpt, 7);
    CHECK(*kv.extend(a, 128) == growth::unchanged);
    CHECK(*kv.extend(a, 129) == growth::migrated);
    CHECK(kv.data(a).get() != before);
    CHECK(holds(kv.data(a), 128 * bpt, 7));  // the live tokens moved along
    CHECK(kv.region_of(a)->capacity == 192);
    CHECK(kv.stats().migrations == 1);
    CHECK(kv.stats().migrated_bytes == 128 * bpt);
    CHECK(kv.check());
}

TEST_CASE("in-place growth takes what room there is when the next bucket does not fit") {
    auto kv = make_scripted(16);
    auto a = *kv.admit(req(1, 10));        // [0, 64)
    auto gap = *kv.admit(req(2, 10, 22));  // [64, 96): its limit is 32 tokens
    auto b = *kv.admit(req(3, 10));        // [96, 160)
    REQUIRE(kv.region_of(gap)->capacity == 32);
    REQUIRE(kv.release(gap, 1));  // 32 free tokens after a
    CHECK(*kv.extend(a, 80) == growth::in_place);
    CHECK(kv.region_of(a)->capacity == 96);  // the bucket of 80 is 128; 96 is all there is
    CHECK(kv.region_of(b)->offset_tokens == 96);
    CHECK(kv.check());
}

TEST_CASE("a lease that cannot grow in place or in the general area moves to the safety pool") {
    auto kv = make_scripted(16);
    std::vector<odma::lease> fillers;
    auto a = *kv.admit(req(1, 10));
    for (int i = 0; i < 11; ++i)
        fillers.push_back(*kv.admit(req(10 + i, 10)));  // 12 x 64 = 768
    CHECK(kv.stats().free_bytes == 256 * bpt);          // only the pool is left
    fill(kv.data(a), 64 * bpt, 3);
    REQUIRE(kv.extend(a, 64));
    CHECK(*kv.extend(a, 65) == growth::migrated);
    const auto where = *kv.region_of(a);
    CHECK(where.in_safety_pool);
    CHECK(where.offset_tokens >= 768);
    CHECK(holds(kv.data(a), 64 * bpt, 3));
    CHECK(kv.stats().safety_pool_migrations == 1);
    CHECK(kv.stats().safety_pool_reserved_bytes == 128 * bpt);
    CHECK(kv.check());
}

TEST_CASE("extend without room fails with no_memory and leaves the lease intact") {
    auto kv = make_scripted(16, 0.0, 256);  // one max bucket, no pool
    auto a = *kv.admit(req(1, 10));         // [0, 64)
    auto b = *kv.admit(req(2, 100));        // [64, 192)
    auto c = *kv.admit(req(3, 10));         // [192, 256)
    fill(kv.data(a), 64 * bpt, 9);
    REQUIRE(kv.extend(a, 64));
    const auto before = *kv.region_of(a);
    auto g = kv.extend(a, 65);
    CHECK(g.error() == errc::no_memory);
    CHECK(kv.is_live(a));
    CHECK(kv.region_of(a)->capacity == before.capacity);
    CHECK(kv.region_of(a)->used == 64);
    CHECK(holds(kv.data(a), 64 * bpt, 9));
    CHECK(kv.stats().rejected.extend_no_memory == 1);
    REQUIRE(kv.release(b, 1));
    CHECK(*kv.extend(a, 65) == growth::in_place);  // room appeared
    (void)c;
    CHECK(kv.check());
}

TEST_CASE("the safety pool takes admissions only for largest-bucket requests") {
    auto kv = make_scripted(16);
    std::vector<odma::lease> fillers;
    for (int i = 0; i < 12; ++i)
        fillers.push_back(*kv.admit(req(10 + i, 10)));  // general full
    auto small = kv.admit(req(1, 10));
    CHECK(small.error() == errc::no_memory);  // a small bucket may not dip into the pool
    CHECK(kv.stats().rejected.admit_no_memory == 1);

    auto kv_big = make_scripted(1000);  // predicts long answers: the largest bucket
    std::vector<odma::lease> big;
    for (int i = 0; i < 3; ++i)
        big.push_back(*kv_big.admit(req(i, 10)));  // 3 x 256 = general
    auto into_pool = kv_big.admit(req(9, 10));
    REQUIRE(into_pool);
    CHECK(kv_big.region_of(*into_pool)->in_safety_pool);
    CHECK(kv_big.stats().safety_pool_admissions == 1);
    CHECK(kv_big.admit(req(10, 10)).error() == errc::no_memory);  // pool full too
    CHECK(kv.check());
    CHECK(kv_big.check());
}

TEST_CASE("invalid requests are refused with invalid_request") {
    auto kv = make_scripted();
    CHECK(kv.admit(req(1, 0)).error() == errc::invalid_request);           // no prompt tokens
    CHECK(kv.admit(req(1, 10, 0)).error() == errc::invalid_request);       // nothing to generate
    CHECK(kv.admit(req(1, max_tokens)).error() == errc::invalid_request);  // prompt fills max
    CHECK(kv.admit(req(1, 100000)).error() == errc::invalid_request);      // beyond the arena
    auto l = *kv.admit(req(2, 10));
    CHECK(kv.extend(l, 0).error() == errc::invalid_request);
    CHECK(kv.extend(l, max_tokens + 1).error() == errc::invalid_request);
    CHECK(kv.data(l, 1).error() == errc::invalid_request);  // plane out of range
    CHECK(kv.stats().rejected.invalid_request == 6);
    CHECK(kv.is_live(l));
    CHECK(kv.check());
}

TEST_CASE("stale, foreign, moved-from, empty and released leases are refused with invalid_lease") {
    auto kv = make_scripted();
    auto other = make_scripted();

    auto stale = *kv.admit(req(1, 10));
    const odma::lease copy = stale;
    REQUIRE(kv.release(stale, 5));
    CHECK(kv.release(stale, 5).error() == errc::invalid_lease);  // double release
    CHECK(kv.extend(copy, 20).error() == errc::invalid_lease);   // a copy is stale too
    CHECK(kv.data(copy).get() == nullptr);
    CHECK(kv.data(copy).error() == errc::invalid_lease);
    CHECK(kv.region_of(copy).error() == errc::invalid_lease);

    // The slot is reused by the next admission; the old handle must not reach it.
    auto reused = *kv.admit(req(2, 10));
    CHECK(kv.is_live(reused));
    CHECK_FALSE(kv.is_live(copy));
    CHECK(kv.release(copy, 1).error() == errc::invalid_lease);
    CHECK(kv.is_live(reused));

    auto foreign = *other.admit(req(3, 10));
    CHECK(kv.extend(foreign, 20).error() == errc::invalid_lease);
    CHECK(kv.release(foreign, 1).error() == errc::invalid_lease);
    CHECK(other.is_live(foreign));

    odma::lease moved_from = *kv.admit(req(4, 10));
    odma::lease moved_to = std::move(moved_from);
    CHECK(moved_from.empty());
    CHECK(kv.extend(moved_from, 20).error() == errc::invalid_lease);
    CHECK(kv.is_live(moved_to));

    const odma::lease empty;
    CHECK(kv.release(empty, 1).error() == errc::invalid_lease);
    CHECK(kv.abandon(empty).error() == errc::invalid_lease);

    CHECK(kv.stats().rejected.invalid_lease == 11);
    CHECK(kv.check());
    CHECK(other.check());
}

TEST_CASE("invalid configurations throw config_error naming the field") {
    auto field_of = [](odma::config cfg, std::size_t arena_bytes = 1024 * bpt,
                       std::uint32_t bucket_max = max_tokens) -> std::string {
        try {
            static_kv kv(cfg, {}, odma::bucket::fixed::uniform(4, bucket_max),
                         odma::backing::host(arena_bytes));
        } catch (const odma::config_error& e) {
            CHECK(std::string(e.what()).find(std::string(e.field())) != std::string::npos);
            return std::string(e.field());
        }
        return "no exception";
    };
    auto with = [](auto change) {
        auto c = small_config();
        change(c);
        return c;
    };
    CHECK(field_of(with([](auto& c) { c.bytes_per_token = 0; })) == "bytes_per_token");
    CHECK(field_of(with([](auto& c) { c.max_tokens = 0; })) == "max_tokens");
    CHECK(field_of(with([](auto& c) { c.safety_pool_fraction = 1.0; })) == "safety_pool_fraction");
    CHECK(field_of(with([](auto& c) { c.safety_pool_fraction = -0.1; })) == "safety_pool_fraction");
    CHECK(field_of(with([](auto& c) { c.safety_pool_fraction = std::nan(""); })) ==
          "safety_pool_fraction");
    CHECK(field_of(with([](auto& c) { c.overflow_risk = 1.0; })) == "overflow_risk");
    CHECK(field_of(with([](auto& c) { c.planes = 0; })) == "planes");
    CHECK(field_of(with([](auto& c) { c.planes = 3; })) == "planes");  // 16 bytes into 3
    CHECK(field_of(with([](auto& c) { c.max_runs = 0; })) == "max_runs");
    CHECK(field_of(with([](auto& c) { c.max_runs = odma::max_lease_runs + 1; })) == "max_runs");
    CHECK(field_of(small_config(), 100 * bpt) == "backing");  // smaller than one max bucket
    CHECK(field_of(small_config(0.9), 1024 * bpt) == "safety_pool_fraction");  // general < max
    CHECK(field_of(small_config(), 1024 * bpt, 128) == "max_tokens");          // policy disagrees
    CHECK(field_of(small_config()) == "no exception");
}

TEST_CASE("stats report occupancy, utilization and fragmentation") {
    auto kv = make_scripted(16, 0.25);
    const auto& s0 = kv.stats();
    CHECK(s0.arena_bytes == 1024 * bpt);
    CHECK(s0.safety_pool_bytes == 256 * bpt);
    CHECK(s0.external_fragmentation == 0.0);

    std::vector<odma::lease> ls;
    for (int i = 0; i < 12; ++i)
        ls.push_back(*kv.admit(req(i, 32)));  // 12 x 64, 32 used each
    auto s = kv.stats();
    CHECK(s.live_leases == 12);
    CHECK(s.reserved_bytes == 768 * bpt);
    CHECK(s.used_bytes == 12 * 32 * bpt);
    CHECK(s.utilization() == doctest::Approx(384.0 / 1024.0));
    CHECK(s.reserved_utilization() == doctest::Approx(0.5));

    // Free every other lease: 6 holes of 64 tokens, none adjacent.
    for (int i = 0; i < 12; i += 2)
        REQUIRE(kv.release(ls[i], 10));
    s = kv.stats();
    CHECK(s.largest_free_bytes == 64 * bpt);
    CHECK(s.external_fragmentation == doctest::Approx(1.0 - 1.0 / 6.0));
    CHECK(s.peak_live_leases == 12);
    CHECK(s.releases == 6);

    for (int i = 1; i < 12; i += 2)
        REQUIRE(kv.release(ls[i], 10));
    s = kv.stats();
    CHECK(s.external_fragmentation == 0.0);  // everything coalesced back
    CHECK(s.largest_free_bytes == 768 * bpt);
    CHECK(s.used_bytes == 0);
    CHECK(s.peak_used_bytes == 12 * 32 * bpt);
    CHECK(kv.check());
}

TEST_CASE("release feeds the true length back; abandon does not") {
    auto kv = make_scripted();
    auto a = *kv.admit(req(1, 10));
    auto b = *kv.admit(req(2, 10));
    REQUIRE(kv.release(a, 42));
    CHECK(kv.predictor().observed == 1);
    CHECK(kv.predictor().last_observed == 42);
    REQUIRE(kv.abandon(b));
    CHECK(kv.predictor().observed == 1);
    CHECK(kv.stats().live_leases == 0);
}

namespace {
// Records what the policies are taught, to compare a preempted run with an uninterrupted one.
struct recording_predictor {
    std::vector<std::pair<request, std::uint32_t>> seen;
    odma::prediction predict(const request&) const { return odma::prediction::exact(16); }
    void observe(const request& r, std::uint32_t actual) { seen.emplace_back(r, actual); }
};
struct recording_buckets {
    odma::bucket::fixed inner = odma::bucket::fixed::uniform(4, ::max_tokens);
    std::vector<std::uint32_t> seen;
    std::uint32_t capacity_for(std::uint32_t t) const { return inner.capacity_for(t); }
    std::uint32_t max_tokens() const { return inner.max_tokens(); }
    std::span<const std::uint32_t> boundaries() const { return inner.boundaries(); }
    void observe(std::uint32_t t) { seen.push_back(t); }
};
using recording_kv = odma::allocator<recording_predictor, recording_buckets, odma::backing::host>;
recording_kv make_recording() {
    return recording_kv(small_config(), recording_predictor{}, recording_buckets{},
                        odma::backing::host(1024 * bpt));
}
}  // namespace

TEST_CASE("resume: a preempted request teaches exactly what it would have taught unpreempted") {
    const request original{.id = 9, .prompt_tokens = 10, .max_new_tokens = 200, .tag = 3};

    auto straight = make_recording();
    auto a = *straight.admit(original);
    REQUIRE(straight.extend(a, 10 + 50));
    REQUIRE(straight.release(a, 50));

    auto preempted = make_recording();
    auto b = *preempted.admit(original);
    REQUIRE(preempted.extend(b, 10 + 30));
    REQUIRE(preempted.abandon(b));  // preempted after 30 tokens: nothing is taught
    CHECK(preempted.predictor().seen.empty());
    CHECK(preempted.bucket_policy().seen.empty());
    auto c = *preempted.resume(original, 30);
    // The resumed lease holds the prompt and the 30 tokens to prefill again, and reserves
    // for them plus the prediction.
    CHECK(preempted.region_of(c)->used == 40);
    CHECK(preempted.region_of(c)->capacity >= 40 + 16);
    REQUIRE(preempted.extend(c, 10 + 50));
    REQUIRE(preempted.release(c, 50));  // every token generated, before and after

    REQUIRE(preempted.predictor().seen.size() == 1);
    const auto& [taught, actual] = preempted.predictor().seen[0];
    CHECK(taught.id == original.id);
    CHECK(taught.prompt_tokens == original.prompt_tokens);
    CHECK(taught.max_new_tokens == original.max_new_tokens);
    CHECK(taught.tag == original.tag);
    CHECK(actual == straight.predictor().seen.at(0).second);
    CHECK(preempted.bucket_policy().seen == straight.bucket_policy().seen);
    CHECK(preempted.stats().resumptions == 1);
    CHECK(preempted.stats().admissions == 2);
    CHECK(preempted.check());
}

TEST_CASE("resume refuses requests with nothing left to generate or no room to resume") {
    auto kv = make_recording();
    const request r{.id = 1, .prompt_tokens = 10, .max_new_tokens = 20};
    CHECK(kv.resume(r, 20).error() == errc::invalid_request);   // all 20 already generated
    CHECK(kv.resume(r, 500).error() == errc::invalid_request);  // beyond max_new_tokens
    const request long_one{.id = 2, .prompt_tokens = 200, .max_new_tokens = 1000};
    CHECK(kv.resume(long_one, max_tokens - 200).error() == errc::invalid_request);  // no room
    CHECK(kv.stats().rejected.invalid_request == 3);
    CHECK(kv.stats().live_leases == 0);
    auto l = kv.resume(long_one, max_tokens - 201);
    REQUIRE(l);
    CHECK(kv.region_of(*l)->used == max_tokens - 1);
}

TEST_CASE("planes: a lease owns the same token range in every plane, and migrations copy all") {
    odma::config cfg = small_config();
    cfg.planes = 4;  // 4 bytes per token per plane
    scripted_kv kv(cfg, scripted_predictor{.tokens = 16},
                   odma::bucket::fixed::uniform(4, max_tokens), odma::backing::host(1024 * bpt));
    auto a = *kv.admit(req(1, 10));
    auto b = *kv.admit(req(2, 10));  // right after a in every plane
    const std::size_t plane_bytes = 1024 * 4;
    for (std::uint32_t p = 0; p < 4; ++p) {
        CHECK(kv.data(a, p).get() == kv.backing().address(p * plane_bytes));
        CHECK(kv.data(b, p).get() == kv.backing().address(p * plane_bytes + 64 * 4));
        fill(kv.data(a, p), 64 * 4, 100 + p);
    }
    REQUIRE(kv.extend(a, 64));
    CHECK(*kv.extend(a, 65) == growth::migrated);
    for (std::uint32_t p = 0; p < 4; ++p)
        CHECK(holds(kv.data(a, p), 64 * 4, 100 + p));
    CHECK(kv.stats().migrated_bytes == 64 * bpt);
    CHECK(kv.check());
}

namespace {
using committing_kv =
    odma::allocator<scripted_predictor, odma::bucket::fixed, odma_test::counting_commit_backing>;
// Two planes on a backing that counts every committed byte; predicted 16 new tokens.
committing_kv make_committing(std::uint32_t max_runs = 1) {
    odma::config cfg = small_config();
    cfg.planes = 2;
    cfg.max_runs = max_runs;
    return committing_kv(cfg, scripted_predictor{.tokens = 16},
                         odma::bucket::fixed::uniform(4, max_tokens),
                         odma_test::counting_commit_backing(1024 * bpt));
}
}  // namespace

TEST_CASE("a committing backing holds exactly the tokens leases use") {
    auto kv = make_committing();
    static_assert(odma::CommittingBacking<odma_test::counting_commit_backing>);
    auto a = *kv.admit(req(1, 10));
    auto b = *kv.admit(req(2, 20));
    CHECK(kv.backing().committed == 30 * bpt);  // prompts only, not the reservations
    REQUIRE(kv.extend(a, 50));
    CHECK(kv.backing().committed == 70 * bpt);
    REQUIRE(kv.extend(a, 100));  // migrates: commits the new place, decommits the old
    CHECK(kv.backing().committed == 120 * bpt);
    CHECK(kv.stats().used_bytes == 120 * bpt);
    REQUIRE(kv.release(b, 0));
    CHECK(kv.backing().committed == 100 * bpt);

    kv.backing().refuse_commits = true;
    CHECK(kv.admit(req(3, 10)).error() == errc::no_memory);
    CHECK(kv.extend(a, 110).error() == errc::no_memory);
    CHECK(kv.region_of(a)->used == 100);
    CHECK(kv.check());
    kv.backing().refuse_commits = false;
    REQUIRE(kv.release(a, 0));
    CHECK(kv.backing().committed == 0);
}

TEST_CASE("a throwing policy or backing leaves the allocator valid") {
    SUBCASE("predictor throws during admit") {
        auto kv = make_scripted();
        auto keep = *kv.admit(req(1, 10));
        kv.predictor().throw_in_predict = true;
        CHECK_THROWS_AS((void)kv.admit(req(2, 10)), std::runtime_error);
        CHECK(kv.check());
        CHECK(kv.stats().live_leases == 1);
        kv.predictor().throw_in_predict = false;
        CHECK(kv.admit(req(3, 10)));
        CHECK(kv.is_live(keep));
    }
    SUBCASE("predictor throws during release: the lease is still freed") {
        auto kv = make_scripted();
        auto l = *kv.admit(req(1, 10));
        kv.predictor().throw_in_observe = true;
        CHECK_THROWS_AS((void)kv.release(l, 5), std::runtime_error);
        CHECK_FALSE(kv.is_live(l));
        CHECK(kv.stats().live_leases == 0);
        CHECK(kv.check());
    }
    SUBCASE("backing copy throws during a migration: the lease stays where it was") {
        using kv_t = odma::allocator<scripted_predictor, odma::bucket::fixed,
                                     odma_test::throwing_copy_backing>;
        kv_t kv(small_config(), scripted_predictor{.tokens = 16},
                odma::bucket::fixed::uniform(4, max_tokens),
                odma_test::throwing_copy_backing(1024 * bpt));
        auto a = *kv.admit(req(1, 10));
        auto b = *kv.admit(req(2, 10));
        const auto before = *kv.region_of(a);
        fill(kv.data(a), 10 * bpt, 5);
        kv.backing().throw_on_copy = true;
        CHECK_THROWS_AS((void)kv.extend(a, 65), std::runtime_error);
        CHECK(kv.check());
        CHECK(kv.region_of(a)->offset_tokens == before.offset_tokens);
        CHECK(kv.region_of(a)->capacity == before.capacity);
        CHECK(holds(kv.data(a), 10 * bpt, 5));
        CHECK(kv.stats().reserved_bytes == 128 * bpt);  // the half-made copy was given back
        kv.backing().throw_on_copy = false;
        CHECK(*kv.extend(a, 65) == growth::migrated);
        (void)b;
        CHECK(kv.check());
    }
}

TEST_CASE("long random runs do not lose capacity to fragmentation") {
    auto kv = make_scripted(40);
    std::mt19937 rng(7);
    std::vector<odma::lease> live;
    for (int step = 0; step < 20000; ++step) {
        if (rng() % 2 && live.size() < 40) {
            if (auto l = kv.admit(req(step, 1 + rng() % 200))) live.push_back(*l);
        } else if (!live.empty()) {
            const std::size_t i = rng() % live.size();
            if (rng() % 3 == 0) {
                const auto used = kv.region_of(live[i])->used;
                (void)kv.extend(live[i],
                                std::min<std::uint32_t>(max_tokens, used + 1 + rng() % 50));
            } else {
                REQUIRE(kv.release(live[i], 1));
                live[i] = live.back();
                live.pop_back();
            }
        }
    }
    for (auto& l : live)
        REQUIRE(kv.release(l, 1));
    const auto& s = kv.stats();
    CHECK(s.free_bytes == s.arena_bytes);
    CHECK(s.largest_free_bytes == 768 * bpt);  // the general area is one extent again
    CHECK(s.external_fragmentation == 0.0);
    CHECK(kv.check());
}

// --- leases of several runs (config::max_runs > 1) ----------------------------------------

namespace {

scripted_kv make_runs(std::uint32_t max_runs, std::uint32_t predicted_new = 16) {
    odma::config cfg = small_config();
    cfg.max_runs = max_runs;
    return scripted_kv(cfg, scripted_predictor{.tokens = predicted_new},
                       odma::bucket::fixed::uniform(4, max_tokens),  // 64, 128, 192, 256
                       odma::backing::host(1024 * bpt));
}

// The lease's runs in plane 0 as (first token, tokens).
template <class Kv>
std::vector<std::pair<std::size_t, std::size_t>> runs_of(const Kv& kv, const odma::lease& l) {
    std::vector<std::pair<std::size_t, std::size_t>> out;
    REQUIRE(kv.for_each_run(l, 0, [&](std::size_t offset, std::size_t bytes) {
        out.emplace_back(offset / bpt, bytes / bpt);
    }));
    return out;
}

// Writes (or checks) a pattern over the lease's tokens [from, to), walking its runs.
template <class Kv>
bool pattern(Kv& kv, const odma::lease& l, std::uint32_t from, std::uint32_t to, unsigned seed,
             bool write) {
    std::uint32_t token = 0;
    bool ok = true;
    for (const auto& [first, count] : runs_of(kv, l)) {
        for (std::size_t i = 0; i < count; ++i, ++token) {
            if (token < from || token >= to) continue;
            std::byte* p = kv.backing().address((first + i) * bpt);
            for (std::size_t b = 0; b < bpt; ++b) {
                const auto v = std::byte((token * 7 + b + seed) & 0xff);
                if (write)
                    p[b] = v;
                else
                    ok = ok && p[b] == v;
            }
        }
    }
    return ok && token >= to;
}

}  // namespace

TEST_CASE("runs: a lease that cannot grow in place gets another run; nothing is copied") {
    auto kv = make_runs(3);
    auto a = *kv.admit(req(1, 10));  // [0, 64)
    auto b = *kv.admit(req(2, 10));  // [64, 128): A cannot grow in place
    pattern(kv, a, 0, 10, 1, true);
    auto g = kv.extend(a, 70);
    REQUIRE(g);
    CHECK(*g == growth::appended);
    CHECK(kv.region_of(a)->runs == 2);
    CHECK(kv.region_of(a)->capacity == 128);  // the bucket of 70: 64 more tokens, elsewhere
    const std::vector<std::pair<std::size_t, std::size_t>> want{{0, 64}, {128, 6}};
    CHECK(runs_of(kv, a) == want);
    CHECK(kv.stats().migrations == 0);
    CHECK(kv.stats().migrated_bytes == 0);
    CHECK(kv.stats().appended_runs == 1);
    CHECK(pattern(kv, a, 0, 10, 1, false));  // not moved
    pattern(kv, a, 10, 70, 1, true);
    CHECK(kv.check());

    // The last run grows in place while the space after it is free.
    REQUIRE(*kv.extend(a, 128) == growth::unchanged);
    auto c = *kv.admit(req(3, 10));  // [192, 256): blocks the second run
    REQUIRE(*kv.extend(a, 130) == growth::appended);
    CHECK(kv.region_of(a)->runs == 3);
    CHECK(kv.check());

    // At max_runs the lease migrates into one run again, its tokens copied run by run.
    REQUIRE(*kv.extend(a, 192) == growth::unchanged);  // fills the third run
    pattern(kv, a, 70, 192, 1, true);
    const auto third = runs_of(kv, a).back();
    if (third.first + third.second < 1024 - 256) {  // room after it: it would grow in place
        auto d = *kv.admit(req(4, 10));
        (void)d;
    }
    const auto grown = kv.extend(a, 200);
    REQUIRE(grown);
    if (*grown == growth::migrated) {
        CHECK(kv.region_of(a)->runs == 1);
        CHECK(kv.stats().migrated_bytes == 192 * bpt);
    }
    CHECK(pattern(kv, a, 0, 192, 1, false));  // every token where it was, or copied intact
    CHECK(kv.check());
    for (auto* l : {&b, &c})
        REQUIRE(kv.release(*l, 0));
    REQUIRE(kv.release(a, 190));
    CHECK(kv.check());
}

TEST_CASE("runs: at max_runs a lease is compacted into one run, contents intact") {
    auto kv = make_runs(2);
    auto a = *kv.admit(req(1, 10));  // [0, 64)
    auto b = *kv.admit(req(2, 10));  // [64, 128)
    REQUIRE(*kv.extend(a, 64) == growth::unchanged);
    pattern(kv, a, 0, 64, 5, true);
    REQUIRE(*kv.extend(a, 65) == growth::appended);  // second run: 64 more tokens
    pattern(kv, a, 64, 65, 5, true);
    auto c = *kv.admit(req(3, 10));  // right after the second run: it cannot grow in place
    REQUIRE(*kv.extend(a, 128) == growth::unchanged);
    pattern(kv, a, 65, 128, 5, true);
    const auto g = kv.extend(a, 129);  // two runs already: one new run of the bucket of 129
    REQUIRE(g);
    CHECK(*g == growth::migrated);
    CHECK(kv.region_of(a)->runs == 1);
    CHECK(runs_of(kv, a).size() == 1);
    CHECK(pattern(kv, a, 0, 128, 5, false));
    CHECK(kv.stats().migrated_bytes == 128 * bpt);
    CHECK(kv.check());
    for (auto* l : {&a, &b, &c})
        REQUIRE(kv.release(*l, 0));
    CHECK(kv.stats().free_bytes == kv.stats().arena_bytes);
}

TEST_CASE("runs: under pressure an admission starts smaller and grows by runs") {
    // 768 general tokens; predicted 200 new tokens: a request wants the 256 bucket.
    auto kv = make_runs(4, 200);
    auto a = *kv.admit(req(1, 10));  // [0, 256)
    auto b = *kv.admit(req(2, 10));  // [256, 512)
    auto c = *kv.admit(req(3, 10));  // [512, 768): the general area is full
    REQUIRE(kv.release(b, 0));       // 256 free again ...
    auto d = *kv.admit(req(4, 10));  // ... taken whole
    REQUIRE(kv.release(d, 0));
    REQUIRE(*kv.extend(a, 250) == growth::unchanged);
    auto e = *kv.admit({.id = 5, .prompt_tokens = 100, .max_new_tokens = 150});  // [256, 512)
    REQUIRE(kv.release(e, 0));
    auto f = *kv.admit({.id = 6, .prompt_tokens = 200, .max_new_tokens = 50});  // [256, 506)
    (void)f;
    // 6 tokens free in the general area: a 5-token prompt still gets in, with a small first
    // run, where a strict allocator would refuse (only largest-bucket requests may use the pool,
    // and this one, limited to 105 tokens, asks for the 128 bucket).
    const auto small = kv.admit(req(7, 5, 100));
    REQUIRE(small);
    CHECK(kv.region_of(*small)->capacity == 6);
    CHECK(kv.region_of(*small)->runs == 1);
    const auto bigger = kv.extend(*small, 40);  // grows by a run, here in the safety pool
    REQUIRE(bigger);
    CHECK(*bigger == growth::appended);
    CHECK(kv.region_of(*small)->runs == 2);
    CHECK(kv.check());

    auto strict = make_runs(1, 200);
    auto s1 = *strict.admit(req(1, 10));
    auto s2 = *strict.admit(req(2, 10));
    auto s3 = *strict.admit(req(3, 10));
    (void)s1, (void)s2, (void)s3;
    CHECK(strict.admit(req(4, 5, 100)).error() == errc::no_memory);
    (void)c;
}

TEST_CASE("runs: a growth that finds no room anywhere leaves the lease intact") {
    auto kv = make_runs(3);
    std::vector<odma::lease> all;
    while (auto l = kv.admit(req(all.size() + 1, 60))) {
        pattern(kv, *l, 0, 60, unsigned(all.size()), true);
        all.push_back(*l);
    }
    for (std::size_t i = 0; i < all.size(); ++i) {
        const auto before = kv.region_of(all[i]);
        const auto g = kv.extend(all[i], max_tokens);
        if (g) continue;  // the pool had room for this one
        CHECK(g.error() == errc::no_memory);
        const auto after = kv.region_of(all[i]);
        CHECK(after->capacity == before->capacity);
        CHECK(after->runs == before->runs);
        CHECK(after->used == 60);
        CHECK(pattern(kv, all[i], 0, 60, unsigned(i), false));
    }
    CHECK(kv.check());
}

TEST_CASE("runs: a committing backing commits exactly the tokens held, run by run") {
    auto kv = make_committing(3);
    auto a = *kv.admit(req(1, 10));
    auto b = *kv.admit(req(2, 10));
    REQUIRE(*kv.extend(a, 70) == growth::appended);
    CHECK(kv.backing().committed == (70 + 10) * bpt);
    // The next run's commit fails part-way (second plane): nothing of it stays committed.
    auto c = *kv.admit(req(3, 10));  // after A's second run
    REQUIRE(*kv.extend(a, 128) == growth::unchanged);
    const std::size_t before = kv.backing().committed;
    kv.backing().refuse_after_calls = kv.backing().commit_calls + 1;
    CHECK(kv.extend(a, 140).error() == errc::no_memory);
    CHECK(kv.backing().committed == before);
    CHECK(kv.region_of(a)->runs == 2);
    CHECK(kv.check());
    kv.backing().refuse_after_calls = std::numeric_limits<std::size_t>::max();
    REQUIRE(*kv.extend(a, 140) == growth::appended);
    CHECK(kv.backing().committed == (140 + 10 + 10) * bpt);
    for (auto* l : {&a, &b, &c})
        REQUIRE(kv.release(*l, 0));
    CHECK(kv.backing().committed == 0);
}
