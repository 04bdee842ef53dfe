// The fuzz target's tiered mode: bytes -> a two-tier cache (odma::tiered over two allocators on
// host memory, static or balanced placement) and a sequence of admissions, growths, releases,
// abandons, tier moves, rebalancing passes and swap round trips, with check() and the bytes of
// every live lease verified after each. Reached from run_one() in fuzz_allocator.cpp.
#include "fuzz_tiered.hpp"

#include "support/kv_stamp.hpp"

#include <odma/allocator.hpp>
#include <odma/backing/host.hpp>
#include <odma/bucket/fixed.hpp>
#include <odma/predict/constant.hpp>
#include <odma/predict/oracle.hpp>
#include <odma/swap.hpp>
#include <odma/tier/balanced.hpp>
#include <odma/tier/host_link.hpp>
#include <odma/tier/static_spill.hpp>
#include <odma/tiered.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace odma_fuzz {
namespace {

std::atomic<std::uint64_t> tier_operations{0};
std::atomic<std::uint64_t> tier_moves{0};  // moves and promotions that happened
std::atomic<std::uint64_t> swaps{0};       // swap round trips completed

[[noreturn]] void fail(const char* what, int line) {
    std::fprintf(stderr, "odma fuzz: check failed at fuzz_tiered.cpp:%d: %s\n", line, what);
    std::abort();
}
#define TIER_CHECK(cond) ((cond) ? void(0) : fail(#cond, __LINE__))

using odma::errc;
using kv_t = odma::allocator<odma::predict::constant, odma::bucket::fixed, odma::backing::host>;

struct live_lease {
    odma::lease handle;
    std::uint64_t id;
    std::uint32_t prompt, used, max_new;
};

// Writes (or checks) the first `tokens` tokens of a lease in every plane.
template <class Kv>
bool stamp(Kv& kv, const live_lease& l, std::uint32_t tokens, bool write) {
    const std::size_t per_plane = kv.config().bytes_per_plane_token();
    bool ok = true;
    for (std::uint32_t p = 0; p < kv.config().planes; ++p) {
        std::size_t i = 0;
        const std::size_t want = std::size_t(tokens) * per_plane;
        const auto walked = kv.for_each_run(l.handle, p, [&](std::size_t offset, std::size_t n) {
            std::byte* at = kv.backing().address(offset);
            for (std::size_t k = 0; k < n && i < want; ++k, ++i) {
                if (write)
                    at[k] = odma_test::kv_pattern(l.id, p, i);
                else
                    ok = ok && at[k] == odma_test::kv_pattern(l.id, p, i);
            }
        });
        ok = ok && walked.has_value() && i == want;
    }
    return ok;
}

template <class Policy, class MakePolicy>
void run_with(byte_reader& in, MakePolicy&& make_policy) {
    const std::uint32_t planes = 1 + in.u8() % 3;
    const std::size_t bpt = planes * (4 + in.u8() % 13);
    const std::uint32_t max_tokens = 32 + in.u8() % 97;
    const std::uint32_t max_runs = 1 + in.u8() % 4;
    const odma::config cfg{.bytes_per_token = bpt,
                           .max_tokens = max_tokens,
                           .safety_pool_fraction = (in.u8() % 3) * 0.1,
                           .planes = planes,
                           .max_runs = max_runs};
    const auto tokens = [&](std::uint32_t extra) { return max_tokens * 2 + extra; };
    auto make = [&](std::uint32_t slots) {
        return kv_t(cfg, odma::predict::constant{},
                    odma::bucket::fixed::uniform(1 + in.u8() % 8, max_tokens),
                    odma::backing::host(std::size_t(slots) * bpt));
    };
    kv_t fast = make(tokens(in.u8() * 2)), slow = make(tokens(in.u8() * 4));
    Policy policy = make_policy(in);
    odma::tiered<kv_t, kv_t, Policy, odma::tier_policies::host_link> kv(fast, slow,
                                                                        std::move(policy));
    std::vector<live_lease> live;
    std::uint64_t next_id = 1;
    const auto pick = [&]() -> live_lease& { return live[in.u8() % live.size()]; };
    const auto verify_all = [&] {
        TIER_CHECK(kv.check().has_value());
        for (const auto& l : live)
            TIER_CHECK(stamp(kv, l, l.used, false));
    };

    for (int step = 0; step < 400 && !in.empty(); ++step) {
        const std::uint8_t op = in.u8() % 9;
        ++tier_operations;
        if (op < 2 || live.empty()) {
            const std::uint32_t prompt = in.u8() % (max_tokens + 2);
            const odma::request r{next_id, prompt, 1 + std::uint32_t(in.u8() % 64)};
            if constexpr (requires { kv.policy().predictor().tell(1, 1); })
                kv.policy().predictor().tell(next_id, 1 + in.u8() % 64);
            auto l = kv.admit(r);
            if (l) {
                live.push_back({*l, next_id, prompt, prompt, r.max_new_tokens});
                stamp(kv, live.back(), prompt, true);
            } else {
                TIER_CHECK(l.error() == errc::no_memory || l.error() == errc::invalid_request);
                TIER_CHECK(l.error() != errc::invalid_request || prompt == 0 ||
                           prompt >= max_tokens);
            }
            ++next_id;
        } else if (op < 4) {
            live_lease& l = pick();
            const std::uint32_t want = std::min(max_tokens, l.used + 1 + in.u8() % 32);
            const auto g = kv.extend(l.handle, want);
            if (g) {
                TIER_CHECK(stamp(kv, l, l.used, false));  // the old tokens survived
                l.used = want;
                stamp(kv, l, want, true);
            } else {
                TIER_CHECK(g.error() == errc::no_memory);
            }
        } else if (op == 4) {
            live_lease& l = pick();
            TIER_CHECK(kv.release(l.handle, l.used - std::min(l.used, l.prompt)).has_value());
            TIER_CHECK(!kv.is_live(l.handle));
            l = live.back();
            live.pop_back();
        } else if (op == 5) {
            live_lease& l = pick();
            TIER_CHECK(kv.abandon(l.handle).has_value());
            l = live.back();
            live.pop_back();
        } else if (op == 6) {
            live_lease& l = pick();
            const odma::tier from = *kv.tier_of(l.handle);
            const auto moved = kv.move(l.handle, odma::other(from));
            if (moved) {
                ++tier_moves;
                TIER_CHECK(*kv.tier_of(l.handle) == odma::other(from));
            } else {
                TIER_CHECK(moved.error() == errc::no_memory ||
                           moved.error() == errc::invalid_request);
                TIER_CHECK(*kv.tier_of(l.handle) == from);
            }
        } else if (op == 7) {
            const std::uint64_t budget = std::uint64_t(in.u16()) * bpt;
            const std::uint64_t moved = kv.rebalance(budget);
            TIER_CHECK(moved <= budget);
            tier_moves += moved > 0;
        } else {
            // A swap round trip: out to host memory, back in (wherever there is room).
            live_lease& l = pick();
            const std::uint32_t generated = l.used > l.prompt ? l.used - l.prompt : 0;
            const odma::request original{l.id, l.prompt, l.max_new};
            // resume() re-admits only what is left to generate within max_tokens.
            if (generated >= l.max_new || l.used >= max_tokens) continue;
            auto saved = odma::swap_out(kv, l.handle, original, generated);
            TIER_CHECK(saved.has_value());
            auto back = odma::swap_in(kv, *saved);
            if (back) {
                l.handle = *back;
                TIER_CHECK(stamp(kv, l, l.used, false));
                ++swaps;
            } else {
                TIER_CHECK(back.error() == errc::no_memory);
                l = live.back();
                live.pop_back();
            }
        }
        verify_all();
    }
    for (const auto& l : live)
        TIER_CHECK(kv.release(l.handle, 0).has_value());
    TIER_CHECK(kv.check().has_value());
    TIER_CHECK(kv.stats().live_leases == 0);
    TIER_CHECK(fast.stats().free_bytes == fast.stats().arena_bytes);
    TIER_CHECK(slow.stats().free_bytes == slow.stats().arena_bytes);
}

}  // namespace

void run_tiered(byte_reader& in) {
    using balanced = odma::tier_policies::balanced<odma::predict::oracle>;
    if (in.u8() % 2 == 0)
        run_with<odma::tier_policies::static_spill>(
            in, [](byte_reader&) { return odma::tier_policies::static_spill{}; });
    else
        run_with<balanced>(in, [](byte_reader& r) {
            return balanced(odma::predict::oracle{}, (r.u8() % 11) / 10.0);
        });
}

void print_tiered_totals() {
    std::fprintf(stderr,
                 "odma fuzz: tiered mode: %llu operations, %llu tier moves, %llu swap round "
                 "trips\n",
                 static_cast<unsigned long long>(tier_operations.load()),
                 static_cast<unsigned long long>(tier_moves.load()),
                 static_cast<unsigned long long>(swaps.load()));
}

}  // namespace odma_fuzz
