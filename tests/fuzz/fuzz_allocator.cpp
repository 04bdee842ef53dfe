// Fuzz target: bytes -> a configuration and a sequence of admit / extend / release / abandon /
// bad-handle operations (and, on on-demand backings, resizes of the arena) against one of every
// policy combination, with check() after each; one pick in (combinations + 1) runs the tiered
// mode instead (fuzz_tiered.cpp: tier moves, rebalancing and swap round trips).
//
// Built two ways (tests/fuzz/CMakeLists.txt):
//   odma_fuzz_allocator  clang -fsanitize=fuzzer,address,undefined; libFuzzer drives it.
//   odma_fuzz_replay     any compiler, with replay_main.cpp: runs the committed corpus and a
//                        fixed set of seeded random inputs as an ordinary ctest.
//
// Besides check() (every heap and lease-table invariant), each operation's outcome is checked
// against the contract: the error codes allowed for the input, the growth kind against the
// region before and after, the used-token count, the bytes of every token a lease holds (each
// lease's tokens carry a pattern, so an overlap or a bad migration copy shows up), stale and
// foreign handles refused, and at the end, with every lease released, an arena that is whole
// again. A breach prints the line and aborts, which libFuzzer records as a crash.
#include "byte_reader.hpp"

#include "fuzz_allocator.hpp"
#include "fuzz_tiered.hpp"

#include "support/combos.hpp"

#include <odma/kv_allocator.hpp>
#include <odma/odma.hpp>
#include <odma/paged.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <vector>

namespace {

std::atomic<std::uint64_t> operations{0};  // allocator calls, over all inputs
std::atomic<std::uint64_t> inputs{0};
std::atomic<std::uint64_t> appends{0};         // growths that added a run
std::atomic<std::uint64_t> compactions{0};     // migrations of a lease of several runs
std::atomic<std::uint64_t> resizes{0};         // resize() calls that changed the arena
std::atomic<std::uint64_t> moving_resizes{0};  // of which moved leases

[[noreturn]] void fail(const char* what, int line) {
    std::fprintf(stderr, "odma fuzz: check failed at fuzz_allocator.cpp:%d: %s\n", line, what);
    std::abort();
}
#define FUZZ_CHECK(cond) ((cond) ? void(0) : fail(#cond, __LINE__))

using odma_fuzz::byte_reader;

using odma::errc;
using odma::growth;

// Every combination the fuzzer covers: the library's own, plus a committing test backing.
using fuzzed_combos = odma_test::concat<odma_test::library_combos, odma_test::test_only_combos>;

std::byte pattern(std::uint64_t id, std::uint32_t plane, std::size_t i) {
    return std::byte((id * 131 + plane * 17 + i * 7 + (i >> 9)) & 0xff);
}

/// A lease of another allocator, for the foreign-handle case.
const odma::lease& foreign_lease() {
    static const auto other = [] {
        using c =
            odma_test::combo<odma::predict::constant, odma::bucket::fixed, odma::backing::host>;
        odma::config cfg{.bytes_per_token = 1, .max_tokens = 16, .safety_pool_fraction = 0.0};
        return c::make({cfg, 64, 0});
    }();
    static const odma::lease l = *other->admit({.id = 1, .prompt_tokens = 1, .max_new_tokens = 1});
    return l;
}

/// What the fuzzer knows of a live lease: its request and the tokens it holds.
struct model_lease {
    odma::lease handle;
    std::uint64_t id;
    std::uint32_t prompt, used, max_new;
};

/// The sizes of an admission, decoded from the input: a prompt of up to max_tokens + 7 tokens
/// (so some are too long) and up to 1,023 new tokens (0 is invalid too).
struct admission_sizes {
    std::uint32_t prompt, max_new;
};
admission_sizes read_admission(byte_reader& in, std::uint32_t max_tokens) {
    const std::uint32_t prompt = in.u16() % (max_tokens + 8);
    return {prompt, std::uint32_t(in.u16() % 1024)};
}

/// The token count an extend asks for, decoded from the input: mostly growth by 1-64 tokens,
/// sometimes any valid size (shrinking included), sometimes an impossible one (0 or past
/// max_tokens).
std::uint32_t extend_target(byte_reader& in, std::uint32_t used, std::uint32_t max_tokens) {
    const std::uint8_t how = in.u8();
    if (how < 200) return std::min(max_tokens, used + 1 + in.u8() % 64);
    if (how < 240) return 1 + in.u16() % max_tokens;
    return how % 2 ? 0 : max_tokens + 1 + in.u8();
}

/// Every call refuses a handle that is not live in `kv` (stale, foreign, empty, moved-from).
template <odma::KvAllocator Allocator>
void expect_refused(Allocator& kv, const odma::lease& l) {
    FUZZ_CHECK(!kv.is_live(l));
    FUZZ_CHECK(kv.extend(l, 1).error() == errc::invalid_lease);
    FUZZ_CHECK(kv.data(l, 0).error() == errc::invalid_lease);
    FUZZ_CHECK(kv.for_each_run(l, 0, [](std::size_t, std::size_t) {
                     fail("a run of a dead lease", __LINE__);
                 }).error() == errc::invalid_lease);
    FUZZ_CHECK(kv.release(l, 1).error() == errc::invalid_lease);
    FUZZ_CHECK(kv.abandon(l).error() == errc::invalid_lease);
    if constexpr (requires { kv.region_of(l); })
        FUZZ_CHECK(kv.region_of(l).error() == errc::invalid_lease);
    if constexpr (requires { kv.used_tokens(l); })
        FUZZ_CHECK(kv.used_tokens(l).error() == errc::invalid_lease);
    operations += 7;
}

/// The runs of a live lease tile its used tokens in every plane: their bytes add up to exactly
/// the tokens it holds, none is empty, and none leaves the plane.
template <odma::KvAllocator Allocator>
bool runs_tile(const Allocator& kv, const odma::lease& l, std::uint32_t used, std::uint32_t planes,
               std::size_t plane_bytes) {
    for (std::uint32_t p = 0; p < planes; ++p) {
        std::size_t total = 0;
        bool ok = true;
        const auto walked = kv.for_each_run(l, p, [&](std::size_t offset, std::size_t n) {
            ok = ok && n > 0 && n % plane_bytes == 0 && offset >= kv.byte_offset(p, 0) &&
                 offset + n <= kv.byte_offset(p + 1, 0);
            total += n;
        });
        if (!walked || !ok || total != std::size_t(used) * plane_bytes) return false;
    }
    return true;
}

/// One resize of an allocator over a ResizableBacking, decoded from the input: any size from 0
/// to past the backing, with no copy budget, a small one or an unlimited one. Checked against
/// the contract: a refusal changes no lease (place, size, bytes) and names freeable bytes that
/// a second resize with the same budget really frees; a success leaves every lease's bytes
/// intact and every run inside the new arena. `arena_bytes` follows the arena.
template <class Allocator, class Intact>
void resize(Allocator& kv, byte_reader& in, const std::vector<model_lease>& live,
            std::size_t& arena_bytes, Intact&& intact) {
    const odma::config& cfg = kv.config();
    const std::size_t bpt = cfg.bytes_per_token;
    const std::uint32_t slots = kv.capacity_tokens(), pool = kv.safety_pool_tokens();
    // Half the time any size; half the time just below the end of the highest run of the
    // general area, where a shrink has leases to move.
    std::size_t top = 0;
    for (const auto& m : live)
        (void)kv.for_each_run(m.handle, 0, [&](std::size_t offset, std::size_t n) {
            const std::size_t end = (offset + n) / cfg.bytes_per_plane_token();
            if (end <= slots - pool) top = std::max(top, end);
        });
    const std::uint8_t where = in.u8();
    const std::size_t tokens_asked =
        where % 2 ? std::size_t(in.u16() % (slots + 8))
                  : pool + top - std::min<std::size_t>(top, 1 + where / 2 % 32);
    const std::size_t target = tokens_asked * bpt + in.u8() % bpt;
    const std::uint8_t how = in.u8() % 3;
    const std::size_t budget = how == 0 ? 0 : how == 1 ? 64 * bpt : ~std::size_t{0};
    std::vector<odma::region> before;
    for (const auto& m : live)
        before.push_back(*kv.region_of(m.handle));
    const auto r = kv.resize(target, budget);
    ++operations;
    const std::uint32_t floor =
        (cfg.max_tokens + cfg.run_alignment - 1) / cfg.run_alignment * cfg.run_alignment;
    const std::size_t tokens = target / bpt / cfg.run_alignment * cfg.run_alignment;
    if (!r) {
        FUZZ_CHECK(r.arena_bytes() == arena_bytes && kv.stats().arena_bytes == arena_bytes);
        for (std::size_t i = 0; i < live.size(); ++i) {
            const auto now = *kv.region_of(live[i].handle);
            FUZZ_CHECK(now.offset_tokens == before[i].offset_tokens &&
                       now.capacity == before[i].capacity && now.runs == before[i].runs);
            FUZZ_CHECK(intact(live[i], live[i].used));
        }
        if (r.error() == errc::invalid_request) {
            FUZZ_CHECK(target / bpt > slots || tokens < pool + std::size_t(floor));
            return;
        }
        FUZZ_CHECK(r.error() == errc::no_memory);
        FUZZ_CHECK(tokens < arena_bytes / bpt);  // only a shrink can find leases in the way
        FUZZ_CHECK(r.freeable_bytes() % bpt == 0);
        // What was named can be had: the arena shrinks by exactly that much.
        const auto taken = kv.resize(arena_bytes - r.freeable_bytes(), budget);
        ++operations;
        FUZZ_CHECK(taken.has_value());
        FUZZ_CHECK(taken.copied_bytes() <= budget);
        arena_bytes = taken.arena_bytes();
    } else {
        FUZZ_CHECK(r.arena_bytes() == tokens * bpt && r.copied_bytes() <= budget);
        resizes += r.arena_bytes() != arena_bytes;
        moving_resizes += r.copied_bytes() > 0;
        arena_bytes = r.arena_bytes();
    }
    FUZZ_CHECK(kv.stats().arena_bytes == arena_bytes);
    // Every run of every lease lies in the general area, below its end, or in the pool.
    const std::size_t general_end = arena_bytes / bpt - pool;
    for (const auto& m : live) {
        FUZZ_CHECK(intact(m, m.used));
        FUZZ_CHECK(kv.for_each_run(m.handle, 0, [&](std::size_t offset, std::size_t n) {
                         const std::size_t first = offset / cfg.bytes_per_plane_token();
                         const std::size_t end = first + n / cfg.bytes_per_plane_token();
                         FUZZ_CHECK(end <= general_end || first >= slots - pool);
                     }).has_value());
    }
}

template <class Combo>
void run(byte_reader& in) {
    // --- configuration ---------------------------------------------------------------------
    odma::config cfg;
    cfg.planes = 1u << (in.u8() % 3);  // 1, 2 or 4
    cfg.bytes_per_token = cfg.planes * (1 + in.u8() % 4);
    cfg.max_tokens = 8 + in.u16() % 505;
    cfg.safety_pool_fraction = (in.u8() % 5) * 0.1;
    cfg.overflow_risk = (in.u8() % 4) * 0.1;
    cfg.max_runs = 1 + in.u8() % 4;  // strict contiguity, or leases of up to 2, 3 or 4 runs
    // Behaviour under pressure: soft reservations on or off, admission by predicted demand off
    // or at 0.75 or 1.5 arenas, runs aligned to 1, 2, 4 or 8 tokens.
    const std::uint8_t pressure = in.u8();
    cfg.lend_reserved = (pressure & 1) != 0;
    cfg.demand_limit = ((pressure >> 1) % 3) * 0.75;
    cfg.run_alignment = 1u << ((pressure >> 3) % 4);
    const std::uint32_t general = cfg.max_tokens * (1 + in.u8() % 6) + in.u8();
    const auto tokens = std::uint32_t(double(general) / (1.0 - cfg.safety_pool_fraction)) + 2 +
                        2 * cfg.run_alignment;  // the arena is rounded down to whole units
    odma_test::build_context ctx{cfg, std::size_t(tokens) * cfg.bytes_per_token, in.u8()};
    if (const std::uint8_t bad = in.u8(); bad < 8) {
        // One field broken in a way validation must catch: the constructor throws, nothing
        // else happens.
        switch (bad % 4) {
            case 0:
                ctx.cfg.bytes_per_token = ctx.cfg.planes == 1 ? 0 : ctx.cfg.planes + 1;
                break;
            case 1:
                ctx.cfg.safety_pool_fraction = 1.0;
                break;
            case 2:
                ctx.cfg.overflow_risk = -0.5;
                break;
            default:
                ctx.arena_bytes = cfg.bytes_per_token * (cfg.max_tokens - 1);
        }
        ++operations;
        try {
            const auto kv = Combo::make(ctx);
            // A backing may round its arena up (host_vmm: whole granules); then a request for
            // too few bytes can legitimately end up large enough, and that is fine.
            FUZZ_CHECK(bad % 4 == 3 &&
                       kv->capacity_tokens() - kv->safety_pool_tokens() >= cfg.max_tokens);
        } catch (const odma::config_error&) {}
        return;
    }
    const auto kv_ptr = Combo::make(ctx);
    auto& kv = *kv_ptr;
    const std::size_t plane_bytes = cfg.bytes_per_plane_token();
    std::size_t arena_bytes = kv.stats().arena_bytes;  // resize() changes it

    std::vector<model_lease> live;
    std::vector<odma::lease> stale;
    std::uint64_t next_id = 1;

    // Backings with bytes get every token stamped and checked, walking the lease's runs; a
    // backing without bytes (placement_only) must hand out its device addresses: the first
    // run's byte offset in each plane.
    constexpr bool has_bytes = std::is_same_v<typename Combo::allocator_type::pointer, std::byte*>;
    // Calls f(byte of the lease in plane p, its address) for bytes [from, to) of the lease.
    auto each_byte = [&](const model_lease& m, std::uint32_t p, std::size_t from, std::size_t to,
                         auto&& f) {
        std::size_t i = 0;
        FUZZ_CHECK(kv.for_each_run(m.handle, p, [&](std::size_t offset, std::size_t bytes) {
                         for (std::size_t k = 0; k < bytes; ++k, ++i)
                             if (i >= from && i < to) f(i, kv.backing().address(offset + k));
                     }).has_value());
    };
    auto write = [&](const model_lease& m, std::uint32_t from, std::uint32_t to) {
        for (std::uint32_t p = 0; p < cfg.planes; ++p) {
            const auto base = kv.data(m.handle, p);
            FUZZ_CHECK(base.has_value());
            if constexpr (has_bytes) {
                each_byte(m, p, from * plane_bytes, to * plane_bytes,
                          [&](std::size_t i, std::byte* at) { *at = pattern(m.id, p, i); });
            } else {
                FUZZ_CHECK(base.get() == kv.byte_offset(p, kv.region_of(m.handle)->offset_tokens));
            }
        }
    };
    auto intact = [&](const model_lease& m, std::uint32_t tokens) {
        bool ok = true;
        if constexpr (has_bytes) {
            for (std::uint32_t p = 0; p < cfg.planes; ++p)
                each_byte(m, p, 0, tokens * plane_bytes, [&](std::size_t i, std::byte* at) {
                    ok = ok && *at == pattern(m.id, p, i);
                });
        }
        return ok;
    };
    auto retire = [&](std::size_t i) {
        stale.push_back(live[i].handle);
        if (stale.size() > 32) stale.erase(stale.begin());
        live[i] = live.back();
        live.pop_back();
    };

    // --- operations ------------------------------------------------------------------------
    for (int step = 0; step < 4096 && !in.empty(); ++step) {
        const std::uint8_t op = in.u8();
        switch (op % 8) {
            case 0:
            case 1: {  // admit
                const auto [prompt, max_new] = read_admission(in, cfg.max_tokens);
                const std::uint64_t id = next_id++;
                odma_test::tell_length(kv, id, in.u16() % 1024);
                const odma::request r{.id = id, .prompt_tokens = prompt, .max_new_tokens = max_new};
                auto l = kv.admit(r);
                ++operations;
                if (prompt == 0 || max_new == 0 || prompt >= cfg.max_tokens) {
                    FUZZ_CHECK(l.error() == errc::invalid_request);
                } else if (!l) {
                    FUZZ_CHECK(l.error() == errc::no_memory);
                } else {
                    const auto reg = *kv.region_of(*l);
                    FUZZ_CHECK(reg.used == prompt);
                    FUZZ_CHECK(reg.capacity > prompt);  // room for at least one new token
                    // Capacities are whole alignment units.
                    FUZZ_CHECK(reg.capacity % cfg.run_alignment == 0);
                    FUZZ_CHECK(reg.capacity <= (cfg.max_tokens + cfg.run_alignment - 1) /
                                                   cfg.run_alignment * cfg.run_alignment);
                    FUZZ_CHECK(reg.runs >= 1 && reg.runs <= cfg.max_runs);
                    if (reg.runs == 1)
                        FUZZ_CHECK(reg.offset_tokens + reg.capacity <= kv.capacity_tokens());
                    live.push_back({*l, id, prompt, prompt, max_new});
                    write(live.back(), 0, prompt);
                }
                break;
            }
            case 2:
            case 3: {  // extend
                if (live.empty()) break;
                model_lease& m = live[in.u8() % live.size()];
                const std::uint32_t total = extend_target(in, m.used, cfg.max_tokens);
                const auto before = *kv.region_of(m.handle);
                auto g = kv.extend(m.handle, total);
                ++operations;
                const auto after = *kv.region_of(m.handle);
                if (total == 0 || total > cfg.max_tokens) {
                    FUZZ_CHECK(g.error() == errc::invalid_request);
                } else if (!g) {
                    FUZZ_CHECK(g.error() == errc::no_memory);
                    FUZZ_CHECK(total > before.capacity);
                }
                if (!g) {  // nothing moved
                    FUZZ_CHECK(after.offset_tokens == before.offset_tokens &&
                               after.capacity == before.capacity && after.used == m.used &&
                               after.runs == before.runs);
                    FUZZ_CHECK(intact(m, m.used));
                    break;
                }
                FUZZ_CHECK(after.used == total && after.capacity >= total);
                FUZZ_CHECK(after.runs >= 1 && after.runs <= cfg.max_runs);
                switch (*g) {
                    case growth::unchanged:
                        FUZZ_CHECK(total <= before.capacity);
                        FUZZ_CHECK(after.offset_tokens == before.offset_tokens &&
                                   after.capacity == before.capacity && after.runs == before.runs);
                        break;
                    case growth::in_place:
                        FUZZ_CHECK(total > before.capacity);
                        FUZZ_CHECK(after.offset_tokens == before.offset_tokens &&
                                   after.in_safety_pool == before.in_safety_pool &&
                                   after.runs == before.runs);
                        break;
                    case growth::appended:  // a new run after the last: nothing moved
                        FUZZ_CHECK(total > before.capacity && before.runs < cfg.max_runs);
                        FUZZ_CHECK(after.offset_tokens == before.offset_tokens &&
                                   after.runs == before.runs + 1);
                        ++appends;
                        break;
                    case growth::migrated:  // into one run again
                        FUZZ_CHECK(total > before.capacity);
                        FUZZ_CHECK(after.runs == 1);
                        if (before.runs > 1) ++compactions;
                        FUZZ_CHECK(after.offset_tokens != before.offset_tokens ||
                                   after.in_safety_pool != before.in_safety_pool);
                        break;
                }
                FUZZ_CHECK(intact(m, std::min(m.used, total)));
                if (total > m.used) write(m, m.used, total);
                m.used = total;
                break;
            }
            case 4:
            case 5: {  // release or abandon
                if (live.empty()) break;
                const std::size_t i = in.u8() % live.size();
                FUZZ_CHECK(intact(live[i], live[i].used));
                FUZZ_CHECK(runs_tile(kv, live[i].handle, live[i].used, cfg.planes, plane_bytes));
                const odma::lease l = live[i].handle;
                const model_lease m = live[i];
                const auto done = op % 8 == 4 ? kv.release(l, m.used - m.prompt) : kv.abandon(l);
                ++operations;
                FUZZ_CHECK(done.has_value());
                FUZZ_CHECK(!kv.is_live(l));
                retire(i);
                if (op % 8 == 5 && in.u8() % 2) {  // preempted: resume it at once
                    const std::uint32_t generated = m.used > m.prompt ? m.used - m.prompt : 0;
                    const std::uint32_t tokens = m.prompt + generated;
                    const odma::request original{
                        .id = m.id, .prompt_tokens = m.prompt, .max_new_tokens = m.max_new};
                    auto r = kv.resume(original, generated);
                    ++operations;
                    if (generated >= m.max_new || tokens >= cfg.max_tokens) {
                        FUZZ_CHECK(r.error() == errc::invalid_request);
                    } else if (!r) {
                        FUZZ_CHECK(r.error() == errc::no_memory);
                    } else {
                        const auto reg = *kv.region_of(*r);
                        FUZZ_CHECK(reg.used == tokens && reg.capacity > tokens);
                        live.push_back({*r, m.id, m.prompt, tokens, m.max_new});
                        write(live.back(), 0, tokens);  // recomputed KV
                    }
                }
                break;
            }
            case 6: {  // a bad handle of some kind
                const std::uint8_t kind = in.u8() % 4;
                if (kind == 0 && !stale.empty()) expect_refused(kv, stale[in.u8() % stale.size()]);
                if (kind == 1) expect_refused(kv, foreign_lease());
                if (kind == 2) expect_refused(kv, odma::lease{});
                if (kind == 3 && !live.empty()) {
                    odma::lease copy = live[in.u8() % live.size()].handle;
                    const odma::lease taken = std::move(copy);
                    expect_refused(kv, copy);  // moved-from
                    FUZZ_CHECK(kv.data(taken, cfg.planes).error() == errc::invalid_request);
                    FUZZ_CHECK(kv.is_live(taken));
                }
                break;
            }
            default: {
                if constexpr (requires { kv.resize(arena_bytes, arena_bytes); }) {
                    if (op >= 128) {  // resize, on backings that can
                        resize(kv, in, live, arena_bytes, intact);
                        break;
                    }
                }
                // The counters agree with the model.
                const auto s = kv.stats();
                std::uint64_t used = 0;
                for (const auto& m : live)
                    used += m.used;
                FUZZ_CHECK(s.live_leases == live.size());
                FUZZ_CHECK(s.used_bytes == used * cfg.bytes_per_token);
                FUZZ_CHECK(s.reserved_bytes + s.free_bytes == arena_bytes);
                FUZZ_CHECK(s.external_fragmentation >= 0.0 && s.external_fragmentation < 1.0);
                ++operations;
            }
        }
        FUZZ_CHECK(kv.check().has_value());
        if constexpr (requires { kv.backing().counters(); })
            FUZZ_CHECK(kv.backing().counters().contract_violations == 0);
    }

    // --- drain: the arena is whole again ---------------------------------------------------
    for (const auto& m : live) {
        FUZZ_CHECK(intact(m, m.used));
        FUZZ_CHECK(kv.release(m.handle, 0).has_value());
        ++operations;
    }
    const auto s = kv.stats();
    FUZZ_CHECK(s.live_leases == 0 && s.reserved_bytes == 0 && s.free_bytes == arena_bytes);
    FUZZ_CHECK(s.external_fragmentation == 0.0);
    FUZZ_CHECK(s.largest_free_bytes == arena_bytes - s.safety_pool_bytes);
    if constexpr (requires { kv.backing().committed; }) FUZZ_CHECK(kv.backing().committed == 0);
    if constexpr (requires { kv.backing().report(); }) {  // cost-model backings
        const auto& r = kv.backing().report();
        FUZZ_CHECK(r.migration.bytes == s.migrated_bytes);    // every copy was charged
        FUZZ_CHECK(r.read.bytes == 0 && r.write.bytes == 0);  // the allocator only copies
    }
    if constexpr (requires { kv.backing().counters(); }) {  // on-demand backings
        const auto& c = kv.backing().counters();
        FUZZ_CHECK(c.committed_bytes == 0 && c.mapped_bytes == 0);
        FUZZ_CHECK(c.contract_violations == 0);
    }
    FUZZ_CHECK(kv.check().has_value());
}

/// The paged baseline under the same kind of operations. Its outcomes are fully predictable
/// from counts: admit fails with no_memory exactly when the prompt's blocks plus the watermark
/// exceed the free blocks, extend appends blocks (in_place) or fails exactly when too few are
/// free, and nothing ever migrates.
template <class Combo>
void run_paged(byte_reader& in) {
    odma::config cfg;
    cfg.planes = 1u << (in.u8() % 3);
    cfg.bytes_per_token = cfg.planes * (1 + in.u8() % 4);
    cfg.max_tokens = 8 + in.u16() % 505;
    const std::uint32_t tokens = cfg.max_tokens * (1 + in.u8() % 6) + in.u8() + 16;
    odma_test::build_context ctx{cfg, std::size_t(tokens) * cfg.bytes_per_token, in.u8()};
    if (const std::uint8_t bad = in.u8(); bad < 8) {
        if (bad % 2)
            ctx.cfg.bytes_per_token = ctx.cfg.planes == 1 ? 0 : ctx.cfg.planes + 1;
        else
            ctx.arena_bytes = cfg.bytes_per_token * (cfg.max_tokens - 1);
        ++operations;
        try {
            (void)Combo::make(ctx);
        } catch (const odma::config_error&) {
            return;
        }
        fail("a broken configuration was accepted", __LINE__);
    }
    const auto kv_ptr = Combo::make(ctx);
    auto& kv = *kv_ptr;
    const std::uint32_t block = kv.config().block_tokens;
    const std::size_t plane_bytes = cfg.bytes_per_plane_token();
    const auto watermark_blocks =
        static_cast<std::uint32_t>(double(kv.capacity_blocks()) * kv.config().watermark);
    auto blocks_for = [&](std::uint32_t t) { return (t + block - 1) / block; };
    constexpr bool has_bytes = std::is_same_v<typename Combo::allocator_type::pointer, std::byte*>;

    std::vector<model_lease> live;
    std::vector<odma::lease> stale;
    std::uint64_t next_id = 1;
    // Token t of a lease: block table[t / block], slot t % block.
    auto token_offset = [&](const model_lease& m, std::uint32_t p, std::uint32_t t) {
        const auto table = *kv.blocks(m.handle);
        return kv.byte_offset(p, std::size_t(table[t / block]) * block + t % block);
    };
    auto write = [&](const model_lease& m, std::uint32_t from, std::uint32_t to) {
        for (std::uint32_t p = 0; p < cfg.planes; ++p)
            for (std::uint32_t t = from; t < to; ++t) {
                const auto at = kv.data(m.handle, p, t);
                FUZZ_CHECK(at.has_value());
                if constexpr (has_bytes) {
                    for (std::size_t i = 0; i < plane_bytes; ++i)
                        at.get()[i] = pattern(m.id, p, t * plane_bytes + i);
                } else {
                    FUZZ_CHECK(at.get() == token_offset(m, p, t));
                }
            }
    };
    auto intact = [&](const model_lease& m) {
        if constexpr (has_bytes)
            for (std::uint32_t p = 0; p < cfg.planes; ++p)
                for (std::uint32_t t = 0; t < m.used; ++t) {
                    const std::byte* at = kv.data(m.handle, p, t);
                    for (std::size_t i = 0; i < plane_bytes; ++i)
                        if (at[i] != pattern(m.id, p, t * plane_bytes + i)) return false;
                }
        return true;
    };
    // The runs a paged kernel would read: one per block, covering exactly the used tokens.
    auto runs_match = [&](const model_lease& m) {
        for (std::uint32_t p = 0; p < cfg.planes; ++p) {
            std::uint32_t t = 0;
            bool ok = true;
            const auto walked =
                kv.for_each_run(m.handle, p, [&](std::size_t offset, std::size_t n) {
                    ok = ok && offset == token_offset(m, p, t) && n % plane_bytes == 0 &&
                         n / plane_bytes == std::min(block, m.used - t);
                    t += std::uint32_t(n / plane_bytes);
                });
            if (!walked || !ok || t != m.used) return false;
        }
        return true;
    };

    for (int step = 0; step < 4096 && !in.empty(); ++step) {
        const std::uint8_t op = in.u8();
        switch (op % 8) {
            case 0:
            case 1: {  // admit
                const auto [prompt, max_new] = read_admission(in, cfg.max_tokens);
                const std::uint32_t free_before = kv.free_blocks();
                auto l =
                    kv.admit({.id = next_id, .prompt_tokens = prompt, .max_new_tokens = max_new});
                ++operations;
                if (prompt == 0 || max_new == 0 || prompt >= cfg.max_tokens) {
                    FUZZ_CHECK(l.error() == errc::invalid_request);
                } else if (blocks_for(prompt) + watermark_blocks > free_before) {
                    FUZZ_CHECK(l.error() == errc::no_memory);
                } else {
                    FUZZ_CHECK(l.has_value());
                    FUZZ_CHECK(kv.blocks(*l)->size() == blocks_for(prompt));
                    FUZZ_CHECK(*kv.used_tokens(*l) == prompt);
                    live.push_back({*l, next_id, prompt, prompt, max_new});
                    write(live.back(), 0, prompt);
                }
                ++next_id;
                break;
            }
            case 2:
            case 3: {  // extend
                if (live.empty()) break;
                model_lease& m = live[in.u8() % live.size()];
                const std::uint32_t total = extend_target(in, m.used, cfg.max_tokens);
                const auto have = std::uint32_t(kv.blocks(m.handle)->size());
                const std::uint32_t free_before = kv.free_blocks();
                auto g = kv.extend(m.handle, total);
                ++operations;
                if (total == 0 || total > cfg.max_tokens) {
                    FUZZ_CHECK(g.error() == errc::invalid_request);
                } else if (blocks_for(total) <= have) {
                    FUZZ_CHECK(g.has_value() && *g == growth::unchanged);
                } else if (blocks_for(total) - have > free_before) {
                    FUZZ_CHECK(g.error() == errc::no_memory);
                } else {
                    FUZZ_CHECK(g.has_value() && *g == growth::in_place);  // never migrated
                    FUZZ_CHECK(kv.blocks(m.handle)->size() == blocks_for(total));
                }
                FUZZ_CHECK(intact(m) || !g);
                if (g) {
                    FUZZ_CHECK(*kv.used_tokens(m.handle) == total);
                    if (total > m.used) {
                        const std::uint32_t old = m.used;
                        m.used = total;
                        write(m, old, total);
                    } else {
                        m.used = total;
                    }
                } else {
                    FUZZ_CHECK(*kv.used_tokens(m.handle) == m.used);
                }
                FUZZ_CHECK(intact(m));
                break;
            }
            case 4:
            case 5: {  // release or abandon
                if (live.empty()) break;
                const std::size_t i = in.u8() % live.size();
                FUZZ_CHECK(intact(live[i]) && runs_match(live[i]));
                FUZZ_CHECK(runs_tile(kv, live[i].handle, live[i].used, cfg.planes, plane_bytes));
                const odma::lease l = live[i].handle;
                const model_lease m = live[i];
                const auto blocks = kv.blocks(l)->size();
                const std::uint32_t free_before = kv.free_blocks();
                FUZZ_CHECK((op % 8 == 4 ? kv.release(l, 1) : kv.abandon(l)).has_value());
                ++operations;
                FUZZ_CHECK(kv.free_blocks() == free_before + blocks);
                stale.push_back(l);
                if (stale.size() > 32) stale.erase(stale.begin());
                live[i] = live.back();
                live.pop_back();
                if (op % 8 == 5 && in.u8() % 2) {  // preempted: resume it at once
                    const std::uint32_t generated = m.used > m.prompt ? m.used - m.prompt : 0;
                    const std::uint32_t tokens = m.prompt + generated;
                    const std::uint32_t free_now = kv.free_blocks();
                    auto r = kv.resume(
                        {.id = m.id, .prompt_tokens = m.prompt, .max_new_tokens = m.max_new},
                        generated);
                    ++operations;
                    if (generated >= m.max_new || tokens >= cfg.max_tokens) {
                        FUZZ_CHECK(r.error() == errc::invalid_request);
                    } else if (blocks_for(tokens) + watermark_blocks > free_now) {
                        FUZZ_CHECK(r.error() == errc::no_memory);
                    } else {
                        FUZZ_CHECK(r.has_value() && *kv.used_tokens(*r) == tokens);
                        live.push_back({*r, m.id, m.prompt, tokens, m.max_new});
                        write(live.back(), 0, tokens);
                    }
                }
                break;
            }
            case 6: {  // bad handles, and a plane or token out of range
                const std::uint8_t kind = in.u8() % 4;
                if (kind == 0 && !stale.empty()) expect_refused(kv, stale[in.u8() % stale.size()]);
                if (kind == 1) expect_refused(kv, foreign_lease());
                if (kind == 2) expect_refused(kv, odma::lease{});
                if (kind == 3 && !live.empty()) {
                    const model_lease& m = live[in.u8() % live.size()];
                    const auto table = kv.blocks(m.handle)->size();
                    FUZZ_CHECK(kv.data(m.handle, cfg.planes).error() == errc::invalid_request);
                    FUZZ_CHECK(kv.data(m.handle, 0, std::uint32_t(table * block)).error() ==
                               errc::invalid_request);
                    FUZZ_CHECK(runs_match(m));
                    operations += 3;
                }
                break;
            }
            default: {  // the counters agree with the model
                const auto st = kv.stats();
                std::uint64_t used = 0, blocks = 0;
                for (const auto& m : live) {
                    used += m.used;
                    blocks += kv.blocks(m.handle)->size();
                }
                FUZZ_CHECK(st.live_leases == live.size());
                FUZZ_CHECK(st.used_bytes == used * cfg.bytes_per_token);
                FUZZ_CHECK(st.reserved_bytes == blocks * block * cfg.bytes_per_token);
                FUZZ_CHECK(st.reserved_bytes + st.free_bytes == st.arena_bytes);
                FUZZ_CHECK(blocks + kv.free_blocks() == kv.capacity_blocks());
                ++operations;
            }
        }
        FUZZ_CHECK(kv.check().has_value());
    }
    for (const auto& m : live) {
        FUZZ_CHECK(intact(m) && runs_match(m));
        FUZZ_CHECK(kv.release(m.handle, 0).has_value());
        ++operations;
    }
    FUZZ_CHECK(kv.free_blocks() == kv.capacity_blocks());
    FUZZ_CHECK(kv.stats().live_leases == 0 && kv.stats().reserved_bytes == 0);
    FUZZ_CHECK(kv.check().has_value());
}

}  // namespace

namespace odma_fuzz {

void run_one(const std::uint8_t* data, std::size_t size) {
    byte_reader in(data, size);
    ++inputs;
    using paged = odma_test::paged_combos;
    // One pick more than the combinations: the tiered mode (fuzz_tiered.cpp).
    const std::size_t pick = in.u8() % (fuzzed_combos::size + paged::size + 1);
    if (pick < fuzzed_combos::size) {
        odma_test::with_combo(fuzzed_combos{}, pick, [&]<class Combo>() { run<Combo>(in); });
        return;
    }
    if (pick == fuzzed_combos::size + paged::size) {
        run_tiered(in);
        return;
    }
    odma_test::with_combo(paged{}, pick - fuzzed_combos::size,
                          [&]<class Combo>() { run_paged<Combo>(in); });
}

void print_totals() {
    std::fprintf(stderr,
                 "odma fuzz: %llu allocator operations over %llu inputs, %zu combinations; "
                 "%llu growths by a new run, %llu compactions of multi-run leases, %llu resizes "
                 "(%llu moving leases)\n",
                 static_cast<unsigned long long>(operations.load()),
                 static_cast<unsigned long long>(inputs.load()),
                 fuzzed_combos::size + odma_test::paged_combos::size,
                 static_cast<unsigned long long>(appends.load()),
                 static_cast<unsigned long long>(compactions.load()),
                 static_cast<unsigned long long>(resizes.load()),
                 static_cast<unsigned long long>(moving_resizes.load()));
    print_tiered_totals();
}

}  // namespace odma_fuzz

#ifndef ODMA_FUZZ_REPLAY
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    std::atexit(odma_fuzz::print_totals);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    odma_fuzz::run_one(data, size);
    return 0;
}
#endif
