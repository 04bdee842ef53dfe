// Exception safety of odma::allocator, path by path.
//
// The allocator promises (allocator.hpp): whatever a policy or the backing throws, the
// allocator stays valid, and a lease that was live stays live at its old size and contents.
// admit() and extend() give the strong guarantee (nothing changed); release() and abandon()
// free the lease before any policy runs, so a throw there still frees it.
//
// Rather than one test per path, a fault-injection sweep: every call the allocator makes into
// a policy or the backing (predict, predictor observe, capacity_for, bucket observe, commit,
// copy) goes through one countdown, and a scripted scenario that visits every path (admit in
// the general area and the safety pool, extend unchanged / in place / migrated / into the pool,
// release, abandon, resume of a preempted request, two planes) is replayed once per possible
// throw point. After each injected
// throw the allocator must pass check(), the live leases must be exactly those before the call
// (minus the one being released), at the same place, size and contents, and the backing must
// hold exactly the bytes it held before.
#include <odma/odma.hpp>

#include "support/test_backings.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using odma::errc;
using odma::growth;

struct injected_fault : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Counts calls into the policies and throws at the `countdown`-th one.
struct fault_plan {
    long countdown = -1;  // -1: never throw
    std::set<std::string> sites_thrown;

    void hit(const char* site) {
        if (countdown < 0) return;
        if (countdown-- == 0) {
            sites_thrown.insert(site);
            throw injected_fault(site);
        }
    }
};

struct faulty_predictor {
    fault_plan* plan;
    std::uint32_t tokens = 24;
    odma::prediction predict(const odma::request&) const {
        plan->hit("predict");
        return odma::prediction::exact(tokens);
    }
    void observe(const odma::request&, std::uint32_t) { plan->hit("predictor observe"); }
};

struct faulty_buckets {
    fault_plan* plan;
    odma::bucket::fixed inner;
    std::uint32_t capacity_for(std::uint32_t tokens) const {
        plan->hit("capacity_for");
        return inner.capacity_for(tokens);
    }
    std::uint32_t max_tokens() const { return inner.max_tokens(); }
    std::span<const std::uint32_t> boundaries() const { return inner.boundaries(); }
    void observe(std::uint32_t) { plan->hit("bucket observe"); }
};

/// Commits are tracked byte by byte (double commits and stray decommits abort the test through
/// counting_commit_backing); commit() and copy() can be made to throw.
struct faulty_backing {
    using pointer = std::byte*;
    fault_plan* plan;
    odma_test::counting_commit_backing inner;

    std::size_t capacity() const noexcept { return inner.capacity(); }
    pointer address(std::size_t offset) const noexcept { return inner.address(offset); }
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) {
        plan->hit("copy");
        inner.copy(dst, src, bytes);
    }
    bool commit(std::size_t offset, std::size_t bytes) {
        plan->hit("commit");
        return inner.commit(offset, bytes);
    }
    void decommit(std::size_t offset, std::size_t bytes) { inner.decommit(offset, bytes); }
};

using faulty_kv = odma::allocator<faulty_predictor, faulty_buckets, faulty_backing>;

constexpr std::size_t bpt = 8;  // bytes per token, 4 per plane
constexpr std::uint32_t max_tokens = 256;

/// What a lease looks like from outside; compared before and after an injected throw.
struct lease_view {
    odma::region where;
    std::vector<std::byte> bytes;  // both planes, used tokens only
    bool operator==(const lease_view& o) const {
        return where.offset_tokens == o.where.offset_tokens && where.capacity == o.where.capacity &&
               where.used == o.where.used && where.in_safety_pool == o.where.in_safety_pool &&
               where.runs == o.where.runs && bytes == o.bytes;
    }
};

std::map<std::uint64_t, lease_view> snapshot(const faulty_kv& kv,
                                             const std::map<std::uint64_t, odma::lease>& live) {
    std::map<std::uint64_t, lease_view> out;
    const std::size_t plane_bytes = kv.config().bytes_per_plane_token();
    for (const auto& [name, l] : live) {
        lease_view v{*kv.region_of(l), {}};
        for (std::uint32_t p = 0; p < kv.config().planes; ++p)
            REQUIRE(kv.for_each_run(l, p, [&](std::size_t offset, std::size_t bytes) {
                const std::byte* run = kv.backing().address(offset);
                v.bytes.insert(v.bytes.end(), run, run + bytes);
            }));
        REQUIRE(v.bytes.size() == v.where.used * plane_bytes * kv.config().planes);
        out.emplace(name, std::move(v));
    }
    return out;
}

void stamp(faulty_kv& kv, const odma::lease& l, std::uint32_t from, std::uint32_t to,
           std::uint64_t seed) {
    // Token t of the lease, byte b of its plane-p slice, found by walking the lease's runs.
    const std::size_t plane_bytes = kv.config().bytes_per_plane_token();
    for (std::uint32_t p = 0; p < kv.config().planes; ++p) {
        std::size_t i = 0;  // byte of the lease in this plane
        REQUIRE(kv.for_each_run(l, p, [&](std::size_t offset, std::size_t bytes) {
            std::byte* run = kv.backing().address(offset);
            for (std::size_t k = 0; k < bytes; ++k, ++i)
                if (i >= from * plane_bytes && i < to * plane_bytes)
                    run[k] = std::byte((seed * 37 + p * 11 + i) & 0xff);
        }));
    }
}

/// One step of the scenario. `lease` names which of the scenario's leases it acts on.
struct step {
    enum kind { admit, extend, release, abandon, resume } op;
    int lease;
    std::uint32_t tokens = 0;  // admit, resume: prompt; extend: total; release: generated
    std::uint32_t max_new = 1000;
    std::optional<growth> expect_growth{};  // with no fault, what extend must do
    std::uint32_t generated = 0;            // resume: tokens generated before the preemption
};

// Arena: 1280 tokens, 768 general + 512 safety pool; buckets 64, 128, 192, 256; the predictor
// adds 24 tokens to the prompt. Token ranges are those of the fault-free run.
const std::vector<step> scenario = {
    {step::admit, 0, 10},                          // A [0,64)
    {step::admit, 1, 10},                          // B [64,128)
    {step::extend, 0, 40, 0, growth::unchanged},   // commits more of A
    {step::extend, 1, 100, 0, growth::in_place},   // B grows to [64,192)
    {step::extend, 0, 70, 0, growth::migrated},    // A is blocked by B: moves to [192,320)
    {step::admit, 2, 200},                         // C [320,576), a largest-bucket request
    {step::admit, 3, 150},                         // D [576,768): the general area is full
    {step::admit, 4, 200},                         // E: largest bucket, goes to the pool
    {step::extend, 1, 120, 0, growth::unchanged},  // B
    {step::extend, 0, 150, 0, growth::migrated},   // A: no room in general -> pool
    {step::extend, 1, 193, 0, growth::in_place},   // B grows into A's old space
    {step::release, 2, 30},                        // C
    {step::abandon, 3},                            // D is preempted after 20 tokens...
    {step::resume, 3, 150, 1000, {}, 20},          // ... and resumed: C's old space
    {step::extend, 4, 250, 0, growth::unchanged},  // E, in the pool
    {step::admit, 5, 5, 3},                        // F: capped at its own limit of 8
    {step::release, 0, 100},                       // A
    {step::release, 1, 60},                        // B
    {step::release, 4, 40},                        // E
    {step::release, 5, 3},                         // F
    {step::release, 3, 45},                        // D
};

struct run_result {
    bool threw = false;
    std::map<std::string, int> growths_seen;
};

run_result run_scenario(long throw_at, fault_plan& plan, std::uint32_t max_runs) {
    plan.countdown = -1;
    const odma::config cfg{.bytes_per_token = bpt,
                           .max_tokens = max_tokens,
                           .safety_pool_fraction = 0.4,
                           .planes = 2,
                           .max_runs = max_runs};
    faulty_kv kv(cfg, faulty_predictor{&plan},
                 faulty_buckets{&plan, odma::bucket::fixed::uniform(4, max_tokens)},
                 faulty_backing{&plan, odma_test::counting_commit_backing(1280 * bpt)});
    plan.countdown = throw_at;

    run_result out;
    std::map<std::uint64_t, odma::lease> live;  // scenario lease number -> handle
    // After an injected fault the run may take another course (a growth that failed leaves a
    // lease smaller, so later placements differ), and running out of room becomes legitimate.
    auto diverged = [&](errc e) { return out.threw && e == errc::no_memory; };
    for (std::size_t i = 0; i < scenario.size(); ++i) {
        const step& s = scenario[i];
        CAPTURE(i);
        const bool exists = live.count(s.lease) != 0;
        if (s.op != step::admit && s.op != step::resume && !exists)
            continue;  // its admission was the faulty call
        const auto before = snapshot(kv, live);
        const std::size_t committed_before = kv.backing().inner.committed;
        try {
            switch (s.op) {
                case step::admit:
                case step::resume: {
                    const odma::request r{.id = std::uint64_t(s.lease),
                                          .prompt_tokens = s.tokens,
                                          .max_new_tokens = s.max_new};
                    auto l = s.op == step::admit ? kv.admit(r) : kv.resume(r, s.generated);
                    if (!l && diverged(l.error())) break;
                    REQUIRE(l);
                    live.emplace(s.lease, *l);
                    stamp(kv, *l, 0, s.tokens + s.generated, s.lease);
                    break;
                }
                case step::extend: {
                    const odma::lease l = live.at(s.lease);
                    const std::uint32_t old_used = kv.region_of(l)->used;
                    auto g = kv.extend(l, s.tokens);
                    if (!g && diverged(g.error())) break;
                    REQUIRE(g);
                    if (throw_at < 0 && s.expect_growth && max_runs == 1)
                        CHECK(*g == *s.expect_growth);
                    ++out.growths_seen[*g == growth::unchanged  ? "unchanged"
                                       : *g == growth::in_place ? "in_place"
                                       : *g == growth::appended ? "appended"
                                                                : "migrated"];
                    if (kv.region_of(l)->in_safety_pool) ++out.growths_seen["in pool"];
                    if (s.tokens > old_used) stamp(kv, l, old_used, s.tokens, s.lease);
                    break;
                }
                case step::release:
                case step::abandon: {
                    const odma::lease l = live.at(s.lease);
                    live.erase(s.lease);  // freed even if a policy throws
                    const auto freed =
                        s.op == step::release ? kv.release(l, s.tokens) : kv.abandon(l);
                    REQUIRE(freed);
                    break;
                }
            }
        } catch (const injected_fault& e) {
            const std::string site = e.what();
            CAPTURE(site);
            out.threw = true;
            REQUIRE(kv.check());
            // Strong guarantee: the live leases are exactly as before, minus the one released.
            auto expected = before;
            if (s.op == step::release || s.op == step::abandon) {
                expected.erase(s.lease);
                CHECK(kv.backing().inner.committed <= committed_before);
            } else {
                CHECK(kv.backing().inner.committed == committed_before);
            }
            CHECK(snapshot(kv, live) == expected);
            CHECK(kv.stats().live_leases == live.size());
        }
        REQUIRE(kv.check());
    }
    plan.countdown = -1;
    CHECK(live.empty());
    CHECK(kv.stats().live_leases == 0);
    CHECK(kv.stats().free_bytes == kv.stats().arena_bytes);
    CHECK(kv.backing().inner.committed == 0);
    return out;
}

}  // namespace

TEST_CASE("exception safety: a throw at any policy or backing call leaves the allocator valid") {
    // Once with strictly contiguous leases, once with leases of up to three runs, where growth
    // appends runs (with commits spread over several runs) and compacts them when at the cap.
    for (const std::uint32_t max_runs : {1u, 3u}) {
        CAPTURE(max_runs);
        fault_plan plan;
        // Without faults the scenario visits every growth kind, including the safety pool.
        const auto clean = run_scenario(-1, plan, max_runs);
        CHECK_FALSE(clean.threw);
        CHECK(clean.growths_seen.count("unchanged") == 1);
        CHECK(clean.growths_seen.count("in_place") == 1);
        CHECK(clean.growths_seen.count(max_runs == 1 ? "migrated" : "appended") == 1);
        CHECK(clean.growths_seen.count("in pool") == 1);

        long throw_at = 0;
        for (; throw_at < 10000; ++throw_at) {
            CAPTURE(throw_at);
            if (!run_scenario(throw_at, plan, max_runs).threw) break;  // swept them all
        }
        CHECK(throw_at < 10000);
        // Every kind of call was made to throw at least once, so no path passed vacuously.
        for (const char* site : {"predict", "predictor observe", "capacity_for", "bucket observe",
                                 "commit", max_runs == 1 ? "copy" : "commit"}) {
            CAPTURE(site);
            CHECK(plan.sites_thrown.count(site) == 1);
        }
        std::printf("  exception safety, max_runs %u: swept %ld throw points\n", max_runs,
                    throw_at);
    }
}
