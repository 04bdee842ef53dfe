// odma against general-purpose allocators on the same size sequence.
//
// Sizes: the requests of data/azure2023_conv.csv in trace order (prompt + generated tokens,
// clipped to 4,096 in all), times bytes per token: 57,344 (DeepSeek-R1-Distill-Qwen-7B, the
// real KV size: 57 MB per average request) and 64 (scaled down, so requests fall into the
// peers' small and medium size classes). 16 requests stay live; each iteration frees a
// pseudo-randomly chosen one and allocates the next request of the trace (the same victims and
// sizes for every allocator).
//
//   lifecycle  allocate the request's final size, later free it. odma: admit with the constant
//              predictor and max_new_tokens = the true generated length, so it reserves
//              exactly prompt + generated tokens, like malloc; release.
//   grow16     allocate the prompt, then grow by 16-token chunks to the final length, then
//              free. Peers: malloc + realloc per chunk. odma: admit with the oracle told a
//              noisy length (x0.5..1.5), extend per chunk (in the reservation, in place or
//              migrated), release. Only at 64 bytes per token: a migration copies the tokens.
//
// What each figure includes: odma places regions in an arena reserved up front and never
// touches the memory (no system calls, no page faults), except to copy a migrating lease.
// The peers do their own bookkeeping and whatever system calls they need (glibc serves
// requests above 32 MiB with mmap/munmap, one pair per request), but nothing here writes to
// the memory either, so no first-touch page faults are counted for anyone; realloc may copy.
//
// This source builds one executable per malloc, because mimalloc and jemalloc (Debian
// builds) replace malloc/free for the whole process when linked: odma_bench_peers (glibc),
// odma_bench_peers_mimalloc, odma_bench_peers_jemalloc. Each prints which malloc it runs.
#include "bench_support.hpp"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#if defined(ODMA_PEER_MIMALLOC)
#include <mimalloc.h>
#elif defined(ODMA_PEER_JEMALLOC)
#include <jemalloc/jemalloc.h>
#endif

namespace {

constexpr std::uint32_t max_tokens = 4096;
constexpr std::uint32_t live = 16;
constexpr std::uint32_t chunk = 16;

std::string malloc_name() {
#if defined(ODMA_PEER_MIMALLOC)
    return "mimalloc " + std::to_string(mi_version());
#elif defined(ODMA_PEER_JEMALLOC)
    const char* version = nullptr;
    std::size_t len = sizeof(version);
    mallctl("version", &version, &len, nullptr, 0);
    return std::string("jemalloc ") + (version ? version : "?");
#else
    return "glibc malloc";
#endif
}

/// The size sequence and the victims, shared by every allocator.
struct sequence {
    std::vector<odma_bench::sized_request> requests = odma_bench::azure_requests(max_tokens);
    std::vector<std::uint32_t> victims;
    sequence() {
        std::mt19937 rng(11);
        victims.resize(1 << 16);
        for (auto& v : victims)
            v = rng() % live;
    }
};
const sequence& seq() {
    static const sequence s;
    return s;
}

// --- peers: malloc / realloc / free -----------------------------------------------------------

void malloc_lifecycle(benchmark::State& state) {
    const auto bpt = std::size_t(state.range(0));
    const auto& s = seq();
    std::vector<void*> held(live, nullptr);
    std::size_t next = 0, turn = 0;
    auto allocate = [&] {
        void* p = std::malloc(s.requests[next++ % s.requests.size()].total() * bpt);
        if (!p) std::abort();
        return p;
    };
    for (auto& h : held)
        h = allocate();
    for (auto _ : state) {
        void*& victim = held[s.victims[turn++ & (s.victims.size() - 1)]];
        std::free(victim);
        victim = allocate();
        benchmark::DoNotOptimize(victim);
    }
    for (void* p : held)
        std::free(p);
    state.SetItemsProcessed(state.iterations());
}

void malloc_grow16(benchmark::State& state) {
    const auto bpt = std::size_t(state.range(0));
    const auto& s = seq();
    struct slot {
        void* p = nullptr;
        std::uint32_t used = 0, target = 0;
    };
    std::vector<slot> held(live);
    std::size_t next = 0, turn = 0, reallocs = 0;
    auto start = [&](slot& h) {
        const auto& r = s.requests[next++ % s.requests.size()];
        h = {std::malloc(r.prompt * bpt), r.prompt, r.total()};
        if (!h.p) std::abort();
    };
    for (auto& h : held)
        start(h);
    for (auto _ : state) {
        // One chunk for the visited request; a finished one is freed and replaced.
        slot& h = held[s.victims[turn++ & (s.victims.size() - 1)]];
        if (h.used >= h.target) {
            std::free(h.p);
            start(h);
        } else {
            h.used = std::min(h.target, h.used + chunk);
            h.p = std::realloc(h.p, h.used * bpt);
            if (!h.p) std::abort();
            ++reallocs;
        }
        benchmark::DoNotOptimize(h.p);
    }
    for (auto& h : held)
        std::free(h.p);
    state.SetItemsProcessed(state.iterations());
}

// --- odma -------------------------------------------------------------------------------------

using static_kv =
    odma::allocator<odma::predict::constant, odma::bucket::fixed, odma::backing::host>;
using oracle_kv = odma::allocator<odma::predict::oracle, odma::bucket::fixed, odma::backing::host>;

/// Room for `live` requests of up to max_tokens, and half as much again against fragmentation.
template <class Allocator, class Predictor>
std::unique_ptr<Allocator> make_kv(std::size_t bpt) {
    const odma::config cfg{
        .bytes_per_token = bpt, .max_tokens = max_tokens, .safety_pool_fraction = 0.0};
    return std::make_unique<Allocator>(
        cfg, Predictor{}, odma::bucket::fixed::geometric(16, max_tokens),
        odma::backing::host(std::size_t(live) * max_tokens * 3 / 2 * bpt));
}

void odma_lifecycle(benchmark::State& state) {
    const auto bpt = std::size_t(state.range(0));
    const auto& s = seq();
    auto kv = make_kv<static_kv, odma::predict::constant>(bpt);
    std::vector<odma::lease> held(live);
    std::size_t next = 0, turn = 0;
    auto admit = [&] {
        const auto& r = s.requests[next++ % s.requests.size()];
        // max_new_tokens = the true length: the constant predictor reserves exactly the request.
        auto l = kv->admit({.id = next, .prompt_tokens = r.prompt, .max_new_tokens = r.generated});
        if (!l) std::abort();  // the arena is sized so that this cannot happen
        return *l;
    };
    for (auto& h : held)
        h = admit();
    for (auto _ : state) {
        odma::lease& victim = held[s.victims[turn++ & (s.victims.size() - 1)]];
        kv->release(victim, 0);
        victim = admit();
        benchmark::DoNotOptimize(victim);
    }
    state.SetItemsProcessed(state.iterations());
}

void odma_grow16(benchmark::State& state) {
    const auto bpt = std::size_t(state.range(0));
    const auto& s = seq();
    auto kv = make_kv<oracle_kv, odma::predict::oracle>(bpt);
    struct slot {
        odma::lease l;
        std::uint32_t used = 0, target = 0, prompt = 0;
    };
    std::vector<slot> held(live);
    std::mt19937 rng(5);
    std::uniform_real_distribution<double> noise(0.5, 1.5);
    std::size_t next = 0, turn = 0;
    auto start = [&](slot& h) {
        const auto& r = s.requests[next++ % s.requests.size()];
        kv->predictor().tell(next,
                             std::max<std::uint32_t>(1, std::uint32_t(r.generated * noise(rng))));
        auto l = kv->admit({.id = next, .prompt_tokens = r.prompt, .max_new_tokens = 1024});
        if (!l) std::abort();
        h = {*l, r.prompt, r.total(), r.prompt};
    };
    for (auto& h : held)
        start(h);
    for (auto _ : state) {
        slot& h = held[s.victims[turn++ & (s.victims.size() - 1)]];
        if (h.used >= h.target) {
            kv->release(h.l, h.used - h.prompt);
            start(h);
        } else {
            h.used = std::min(h.target, h.used + chunk);
            auto g = kv->extend(h.l, h.used);
            if (!g) std::abort();
            benchmark::DoNotOptimize(g);
        }
    }
    const auto& st = kv->stats();
    state.counters["migrations"] = double(st.migrations);
    state.counters["in_place"] = double(st.in_place_growths);
    state.SetItemsProcessed(state.iterations());
}

}  // namespace

int main(int argc, char** argv) {
    const std::string peer = malloc_name();
    std::printf("malloc in this process: %s\n", peer.c_str());
    const std::string label = ODMA_PEER_LABEL;
    for (const std::int64_t bpt :
         {std::int64_t(64), std::int64_t(odma_bench::r1_qwen7b_bytes_per_token)}) {
        benchmark::RegisterBenchmark("lifecycle/odma", odma_lifecycle)->Arg(bpt);
        benchmark::RegisterBenchmark(("lifecycle/" + label).c_str(), malloc_lifecycle)->Arg(bpt);
    }
    benchmark::RegisterBenchmark("grow16/odma", odma_grow16)->Arg(64);
    benchmark::RegisterBenchmark(("grow16/" + label).c_str(), malloc_grow16)->Arg(64);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::AddCustomContext("malloc", peer);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
