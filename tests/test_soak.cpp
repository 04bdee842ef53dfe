// Soak: a long replay that must end with nothing live, nothing leaked, and fragmentation that
// does not creep up over time. One run per library policy combination.
//
// Requests: the Azure 2023 conversation trace (data/azure2023_conv.csv, 19,366 requests),
// resampled with a fixed seed to ODMA_SOAK_REQUESTS requests (default 1,000,000; 200,000 under
// sanitizers, which are 10-30x slower; a twentieth of that for on-demand backings, whose
// commits are system calls). Serving loop: continuous batching. Each step admits
// waiting requests while there is room (at most 256 running), then every running request
// generates 16 tokens (one extend per request per step, the granularity of a 16-token decode
// chunk) and is released when it reaches its true length. A request whose growth finds no room
// is preempted (abandoned) and comes back first, through resume(), with what it had generated;
// every request finishes. Predictors that can be told lengths (oracle) are told a noisy one
// (true x 0.5..1.5), so growth in place, migrations, the safety pool and preemption all happen.
// The loop drives the allocator only through the KvAllocator interface, and on on-demand
// backings it also resizes the arena: every 64 steps the arena shrinks to three quarters of the
// backing (moving leases out of the cut within a 1 MiB copy budget; when leases are in the way,
// as far as they allow) or grows back, with check() after each resize.
//
// Bytes per token are 64, not 57,344: the allocator never touches the arena, so only the token
// geometry matters, and a small arena keeps the sanitizer builds light.
#include <odma/kv_allocator.hpp>
#include <odma/odma.hpp>
#include <odma/paged.hpp>
#include <odma/support/random.hpp>

#include <odma_internal/combos.hpp>
#include <odma_internal/trace.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <numeric>
#include <string>
#include <vector>

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr std::size_t default_requests = 200'000;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr std::size_t default_requests = 200'000;
#else
constexpr std::size_t default_requests = 1'000'000;
#endif
#else
constexpr std::size_t default_requests = 1'000'000;
#endif

std::size_t soak_requests() {
    if (const char* env = std::getenv("ODMA_SOAK_REQUESTS"))
        return std::size_t(std::strtoull(env, nullptr, 10));
    return default_requests;
}

constexpr std::uint32_t max_tokens = 8192;
constexpr std::uint32_t max_new_tokens = 1024;
constexpr std::uint32_t arena_tokens = 1u << 17;  // about 96 average requests
constexpr std::uint32_t chunk = 16;
constexpr std::size_t max_running = 256;

struct sized_request {
    std::uint32_t prompt, generated;
};

const std::vector<sized_request>& trace_lengths() {
    static const std::vector<sized_request> lengths = [] {
        const auto t =
            odma::tools::load_azure(std::string(ODMA_TEST_DATA_DIR) + "/azure2023_conv.csv");
        std::vector<sized_request> out;
        for (const auto& r : t.requests) {
            // Clip to the engine's window: at most max_tokens in all, at least one of each,
            // fewer new tokens than max_new_tokens.
            const std::uint32_t prompt = std::clamp<std::uint32_t>(r.prompt_tokens, 1, 6000);
            const std::uint32_t generated = std::clamp<std::uint32_t>(
                r.output_tokens, 1, std::min(max_tokens - prompt, max_new_tokens - 1));
            out.push_back({prompt, generated});
        }
        return out;
    }();
    return lengths;
}

template <class... Cs>
std::tuple<Cs...> as_tuple(odma_test::type_list<Cs...>);
// Every policy at least once, and the paged baseline.
using soaked_combos = decltype(as_tuple(
    odma_test::concat<odma_test::representative_combos, odma_test::paged_combos>{}));

}  // namespace

TEST_CASE_TEMPLATE_DEFINE("soak: a long trace replay ends empty with stable fragmentation", Combo,
                          soak_test) {
    // On-demand backings (host_vmm) make system calls as leases grow and shrink: a twentieth
    // of the requests keeps them to a couple of seconds.
    using backing_type = typename Combo::allocator_type::backing_type;
    const std::size_t all_requests =
        soak_requests() / (odma::CommittingBacking<backing_type> ? 20 : 1);
    const auto& lengths = trace_lengths();
    REQUIRE(lengths.size() > 10000);

    // Half the requests with strictly contiguous leases, half with leases of up to 4 runs
    // (the paged baseline ignores max_runs and simply runs twice).
    for (const std::uint32_t max_runs : {1u, 4u}) {
        CAPTURE(max_runs);
        const std::size_t requests = all_requests / 2;
        odma::config cfg{.bytes_per_token = 64,
                         .max_tokens = max_tokens,
                         .safety_pool_fraction = 0.10,
                         .overflow_risk = 0.05,
                         .max_runs = max_runs};
        auto kv_ptr = Combo::make({cfg, std::size_t(arena_tokens) * cfg.bytes_per_token, 1});
        auto& kv = *kv_ptr;
        static_assert(odma::KvAllocator<std::remove_cvref_t<decltype(kv)>>);

        struct running {
            odma::lease lease;
            std::uint64_t id;
            std::uint32_t used, target, prompt;
        };
        std::vector<running> batch;
        batch.reserve(max_running);
        std::deque<running> preempted_queue;  // lease empty; used = tokens held when preempted
        odma::support::splitmix64 rng(2024);
        auto noise = [&] { return 0.5 + rng.unit(); };  // uniform in [0.5, 1.5)
        const auto original = [](const running& r) {
            return odma::request{
                .id = r.id, .prompt_tokens = r.prompt, .max_new_tokens = max_new_tokens};
        };

        std::size_t submitted = 0, finished = 0, preempted = 0, resumed = 0, steps = 0;
        std::vector<double> fragmentation;  // 400 samples over the run
        const std::size_t sample_every = std::max<std::size_t>(1, requests / 400);
        std::size_t next_sample = sample_every;
        const auto start = std::chrono::steady_clock::now();
        while (finished < requests) {
            // Preempted requests come back first, with the tokens they had generated.
            while (!preempted_queue.empty() && batch.size() < max_running) {
                running r = preempted_queue.front();
                odma_test::tell_length(kv, r.id, std::max<std::uint32_t>(1, r.target - r.used));
                auto l = kv.resume(original(r), r.used - r.prompt);
                if (!l) {
                    REQUIRE(l.error() == odma::errc::no_memory);
                    odma_test::forget_length(kv, r.id);
                    break;
                }
                r.lease = *l;
                batch.push_back(r);
                preempted_queue.pop_front();
                ++resumed;
            }
            // Then new ones while there is room; one that does not fit waits for the next step.
            while (preempted_queue.empty() && submitted < requests && batch.size() < max_running) {
                const sized_request s = lengths[rng.below(lengths.size())];
                const std::uint64_t id = submitted;
                odma_test::tell_length(
                    kv, id, std::max<std::uint32_t>(1, std::uint32_t(s.generated * noise())));
                auto l = kv.admit(
                    {.id = id, .prompt_tokens = s.prompt, .max_new_tokens = max_new_tokens});
                if (!l) {
                    REQUIRE(l.error() == odma::errc::no_memory);
                    odma_test::forget_length(kv, id);
                    break;
                }
                batch.push_back({*l, id, s.prompt, s.prompt + s.generated, s.prompt});
                ++submitted;
            }
            REQUIRE_FALSE(batch.empty());
            // One decode chunk for every running request.
            for (std::size_t i = 0; i < batch.size();) {
                running& r = batch[i];
                const std::uint32_t next = std::min(r.target, r.used + chunk);
                bool done = next == r.target;
                if (auto g = kv.extend(r.lease, next); !g) {
                    REQUIRE(g.error() == odma::errc::no_memory);
                    REQUIRE(kv.abandon(r.lease));
                    odma_test::forget_length(kv, r.id);
                    r.lease = odma::lease{};
                    preempted_queue.push_back(r);
                    ++preempted;
                    done = false;
                } else if (r.used = next; done) {
                    REQUIRE(kv.release(r.lease, r.used - r.prompt));
                    ++finished;
                } else {
                    ++i;
                    continue;
                }
                batch[i] = batch.back();
                batch.pop_back();
            }
            ++steps;
            if constexpr (requires { kv.resize(std::size_t{}, std::size_t{}); }) {
                if (steps % 64 == 0) {
                    // When leases are in the way, the engine takes what can be freed now.
                    const std::size_t whole = kv.stats().max_arena_bytes;
                    const std::size_t budget = std::size_t(1) << 20;
                    const auto r = kv.resize(steps % 128 == 0 ? whole / 4 * 3 : whole, budget);
                    if (!r) {
                        REQUIRE(r.error() == odma::errc::no_memory);
                        REQUIRE(kv.resize(r.arena_bytes() - r.freeable_bytes(), budget));
                    }
                    REQUIRE(kv.check());
                }
            }
            if (finished >= next_sample) {
                fragmentation.push_back(kv.stats().external_fragmentation);
                next_sample += sample_every;
                if (fragmentation.size() % 50 == 0) REQUIRE(kv.check());
            }
        }
        REQUIRE(batch.empty());
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

        // Nothing live, nothing reserved, the general area one extent again.
        const auto s = kv.stats();
        CHECK(s.live_leases == 0);
        CHECK(s.used_bytes == 0);
        CHECK(s.reserved_bytes == 0);
        CHECK(s.free_bytes == s.arena_bytes);
        CHECK(s.external_fragmentation == 0.0);
        CHECK(s.largest_free_bytes == s.arena_bytes - s.safety_pool_bytes);
        CHECK(kv.check());
        if constexpr (requires { kv.backing().report(); })  // every migration charged
            CHECK(kv.backing().report().migration.bytes == s.migrated_bytes);
        if constexpr (requires { kv.backing().counters(); }) {  // nothing left mapped
            const auto& c = kv.backing().counters();
            CHECK(c.committed_bytes == 0);
            CHECK(c.mapped_bytes == 0);
            CHECK(c.contract_violations == 0);
            CHECK(c.failed_commits == 0);
        }

        // Fragmentation is stable: after a warm-up tenth, the last quarter's mean is no higher than
        // the first quarter's plus 0.05.
        REQUIRE(fragmentation.size() >= 40);
        const std::size_t warm = fragmentation.size() / 10;
        const std::size_t quarter = (fragmentation.size() - warm) / 4;
        auto mean = [&](std::size_t from) {
            return std::accumulate(fragmentation.begin() + std::ptrdiff_t(from),
                                   fragmentation.begin() + std::ptrdiff_t(from + quarter), 0.0) /
                   double(quarter);
        };
        const double first = mean(warm), last = mean(fragmentation.size() - quarter);
        std::printf(
            "  soak %-26s max_runs %u: %zu requests (%zu preemptions) in %zu steps, %.2f s; "
            "%llu migrations, %llu appended runs, "
            "%llu in place, %llu resizes; fragmentation first quarter %.3f, last quarter %.3f\n",
            Combo::name().c_str(), max_runs, finished, preempted, steps, seconds,
            static_cast<unsigned long long>(s.migrations),
            static_cast<unsigned long long>(s.appended_runs),
            static_cast<unsigned long long>(s.in_place_growths),
            static_cast<unsigned long long>(s.resizes), first, last);
        CHECK(last <= first + 0.05);
        CHECK(finished == requests);
        CHECK(preempted_queue.empty());
        CHECK(s.admissions == requests + resumed);
        CHECK(s.resumptions == resumed);
        CHECK(s.releases == requests + preempted);  // abandon() counts as a release too
    }
}
TEST_CASE_TEMPLATE_APPLY(soak_test, soaked_combos);
