// The C interface's cost per call: the same workload (admit + extend by 16-token chunks +
// release, constant predictor, 16 uniform fixed buckets, host backing) through the header-only
// odma::allocator and through odma_c.h (libodma_c.so: a PLT call, the handle and pointer
// checks, the lease conversion and one virtual call), side by side in one process.
//
// Figures:
//   1. Google Benchmark rows capi/{cpp,c}/<live> (time per operation).
//   2. After them, an interleaved A/B loop (--odma_rounds=R rounds, default 15, of
//      --odma_ops=N operations, default 200000, alternating which goes first; thread CPU
//      time): the median ns per operation of each and the median per-round difference, which
//      is the C interface's overhead per call.
// Both paths must make the same decisions: a verification pass compares every outcome first.
#include "bench_support.hpp"

#include "odma_c.h"

#include <benchmark/benchmark.h>

#include <odma/odma.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using cpp_allocator =
    odma::allocator<odma::predict::constant, odma::bucket::fixed, odma::backing::host>;

constexpr std::uint32_t max_tokens = 8192;
constexpr std::size_t bytes_per_token = 64;
constexpr std::uint32_t chunk = 16;
constexpr std::uint32_t max_new_tokens = 1024;
constexpr std::uint32_t buckets = 16;

std::size_t arena_bytes(std::uint32_t live) {
    return std::size_t(live) * 2600 * bytes_per_token;
}

/// The header-only allocator behind the same three calls.
struct cpp_kv {
    using lease = odma::lease;
    cpp_allocator kv;
    explicit cpp_kv(std::uint32_t live)
        : kv(odma::config{.bytes_per_token = bytes_per_token,
                          .max_tokens = max_tokens,
                          .safety_pool_fraction = 0.10},
             odma::predict::constant{}, odma::bucket::fixed::uniform(buckets, max_tokens),
             odma::backing::host(arena_bytes(live))) {}
    bool admit(std::uint64_t id, std::uint32_t prompt, lease& out) {
        auto l = kv.admit({.id = id, .prompt_tokens = prompt, .max_new_tokens = max_new_tokens});
        if (!l) return false;
        out = *l;
        return true;
    }
    int extend(const lease& l, std::uint32_t total) {
        auto g = kv.extend(l, total);
        return g ? int(*g) : -1;
    }
    void release(const lease& l, std::uint32_t generated) { (void)kv.release(l, generated); }
};

/// The C interface, configured to the same policies.
struct c_kv {
    using lease = odma_lease;
    odma_allocator* kv = nullptr;
    explicit c_kv(std::uint32_t live) {
        odma_config c;
        odma_config_init(&c);
        c.arena_bytes = arena_bytes(live);
        c.bytes_per_token = bytes_per_token;
        c.max_tokens = max_tokens;
        c.safety_pool_fraction = 0.10;
        c.predictor = ODMA_PREDICT_CONSTANT;  // constant_tokens 0: max_new_tokens
        c.buckets = ODMA_BUCKETS_UNIFORM;
        c.bucket_count = buckets;
        c.backing = ODMA_BACKING_HOST;
        if (odma_create(&c, &kv) != ODMA_OK) {
            std::fprintf(stderr, "odma_create: %s\n", odma_last_error());
            std::abort();
        }
    }
    c_kv(const c_kv&) = delete;
    c_kv& operator=(const c_kv&) = delete;
    ~c_kv() { odma_destroy(kv); }
    bool admit(std::uint64_t id, std::uint32_t prompt, lease& out) {
        const odma_request r{id, prompt, max_new_tokens, nullptr, 0, 0};
        return odma_admit(kv, &r, &out) == ODMA_OK;
    }
    int extend(const lease& l, std::uint32_t total) {
        odma_growth g{};
        return odma_extend(kv, l, total, &g) == ODMA_OK ? int(g) : -1;
    }
    void release(const lease& l, std::uint32_t generated) { (void)odma_release(kv, l, generated); }
};

struct workload {
    std::vector<odma_bench::sized_request> requests;
    std::vector<std::uint32_t> visits;
    explicit workload(std::uint32_t live) : requests(odma_bench::azure_requests(max_tokens)) {
        std::mt19937 rng(42);
        visits.resize(1 << 20);
        for (auto& v : visits)
            v = rng() % live;
    }
};

/// `live` places; each operation visits one and admits, extends by a chunk or releases.
template <class KV>
struct driver {
    struct place {
        typename KV::lease lease{};
        std::uint32_t used = 0, target = 0;
        bool busy = false;
    };
    const workload* w;
    KV kv;
    std::vector<place> places;
    std::size_t next_request = 0, next_visit = 0;

    driver(const workload& wl, std::uint32_t live) : w(&wl), kv(live), places(live) {}

    int step() {
        place& p = places[w->visits[next_visit++ & (w->visits.size() - 1)]];
        if (!p.busy) {
            const auto& r = w->requests[next_request++ % w->requests.size()];
            if (!kv.admit(next_request, r.prompt, p.lease)) return 1;
            p.used = r.prompt;
            p.target = r.total();
            p.busy = true;
            return 2;
        }
        if (p.used >= p.target) {
            kv.release(p.lease, p.target);
            p.busy = false;
            return 3;
        }
        p.used = std::min(p.target, p.used + chunk);
        return 4 + kv.extend(p.lease, p.used);
    }
    void fill() {
        for (std::size_t i = 0; i < places.size() * 4; ++i)
            (void)step();
    }
};

const workload& shared_workload(std::uint32_t live) {
    static std::vector<std::unique_ptr<workload>> cache;
    static std::vector<std::uint32_t> keys;
    for (std::size_t i = 0; i < keys.size(); ++i)
        if (keys[i] == live) return *cache[i];
    keys.push_back(live);
    cache.push_back(std::make_unique<workload>(live));
    return *cache.back();
}

template <class KV>
void bm(benchmark::State& state) {
    const auto live = static_cast<std::uint32_t>(state.range(0));
    driver<KV> d(shared_workload(live), live);
    d.fill();
    for (auto _ : state)
        benchmark::DoNotOptimize(d.step());
    state.SetItemsProcessed(std::int64_t(state.iterations()));
}
BENCHMARK(bm<cpp_kv>)->Name("capi/cpp")->Arg(64)->Arg(1024);
BENCHMARK(bm<c_kv>)->Name("capi/c")->Arg(64)->Arg(1024);

double thread_seconds() {
    timespec t{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return double(t.tv_sec) + double(t.tv_nsec) * 1e-9;
}

template <class KV>
double ns_per_op(std::uint32_t live, std::size_t ops) {
    driver<KV> d(shared_workload(live), live);
    d.fill();
    std::uint64_t sink = 0;
    const double t0 = thread_seconds();
    for (std::size_t i = 0; i < ops; ++i)
        sink += std::uint64_t(d.step());
    const double t1 = thread_seconds();
    benchmark::DoNotOptimize(sink);
    return (t1 - t0) * 1e9 / double(ops);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

bool same_decisions(std::uint32_t live, std::size_t ops) {
    driver<cpp_kv> a(shared_workload(live), live);
    driver<c_kv> b(shared_workload(live), live);
    for (std::size_t i = 0; i < ops; ++i)
        if (a.step() != b.step()) return false;
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t rounds = 15, ops = 200000;
    std::vector<char*> rest;
    for (int i = 0; i < argc; ++i) {
        if (std::strncmp(argv[i], "--odma_rounds=", 14) == 0)
            rounds = std::strtoull(argv[i] + 14, nullptr, 10);
        else if (std::strncmp(argv[i], "--odma_ops=", 11) == 0)
            ops = std::strtoull(argv[i] + 11, nullptr, 10);
        else
            rest.push_back(argv[i]);
    }
    for (const std::uint32_t live : {64u, 1024u})
        if (!same_decisions(live, 100000)) {
            std::fprintf(stderr, "capi and cpp made different decisions (live %u)\n", live);
            return 1;
        }
    int n = int(rest.size());
    benchmark::Initialize(&n, rest.data());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();

    if (rounds == 0) return 0;
    std::printf("\ninterleaved A/B, %zu rounds of %zu operations (thread CPU time):\n", rounds,
                ops);
    std::printf("%6s %12s %12s %14s\n", "live", "cpp ns/op", "c ns/op", "c - cpp ns/op");
    for (const std::uint32_t live : {64u, 1024u}) {
        std::vector<double> cpp, c, diff;
        for (std::size_t r = 0; r < rounds; ++r) {
            double a = 0, b = 0;
            if (r % 2) {
                a = ns_per_op<cpp_kv>(live, ops);
                b = ns_per_op<c_kv>(live, ops);
            } else {
                b = ns_per_op<c_kv>(live, ops);
                a = ns_per_op<cpp_kv>(live, ops);
            }
            cpp.push_back(a);
            c.push_back(b);
            diff.push_back(b - a);
        }
        std::printf("%6u %12.1f %12.1f %14.1f\n", live, median(cpp), median(c), median(diff));
    }
    return 0;
}
