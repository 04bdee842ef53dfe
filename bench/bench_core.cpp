// Hot-path cost of every policy combination, as the number of live leases grows; and the cost
// of each predictor and bucket policy on its own.
//
// Each "<path>/<predictor>/<buckets>/<backing>/<live>" benchmark keeps <live> leases allocated
// (10 ... 100,000) and times one call pattern; a flat row across live counts is the O(1)
// claim. Bytes per token are 64: the allocator never touches the arena except to copy a
// migrating lease, and a small size keeps that copy from hiding the bookkeeping.
//
//   admit_release    admit one request and release it
//   extend_unchanged extend within the reservation (the per-token call of a decode step)
//   extend_in_place  extend one token past the reservation into free space (grows in place)
//   migrate_cycle    admit A, admit B right behind it, extend A past its reservation (B
//                    blocks it, so its 9 live tokens are copied to a new region), release
//                    both: one migration plus two admit_release pairs
//
// And the elastic arena: "resize_1GiB_grow_shrink/constant/fixed/host_vmm/<live>" grows a
// host_vmm arena from 1 GiB to 2 GiB and shrinks it back, per iteration, with <live> leases
// held low in the arena so that none has to move (target: <= 5 ms for one resize).
#include "bench_support.hpp"

#include <benchmark/benchmark.h>

#include <initializer_list>
#include <random>
#include <vector>

namespace {

using odma_bench::fill_live;

constexpr std::size_t bytes_per_token = 64;

/// An allocator of `Combo` whose arena holds `live` leases of up to 600 tokens plus slack.
template <class Combo>
auto make_kv(std::uint32_t live, std::uint32_t max_tokens = 4096) {
    const odma::config cfg{
        .bytes_per_token = bytes_per_token, .max_tokens = max_tokens, .safety_pool_fraction = 0.05};
    const std::size_t tokens = std::size_t(live) * 640 + 4 * std::size_t(max_tokens);
    return Combo::make({cfg, tokens * bytes_per_token, 0});
}

/// The allocator of a "vs live count" benchmark: `state.range(0)` leases admitted and kept.
/// Returns null (and marks the benchmark skipped) when the arena cannot hold them.
template <class Combo>
auto with_live(benchmark::State& state, std::uint32_t max_tokens = 4096) {
    const auto live = static_cast<std::uint32_t>(state.range(0));
    auto kv = make_kv<Combo>(live, max_tokens);
    std::vector<odma::lease> held;
    if (!fill_live(*kv, live, held)) {
        state.SkipWithError("arena too small");
        kv.reset();
    }
    state.counters["live"] = live;
    return kv;
}

template <class Combo>
auto admit_release() {
    return [](benchmark::State& state) {
        auto kv = with_live<Combo>(state);
        if (!kv) return;
        std::uint64_t id = 0;
        for (auto _ : state) {
            odma_test::tell_length(*kv, id, 150);
            auto l = kv->admit({.id = id++, .prompt_tokens = 100, .max_new_tokens = 200});
            benchmark::DoNotOptimize(l);
            kv->release(*l, 150);
        }
    };
}

template <class Combo>
auto extend_unchanged() {
    return [](benchmark::State& state) {
        auto kv = with_live<Combo>(state);
        if (!kv) return;
        odma_test::tell_length(*kv, 7, 1000);
        const auto l = *kv->admit({.id = 7, .prompt_tokens = 100, .max_new_tokens = 1000});
        // Back and forth inside whatever the predictor reserved (paged: the blocks it holds).
        std::uint32_t top = 0;
        if constexpr (requires { kv->region_of(l); })
            top = kv->region_of(l)->capacity;
        else
            top = std::uint32_t(kv->blocks(l)->size()) * kv->config().block_tokens;
        std::uint32_t tokens = 100;
        for (auto _ : state) {
            tokens = tokens == top ? 100 : tokens + 1;
            auto g = kv->extend(l, tokens);
            benchmark::DoNotOptimize(g);
        }
        if (kv->stats().in_place_growths + kv->stats().migrations != 0)
            state.SkipWithError("a growth left the reservation");
    };
}

template <class Combo>
auto extend_in_place() {
    return [](benchmark::State& state) {
        // A long window, so one lease can grow token by token for up to a million calls.
        constexpr std::uint32_t window = 1u << 20;
        auto kv = with_live<Combo>(state, window);
        if (!kv) return;
        std::uint64_t id = 0;
        // max_new_tokens = 1: reserved exactly prompt + 1, so the first extend grows (paged:
        // 16 tokens fill one block, so the first extend appends one).
        auto start = [&] {
            return *kv->admit({.id = ++id, .prompt_tokens = 16, .max_new_tokens = 1});
        };
        odma::lease l = start();
        std::uint32_t tokens = 17;
        for (auto _ : state) {
            if (++tokens > window) {
                kv->release(l, 1);
                l = start();
                tokens = 18;
            }
            auto g = kv->extend(l, tokens);
            benchmark::DoNotOptimize(g);
        }
        const auto& s = kv->stats();
        if (s.migrations != 0 || s.in_place_growths == 0)
            state.SkipWithError("growth was not in place");
    };
}

template <class Combo>
auto migrate_cycle() {
    return [](benchmark::State& state) {
        auto kv = with_live<Combo>(state);
        if (!kv) return;
        std::uint64_t id = 0;
        for (auto _ : state) {
            auto a = kv->admit({.id = ++id, .prompt_tokens = 8, .max_new_tokens = 1});
            auto b = kv->admit({.id = ++id, .prompt_tokens = 8, .max_new_tokens = 1});
            auto g = kv->extend(*a, 10);
            benchmark::DoNotOptimize(g);
            kv->release(*a, 2);
            kv->release(*b, 1);
        }
        if (kv->stats().migrations != std::uint64_t(state.iterations()))
            state.SkipWithError("the extend did not migrate");
    };
}

// --- policies on their own ------------------------------------------------------------------

/// A prompt for predictors that read text (ngram): about 1,100 characters of an instruction.
const std::string& sample_prompt() {
    static const std::string text = [] {
        std::string t;
        const char* sentences[] = {
            "Write a detailed explanation of how a serving engine keeps the key and value "
            "cache of every running request in device memory. ",
            "Compare a contiguous layout with fixed-size blocks, list the costs of each on "
            "memory with poor random access, and give a short example. ",
            "Keep the answer under three paragraphs and end with a summary table. "};
        while (t.size() < 1100)
            for (const char* s : sentences)
                t += s;
        return t;
    }();
    return text;
}

/// Predictor inference: predict() for a request with a prompt text, and observe() when it
/// finishes. Learned predictors first observe 2,000 finished requests, so predict() runs on
/// what they learned, not on their untrained fallback; the oracle holds `pending` told
/// lengths (a hash map lookup).
template <class P>
P warmed_predictor(std::uint32_t pending) {
    P p = odma_test::policy_factory<P>::make({});
    std::mt19937 rng(5);
    for (std::uint32_t i = 0; i < pending; ++i) {
        const odma::request r{.id = i,
                              .prompt_tokens = 1 + std::uint32_t(rng() % 2000),
                              .max_new_tokens = 1000,
                              .prompt_text = sample_prompt()};
        if constexpr (requires { p.tell(1, 1u); })
            p.tell(i, 100 + i % 500);
        else
            p.observe(r, 1 + std::uint32_t(rng() % 800));
    }
    return p;
}

template <class P>
void predictor_costs() {
    const std::string name = odma_test::policy_factory<P>::name;
    benchmark::RegisterBenchmark(("predict/" + name).c_str(), [](benchmark::State& state) {
        const auto pending = static_cast<std::uint32_t>(state.range(0));
        const P p = warmed_predictor<P>(pending);
        std::uint64_t id = 0;
        for (auto _ : state) {
            const odma::request r{.id = id++ % (pending + 1),
                                  .prompt_tokens = 300,
                                  .max_new_tokens = 1000,
                                  .prompt_text = sample_prompt()};
            auto pred = p.predict(r);
            benchmark::DoNotOptimize(pred);
        }
    })->Arg(2000);
    benchmark::RegisterBenchmark(("observe/" + name).c_str(), [](benchmark::State& state) {
        P p = warmed_predictor<P>(2000);
        std::uint64_t id = 1u << 20;
        for (auto _ : state) {
            const odma::request r{.id = id++,
                                  .prompt_tokens = 300,
                                  .max_new_tokens = 1000,
                                  .prompt_text = sample_prompt()};
            if constexpr (requires { p.tell(1, 1u); }) p.tell(r.id, 300);  // oracle: tell first
            p.observe(r, 300);
            benchmark::ClobberMemory();
        }
    });
}

/// Bucket lookup (capacity_for, once per admission and per growth) and recalibration
/// (observe, once per release, amortising the policy's periodic recalibration; and one
/// explicit recalibrate() where the policy has it), for the given variants of the factory.
template <class B>
void bucket_costs(std::initializer_list<std::uint32_t> variants) {
    for (const std::uint32_t variant : variants) {
        const std::string name =
            std::string(odma_test::policy_factory<B>::name) + "#" + std::to_string(variant);
        auto make = [variant] {
            odma_test::build_context c;
            c.cfg.max_tokens = 8192;
            c.variant = variant;
            B b = odma_test::policy_factory<B>::make(c);
            std::mt19937 rng(9);
            for (int i = 0; i < 4096; ++i)  // learned policies calibrate on these
                b.observe(1 + std::uint32_t(rng() % 3000));
            return b;
        };
        benchmark::RegisterBenchmark(("capacity_for/" + name).c_str(),
                                     [make](benchmark::State& state) {
                                         const B b = make();
                                         std::mt19937 rng(3);
                                         std::vector<std::uint32_t> tokens(4096);
                                         for (auto& t : tokens)
                                             t = 1 + rng() % 8192;
                                         std::size_t i = 0;
                                         for (auto _ : state) {
                                             auto c = b.capacity_for(tokens[i++ & 4095]);
                                             benchmark::DoNotOptimize(c);
                                         }
                                         state.counters["buckets"] = double(b.boundaries().size());
                                     });
        benchmark::RegisterBenchmark(("bucket_observe/" + name).c_str(),
                                     [make](benchmark::State& state) {
                                         B b = make();
                                         std::uint32_t t = 0;
                                         for (auto _ : state) {
                                             b.observe(1 + (t++ * 37 & 4095));
                                             benchmark::ClobberMemory();
                                         }
                                     });
        if constexpr (requires(B & b) { b.recalibrate(); })
            benchmark::RegisterBenchmark(("bucket_recalibrate/" + name).c_str(),
                                         [make](benchmark::State& state) {
                                             B b = make();
                                             for (auto _ : state) {
                                                 b.recalibrate();
                                                 benchmark::ClobberMemory();
                                             }
                                         });
    }
}

#ifdef ODMA_HAS_HOST_VMM
/// allocator::resize() by 1 GiB each way on host_vmm with `live` leases that never move: what
/// an engine pays to hand memory back and take it again. One iteration is two resizes.
void resize_costs() {
    benchmark::RegisterBenchmark(
        "resize_1GiB_grow_shrink/constant/fixed/host_vmm",
        [](benchmark::State& state) {
            using kv_t = odma::allocator<odma::predict::constant, odma::bucket::fixed,
                                         odma::backing::host_vmm>;
            constexpr std::size_t gib = std::size_t(1) << 30;
            const odma::config cfg{.bytes_per_token = bytes_per_token,
                                   .max_tokens = 4096,
                                   .safety_pool_fraction = 0.05,
                                   .arena_bytes = gib};
            kv_t kv(cfg, {}, odma::bucket::fixed::powers_of_two(16, 4096),
                    odma::backing::host_vmm(2 * gib, std::size_t(64) << 10));
            const auto live = static_cast<std::uint32_t>(state.range(0));
            std::vector<odma::lease> held;
            if (!fill_live(kv, live, held)) return state.SkipWithError("arena too small");
            for (auto _ : state) {
                const auto grown = kv.resize(2 * gib);
                const auto shrunk = kv.resize(gib);
                if (!grown || !shrunk || shrunk.copied_bytes() != 0)
                    return state.SkipWithError("a resize failed or moved a lease");
            }
            state.counters["live"] = live;
        })
        ->Arg(0)
        ->Arg(1000)
        ->Arg(10000)
        ->Unit(benchmark::kMicrosecond);
}
#endif

}  // namespace

int main(int argc, char** argv) {
    using odma_bench::register_per_combo;
    const odma_test::representative_combos combos;
    register_per_combo(combos, "admit_release", []<class C>() { return admit_release<C>(); });
    register_per_combo(combos, "extend_unchanged", []<class C>() { return extend_unchanged<C>(); });
    register_per_combo(combos, "extend_in_place", []<class C>() { return extend_in_place<C>(); });
    register_per_combo(combos, "migrate_cycle", []<class C>() { return migrate_cycle<C>(); });
#ifdef ODMA_HAS_HOST_VMM
    resize_costs();
#endif
    // The paged baseline: it never migrates, and its in-place growth
    // appends a block every block_tokens tokens.
    const odma_test::paged_combos paged;
    register_per_combo(paged, "admit_release", []<class C>() { return admit_release<C>(); });
    register_per_combo(paged, "extend_unchanged", []<class C>() { return extend_unchanged<C>(); });
    register_per_combo(paged, "extend_in_place", []<class C>() { return extend_in_place<C>(); });
    predictor_costs<odma::predict::constant>();
    predictor_costs<odma::predict::oracle>();
    predictor_costs<odma::predict::ngram>();
    predictor_costs<odma::predict::prompt_quantile>();
    predictor_costs<odma_test::spread_callable>();
    bucket_costs<odma::bucket::fixed>({0, 1, 2, 3});
    bucket_costs<odma::bucket::online_histogram>({12});  // 16 buckets

    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
