// Zero overhead: odma::allocator<predict::constant, bucket::fixed, backing::host> against the
// same allocator written by hand with the policies inlined (hand_allocator.hpp), on the same
// operation sequence, in one process.
//
// Workload: `live` requests of the Azure 2023 conversation trace stay in flight; each
// operation picks one (a fixed pseudo-random sequence) and either admits a new request into an
// empty place, extends a running one by a 16-token chunk, or releases one that reached its
// length. Both allocators must make the same placement decisions; a verification pass compares
// every result and offset before anything is timed.
//
// Three figures:
//   1. Google Benchmark rows zero_overhead/{odma,hand}/<live> (use --benchmark_repetitions and
//      --benchmark_enable_random_interleaving, read the medians).
//   2. After them, an interleaved A/B loop (--odma_ratio_rounds=R rounds, default 21, of
//      --odma_ops=N operations, default 200000, alternating which goes first; thread CPU
//      time) that prints the median time per operation of each and the median of the
//      per-round ratios, once with odma constructed first and once with the hand-written one
//      first, and the geometric mean of the two (the instance built first can be faster).
//      --odma_calibrate=1 adds hand/hand and odma/odma runs of the same loop: how far from
//      1.000 the method itself lands.
//   3. --odma_callgrind=odma|hand runs N operations between CALLGRIND_START/STOP
//      (valgrind --tool=callgrind --instr-atstart=no): instruction counts, repeatable on a
//      noisy machine. bench/callgrind_ratio.sh runs both and prints the ratio.
#include "bench_support.hpp"
#include "hand_allocator.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define ODMA_HAVE_CALLGRIND 1
#else
#define ODMA_HAVE_CALLGRIND 0
#endif

namespace {

using odma_kv = odma::allocator<odma::predict::constant, odma::bucket::fixed, odma::backing::host>;
using hand_kv = odma_bench::hand_allocator;

constexpr std::uint32_t max_tokens = 8192;
constexpr std::size_t bytes_per_token = 64;  // never touched except by migrations
constexpr std::uint32_t chunk = 16;
constexpr std::uint32_t max_new_tokens = 1024;  // the engine's limit; constant reserves it all

const odma::config cfg{
    .bytes_per_token = bytes_per_token, .max_tokens = max_tokens, .safety_pool_fraction = 0.10};

std::size_t arena_bytes(std::uint32_t live) {
    return std::size_t(live) * 2600 * bytes_per_token;  // mean request ~2,200 tokens reserved
}

std::unique_ptr<odma_kv> make_odma(std::uint32_t live) {
    return std::make_unique<odma_kv>(cfg, odma::predict::constant{},
                                     odma::bucket::fixed::uniform(16, max_tokens),
                                     odma::backing::host(arena_bytes(live)));
}
std::unique_ptr<hand_kv> make_hand(std::uint32_t live) {
    const auto b = odma::bucket::fixed::uniform(16, max_tokens).boundaries();
    return std::make_unique<hand_kv>(cfg, std::vector<std::uint32_t>(b.begin(), b.end()),
                                     arena_bytes(live));
}

/// The requests and the order in which places are visited; shared by both allocators.
struct workload {
    std::vector<odma_bench::sized_request> requests;
    std::vector<std::uint32_t> visits;  // place index per operation
    explicit workload(std::uint32_t live) : requests(odma_bench::azure_requests(max_tokens)) {
        std::mt19937 rng(42);
        visits.resize(1 << 20);
        for (auto& v : visits)
            v = rng() % live;
    }
};

/// Requests in flight, one per place, and the cursor into the workload.
struct driver {
    struct place {
        odma::lease lease;
        std::uint32_t used = 0, target = 0;
        bool busy = false;
    };
    const workload* w;
    std::vector<place> places;
    std::size_t next_request = 0, next_visit = 0;

    driver(const workload& wl, std::uint32_t live) : w(&wl), places(live) {}

    /// One operation; returns a value that depends on the outcome, for the equality check.
    template <class Allocator>
    std::uint64_t step(Allocator& kv) {
        place& p = places[w->visits[next_visit++ & (w->visits.size() - 1)]];
        if (!p.busy) {
            const auto& r = w->requests[next_request++ % w->requests.size()];
            auto l = kv.admit(
                {.id = next_request, .prompt_tokens = r.prompt, .max_new_tokens = max_new_tokens});
            if (!l) return 1;
            p = {*l, r.prompt, r.total(), true};
            return 2;
        }
        if (p.used >= p.target) {
            kv.release(p.lease, p.target);
            p.busy = false;
            return 3;
        }
        p.used = std::min(p.target, p.used + chunk);
        auto g = kv.extend(p.lease, p.used);
        return g ? 4 + std::uint64_t(*g) : 8;
    }

    template <class Allocator>
    void fill(Allocator& kv) {
        for (std::size_t i = 0; i < places.size() * 4; ++i)
            (void)step(kv);
    }
};

std::size_t offset_of(const odma_kv& kv, const odma::lease& l) {
    return kv.region_of(l)->offset_tokens;
}
std::size_t offset_of(const hand_kv& kv, const odma::lease& l) {
    return kv.offset_of(l);
}

/// Runs both allocators side by side for `ops` operations and compares every outcome and
/// every region's offset. Returns false on the first difference.
bool same_decisions(std::uint32_t live, std::size_t ops) {
    const workload w(live);
    auto a = make_odma(live);
    auto b = make_hand(live);
    driver da(w, live), db(w, live);
    for (std::size_t i = 0; i < ops; ++i) {
        const std::size_t visit = da.next_visit & (w.visits.size() - 1);
        if (da.step(*a) != db.step(*b)) return false;
        const auto& pa = da.places[w.visits[visit]];
        const auto& pb = db.places[w.visits[visit]];
        if (pa.busy != pb.busy) return false;
        if (pa.busy && offset_of(*a, pa.lease) != offset_of(*b, pb.lease)) return false;
    }
    return true;
}

template <class Allocator, class Make>
void run_zero_overhead(benchmark::State& state, Make make) {
    const auto live = static_cast<std::uint32_t>(state.range(0));
    const workload w(live);
    auto kv = make(live);
    driver d(w, live);
    d.fill(*kv);
    std::uint64_t sum = 0;
    for (auto _ : state)
        sum += d.step(*kv);
    benchmark::DoNotOptimize(sum);
    state.counters["sizeof"] = double(sizeof(Allocator));
}

// --- interleaved A/B ------------------------------------------------------------------------

// CPU time of this thread: on a shared machine, time spent descheduled does not count.
double thread_cpu_ns() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

/// `ops` operations; not inlined, so the timed loop and the callgrind loop are one code.
template <class Allocator>
[[gnu::noinline]] std::uint64_t run_ops(Allocator& kv, driver& d, std::size_t ops) {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < ops; ++i)
        sum += d.step(kv);
    return sum;
}

template <class Allocator>
double time_ops(Allocator& kv, driver& d, std::size_t ops) {
    const double t0 = thread_cpu_ns();
    const std::uint64_t sum = run_ops(kv, d, ops);
    const double t1 = thread_cpu_ns();
    benchmark::DoNotOptimize(sum);
    return (t1 - t0) / double(ops);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

/// Times `rounds` rounds of `ops` operations on allocator A and on allocator B, alternating
/// which goes first, prints the medians and returns the median of the per-round A/B ratios.
/// With A and B the same type it measures the method's own bias (an A/A calibration).
template <class MakeA, class MakeB>
double interleaved_ratio(const char* name_a, MakeA make_a, const char* name_b, MakeB make_b,
                         std::uint32_t live, int rounds, std::size_t ops) {
    const workload w(live);
    auto a = make_a(live);
    auto b = make_b(live);
    driver da(w, live), db(w, live);
    da.fill(*a);
    db.fill(*b);
    std::vector<double> ta, tb, ratio;
    for (int r = 0; r < rounds; ++r) {
        double x, y;
        if (r % 2 == 0) {
            x = time_ops(*a, da, ops);
            y = time_ops(*b, db, ops);
        } else {
            y = time_ops(*b, db, ops);
            x = time_ops(*a, da, ops);
        }
        ta.push_back(x);
        tb.push_back(y);
        ratio.push_back(x / y);
    }
    std::printf(
        "interleaved, %u live, %d rounds x %zu operations (thread CPU time): %s %.2f ns/op, "
        "%s %.2f ns/op (medians); median ratio %s/%s = %.3f (min %.3f, max %.3f)\n",
        live, rounds, ops, name_a, median(ta), name_b, median(tb), name_a, name_b, median(ratio),
        *std::min_element(ratio.begin(), ratio.end()),
        *std::max_element(ratio.begin(), ratio.end()));
    return median(ratio);
}

/// odma/hand measured with odma built first and with the hand-written one built first: the
/// instance built first can be systematically faster (memory placement), so the geometric mean
/// of the two orders is the figure without that bias.
void zero_overhead_ratio(std::uint32_t live, int rounds, std::size_t ops) {
    const double odma_first =
        interleaved_ratio("odma", make_odma, "hand", make_hand, live, rounds, ops);
    const double hand_first =
        interleaved_ratio("hand", make_hand, "odma", make_odma, live, rounds, ops);
    std::printf(
        "zero-overhead time ratio odma/hand, both construction orders (geometric mean): "
        "%.3f\n",
        std::sqrt(odma_first / hand_first));
}

// --- callgrind --------------------------------------------------------------------------------

template <class Allocator>
int callgrind_run(Allocator& kv, std::uint32_t live, std::size_t ops) {
    const workload w(live);
    driver d(w, live);
    d.fill(kv);
#if ODMA_HAVE_CALLGRIND
    CALLGRIND_START_INSTRUMENTATION;
#endif
    const std::uint64_t sum = run_ops(kv, d, ops);
#if ODMA_HAVE_CALLGRIND
    CALLGRIND_STOP_INSTRUMENTATION;
#endif
    std::printf("ran %zu operations (outcome sum %llu)\n", ops,
                static_cast<unsigned long long>(sum));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string callgrind = odma_bench::take_flag(argc, argv, "odma_callgrind", "");
    const int rounds = std::stoi(odma_bench::take_flag(argc, argv, "odma_ratio_rounds", "21"));
    const auto ops = std::stoul(odma_bench::take_flag(argc, argv, "odma_ops", "200000"));
    const auto live =
        std::uint32_t(std::stoul(odma_bench::take_flag(argc, argv, "odma_live", "1000")));
    const bool calibrate = odma_bench::take_flag(argc, argv, "odma_calibrate", "0") == "1";

    std::printf(
        "sizeof(odma::allocator<constant, fixed, host>) = %zu, sizeof(hand_allocator) = %zu, "
        "sizeof(odma::lease) = %zu\n",
        sizeof(odma_kv), sizeof(hand_kv), sizeof(odma::lease));
    if (!same_decisions(live, 200000)) {
        std::fprintf(stderr, "the two allocators made different decisions: not comparable\n");
        return 1;
    }
    std::printf(
        "verified: both allocators made the same decisions and placements over 200000 "
        "operations\n");
    if (callgrind == "odma") return callgrind_run(*make_odma(live), live, ops);
    if (callgrind == "hand") return callgrind_run(*make_hand(live), live, ops);
    if (!callgrind.empty()) {
        std::fprintf(stderr, "--odma_callgrind must be odma or hand\n");
        return 1;
    }

    benchmark::RegisterBenchmark(
        "zero_overhead/odma", [](benchmark::State& s) { run_zero_overhead<odma_kv>(s, make_odma); })
        ->Arg(100)
        ->Arg(1000)
        ->Arg(10000);
    benchmark::RegisterBenchmark(
        "zero_overhead/hand", [](benchmark::State& s) { run_zero_overhead<hand_kv>(s, make_hand); })
        ->Arg(100)
        ->Arg(1000)
        ->Arg(10000);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    if (rounds > 0) {
        zero_overhead_ratio(live, rounds, ops);
        if (calibrate) {
            (void)interleaved_ratio("hand", make_hand, "hand", make_hand, live, rounds, ops);
            (void)interleaved_ratio("odma", make_odma, "odma", make_odma, live, rounds, ops);
        }
    }
    return 0;
}
