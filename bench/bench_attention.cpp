// Decode attention with real math on the host: what one more contiguous run of KV costs.
//
// odma's cost model charges a fixed accelerator-side cost per run (memory_model::
// discontinuity_ns, docs/cost-model.md). This benchmark measures that cost on this machine's CPU
// with an attention kernel, not a raw read: for every request of a batch, one decode step of one
// layer, q . K^T, softmax, . V, at GQA 7:1 (28 query heads, 4 KV heads, head_dim 128; the
// geometry of DeepSeek-R1-Distill-Qwen-7B), KV in fp32. Every layer has the same layout, so one
// is enough.
//
// The KV of the batch lies in one arena, K in its first half (the K plane) and V in the second
// (the V plane), one token = 4 KV heads x 128 dims x 4 bytes = 2 KiB per plane, token slots at
// the same index in both planes (as vLLM's key and value caches share block numbers). Layouts:
//
//   one_run   one run per request, the requests back to back (how odma places a lease);
//   runs_k    the request split into k equal pieces (k = 2, 4, 8), the pieces of all requests
//             shuffled and packed back to back, so that each lands at a random place;
//   block16   16-token blocks, each at a random block slot of the plane (vLLM's default);
//   block128  128-token blocks likewise (vllm-ascend's and Gaudi's default).
//
// Each request carries its list of runs (first token slot, tokens), in token order; the kernel
// (attend_request) is the same code for every layout: it walks the runs, and within a run the
// tokens in chunks of 16: scores of the 7 query heads that share a KV head against each key,
// an online-softmax update per chunk, then the weighted values. Runs are counted as the cost
// model counts them: one per plane and contiguous piece, so a list entry is two runs (K and V).
//
// The batch: Azure 2023 conversation requests (prompt + generated, at most 8,192 tokens, drawn
// with odma::support::splitmix64) until the plane cannot hold another with 128-token blocks.
// The arena is filled with values before timing. Before anything is timed, every layout's output
// is checked against one_run's (the same math; only chunk boundaries, and so rounding, differ);
// the program exits with a message if they disagree.
//
//   --odma_arena_mib=N   arena size (default 2048; the ctest smoke uses 64)
//   --odma_rounds=R      rounds of the interleaved summary printed at the end (default 7)
//   --odma_threads=T     threads of the summary (default 1; requests split by tokens)
//   --odma_hugepages=1   madvise(MADV_HUGEPAGE) on the arena (default: 4 KiB pages)
//   --odma_clock=wall    time the summary by the wall clock (default with one thread: the
//                        thread's CPU time, which leaves out waiting for a core on a shared
//                        machine; more than one thread always uses the wall clock)
// Google Benchmark runs one benchmark per layout (1 thread) unless --benchmark_filter=none.
#include "bench_support.hpp"

#include <odma/support/random.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include <time.h>

namespace {

constexpr std::uint32_t kv_heads = 4;
constexpr std::uint32_t group = 7;  // query heads per KV head (GQA 7:1)
constexpr std::uint32_t q_heads = kv_heads * group;
constexpr std::uint32_t head_dim = 128;
constexpr std::size_t token_floats = std::size_t(kv_heads) * head_dim;  // one plane
constexpr std::size_t token_bytes = token_floats * sizeof(float);       // 2 KiB
constexpr std::uint32_t chunk = 16;                                     // tokens per softmax update
constexpr std::uint32_t max_block = 128;

// 16 floats: one AVX-512 register, or two AVX2 / four SSE ones (GCC and Clang vector extension).
// Values of this type never cross a non-inline function boundary (no ABI dependence).
// The loops over a head's 8 vectors and a group's 7 heads are unrolled (#pragma GCC unroll, read
// by GCC and Clang), so that keys, values and partial sums stay in registers at -O2.
using v16 = float __attribute__((vector_size(64)));
constexpr std::uint32_t lanes = 16;
constexpr std::uint32_t vecs = head_dim / lanes;
static_assert(chunk == lanes, "a chunk's scores of one head are one vector");

inline void load(v16& v, const float* p) {
    std::memcpy(&v, p, sizeof v);
}

/// The 128 dims of KV head h of one token (one plane) into registers.
inline void load_head(v16 (&head)[vecs], const float* token, std::uint32_t h) {
#pragma GCC unroll 16
    for (std::uint32_t d = 0; d < vecs; ++d)
        load(head[d], token + h * head_dim + d * lanes);
}

/// Sum of the 16 lanes, halving (always the same order).
inline float lane_sum(const v16& a) {
    using v8 = float __attribute__((vector_size(32)));
    using v4 = float __attribute__((vector_size(16)));
    const v8 b = __builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7) +
                 __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15);
    const v4 c =
        __builtin_shufflevector(b, b, 0, 1, 2, 3) + __builtin_shufflevector(b, b, 4, 5, 6, 7);
    return (c[0] + c[2]) + (c[1] + c[3]);
}

/// e^x lane by lane, in place, for x <= 0 (softmax weights): x = n ln2 + r, |r| <= ln2 / 2,
/// e^r by its degree-6 Taylor polynomial (relative error below 2e-7), 2^n through the exponent
/// bits; x below -87 gives 0.
inline void exp_nonpositive(v16& x) {
    using i16 = std::int32_t __attribute__((vector_size(64)));
    const v16 lo = v16{} - 87.0f;
    const i16 under = x < lo;
    x = under ? lo : x;
    const v16 n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;  // round to nearest
    const v16 r = (x - n * 0.693359375f) + n * 2.12194440e-4f;    // ln 2 in two parts
    v16 p = v16{} + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    const i16 bits = (__builtin_convertvector(n, i16) + 127) << 23;
    v16 scale;
    std::memcpy(&scale, &bits, sizeof scale);
    x = under ? v16{} : p * scale;
}

/// One piece of a request's KV: `tokens` consecutive token slots from `slot`, in both planes.
struct run {
    std::uint64_t slot;
    std::uint32_t tokens;
};

/// A layout: per request, its runs in token order (runs[first[r]] .. runs[first[r + 1]]).
struct layout {
    std::string name;
    std::vector<std::uint32_t> first;
    std::vector<run> runs;
    /// Runs as the cost model counts them: one per plane (K, V) and piece.
    std::uint64_t model_runs() const { return 2 * runs.size(); }
};

/// The arena, filled with values in [-1, 1) so that the math sees ordinary numbers.
void fill_values(float* floats, std::size_t count) {
    odma::support::splitmix64 rng(11);
    for (std::size_t i = 0; i + 1 < count; i += 2) {
        const std::uint64_t r = rng();
        floats[i] = float(std::int32_t(r)) * 0x1.0p-31f;
        floats[i + 1] = float(std::int32_t(r >> 32)) * 0x1.0p-31f;
    }
}

template <class T>
void shuffle(std::vector<T>& v, odma::support::splitmix64& rng) {
    for (std::size_t i = v.size(); i > 1; --i)
        std::swap(v[i - 1], v[rng.below(i)]);
}

struct attention_setup {
    std::size_t arena_bytes;
    odma_bench::mapped_arena<float> arena;
    std::uint64_t plane_tokens;  // token slots per plane
    std::vector<std::uint32_t> lengths;
    std::uint64_t tokens = 0;
    std::vector<float> queries;  // per request q_heads x head_dim, pre-scaled by 1/sqrt(d)
    std::vector<layout> layouts;

    attention_setup(std::size_t mib, bool huge_pages)
        : arena_bytes(mib << 20)
        , arena(arena_bytes, huge_pages, fill_values)
        , plane_tokens(arena_bytes / 2 / token_bytes / max_block * max_block) {
        const auto requests = odma_bench::azure_requests(8192);
        odma::support::splitmix64 rng(7);
        std::uint64_t padded = 0;  // token slots the batch needs in 128-token blocks
        for (int misses = 0; misses < 1000;) {
            const std::uint32_t len = requests[rng.below(requests.size())].total();
            const std::uint64_t p = (len + max_block - 1) / max_block * max_block;
            if (padded + p > plane_tokens) {
                ++misses;
                continue;
            }
            lengths.push_back(len);
            tokens += len;
            padded += p;
        }
        queries.resize(lengths.size() * q_heads * head_dim);
        const float scale = 1.0f / std::sqrt(float(head_dim));
        for (float& q : queries)
            q = float(std::int32_t(rng())) * 0x1.0p-31f * scale;

        layouts.push_back(split_runs("one_run", 1, rng));
        for (const std::uint32_t k : {2u, 4u, 8u})
            layouts.push_back(split_runs("runs_" + std::to_string(k), k, rng));
        layouts.push_back(blocks("block16", 16, rng));
        layouts.push_back(blocks("block128", 128, rng));
    }

    std::uint64_t kv_bytes() const { return tokens * 2 * token_bytes; }
    double flops() const { return double(tokens) * q_heads * head_dim * 4.0; }

private:
    /// k equal pieces per request; k = 1 packs the requests in order, otherwise the pieces of
    /// all requests are packed in a random order.
    layout split_runs(std::string name, std::uint32_t k, odma::support::splitmix64& rng) const {
        struct piece {
            std::uint32_t request, index, tokens;
        };
        std::vector<piece> pieces;
        for (std::uint32_t r = 0; r < lengths.size(); ++r)
            for (std::uint32_t i = 0; i < k; ++i) {
                const auto n = std::uint32_t(std::uint64_t(lengths[r]) * (i + 1) / k -
                                             std::uint64_t(lengths[r]) * i / k);
                if (n) pieces.push_back({r, i, n});
            }
        if (k > 1) shuffle(pieces, rng);
        std::vector<std::vector<run>> per(lengths.size());
        std::uint64_t at = 0;
        for (const piece& p : pieces) {
            auto& v = per[p.request];
            if (v.size() <= p.index) v.resize(p.index + 1, run{0, 0});
            v[p.index] = {at, p.tokens};
            at += p.tokens;
        }
        return flatten(std::move(name), per);
    }

    /// Blocks of `block` tokens, each at a random block slot of the plane.
    layout blocks(std::string name, std::uint32_t block, odma::support::splitmix64& rng) const {
        std::vector<std::uint32_t> slots(plane_tokens / block);
        std::iota(slots.begin(), slots.end(), 0u);
        shuffle(slots, rng);
        std::vector<std::vector<run>> per(lengths.size());
        std::size_t next = 0;
        for (std::uint32_t r = 0; r < lengths.size(); ++r)
            for (std::uint32_t t = 0; t < lengths[r]; t += block)
                per[r].push_back(
                    {std::uint64_t(slots[next++]) * block, std::min(block, lengths[r] - t)});
        return flatten(std::move(name), per);
    }

    static layout flatten(std::string name, const std::vector<std::vector<run>>& per) {
        layout l{std::move(name), {0}, {}};
        for (const auto& v : per) {
            for (const run& x : v)
                if (x.tokens) l.runs.push_back(x);
            l.first.push_back(std::uint32_t(l.runs.size()));
        }
        return l;
    }
};

attention_setup* setup = nullptr;  // built in main from the flags

/// Online-softmax state of one request: per query head the running max, the sum of weights
/// and the weighted sum of values.
struct softmax_state {
    v16 acc[q_heads][vecs];
    float max[q_heads];
    float sum[q_heads];
};

/// Calls f(t, h, row) for tokens t0 .. t0 + c - 1 of a plane (token stride token_floats) and each
/// KV head h, with the head's head_dim values loaded in row: the walk both passes of the kernel
/// make, over keys for the scores and over values for the weighted sum.
template <class F>
inline void for_each_head_row(const float* plane, std::uint32_t t0, std::uint32_t c, F&& f) {
    for (std::uint32_t t = 0; t < c; ++t) {
        const float* xt = plane + std::size_t(t0 + t) * token_floats;
        for (std::uint32_t h = 0; h < kv_heads; ++h) {
            v16 row[vecs];
            load_head(row, xt, h);
            f(t, h, static_cast<const v16*>(row));
        }
    }
}

/// Attends `n` tokens of one run: keys at k, values at v (token stride token_floats).
inline void attend_run(const float* k, const float* v, std::uint32_t n, const float* q,
                       softmax_state& st) {
    for (std::uint32_t t0 = 0; t0 < n; t0 += chunk) {
        const std::uint32_t c = std::min(chunk, n - t0);
        float s[q_heads][chunk] = {};  // lanes past c stay 0 (their weights are unused)
        // Scores: per key, the 7 query heads of its KV head (lane-wise sums, then the lanes
        // in a fixed order).
        for_each_head_row(k, t0, c, [&](std::uint32_t t, std::uint32_t h, const v16* key) {
#pragma GCC unroll 16
            for (std::uint32_t j = 0; j < group; ++j) {
                const float* qh = q + (h * group + j) * head_dim;
                v16 a, qd;
                load(qd, qh);
                a = qd * key[0];
#pragma GCC unroll 16
                for (std::uint32_t d = 1; d < vecs; ++d) {
                    load(qd, qh + d * lanes);
                    a += qd * key[d];
                }
                s[h * group + j][t] = lane_sum(a);
            }
        });
        // Softmax update: new running max, rescale what was summed so far, weights.
        for (std::uint32_t h = 0; h < q_heads; ++h) {
            float m = st.max[h];
            for (std::uint32_t t = 0; t < c; ++t)
                m = std::max(m, s[h][t]);
            if (m != st.max[h]) {
                const float corr = std::exp(st.max[h] - m);  // 0 on the first chunk (-inf)
                st.sum[h] *= corr;
                for (std::uint32_t d = 0; d < vecs; ++d)
                    st.acc[h][d] *= corr;
                st.max[h] = m;
            }
            v16 p;
            load(p, s[h]);
            p -= m;
            exp_nonpositive(p);
            std::memcpy(s[h], &p, sizeof p);
            for (std::uint32_t t = 0; t < c; ++t)
                st.sum[h] += s[h][t];
        }
        // Values, weighted.
        for_each_head_row(v, t0, c, [&](std::uint32_t t, std::uint32_t h, const v16* val) {
#pragma GCC unroll 16
            for (std::uint32_t j = 0; j < group; ++j) {
                const float p = s[h * group + j][t];
#pragma GCC unroll 16
                for (std::uint32_t d = 0; d < vecs; ++d)
                    st.acc[h * group + j][d] += p * val[d];
            }
        });
    }
}

/// One decode step of request r on layout l: writes q_heads x head_dim outputs to out.
void attend_request(const layout& l, std::uint32_t r, float* out) {
    const float* kplane = setup->arena.data();
    const float* vplane = kplane + setup->plane_tokens * token_floats;
    const float* q = setup->queries.data() + std::size_t(r) * q_heads * head_dim;
    softmax_state st;
    for (std::uint32_t h = 0; h < q_heads; ++h) {
        st.max[h] = -std::numeric_limits<float>::infinity();
        st.sum[h] = 0;
        for (std::uint32_t d = 0; d < vecs; ++d)
            st.acc[h][d] = v16{};
    }
    for (std::uint32_t i = l.first[r]; i < l.first[r + 1]; ++i) {
        const run& x = l.runs[i];
        attend_run(kplane + x.slot * token_floats, vplane + x.slot * token_floats, x.tokens, q, st);
    }
    for (std::uint32_t h = 0; h < q_heads; ++h)
        for (std::uint32_t d = 0; d < vecs; ++d)
            for (std::uint32_t e = 0; e < lanes; ++e)
                out[h * head_dim + d * lanes + e] = st.acc[h][d][e] / st.sum[h];
}

/// One decode step of the whole batch, requests split over `threads` by tokens.
void decode_step(const layout& l, unsigned threads, std::vector<float>& out) {
    const auto n = std::uint32_t(setup->lengths.size());
    auto work = [&](std::uint32_t from, std::uint32_t to) {
        for (std::uint32_t r = from; r < to; ++r)
            attend_request(l, r, out.data() + std::size_t(r) * q_heads * head_dim);
    };
    if (threads <= 1) {
        work(0, n);
        return;
    }
    std::vector<std::uint32_t> cut{0};
    std::uint64_t acc = 0;
    for (std::uint32_t r = 0; r < n && cut.size() < threads; ++r) {
        acc += setup->lengths[r];
        if (acc >= setup->tokens / threads * cut.size()) cut.push_back(r + 1);
    }
    cut.push_back(n);
    std::vector<std::thread> pool;
    for (std::size_t t = 0; t + 1 < cut.size(); ++t)
        pool.emplace_back(work, cut[t], cut[t + 1]);
    for (auto& th : pool)
        th.join();
}

/// Writes the batch's KV where layout l puts it: the values of token g of request r depend on
/// (r, g) only, so that every layout, once written, holds the same KV.
void write_kv(const layout& l) {
    float* kplane = setup->arena.data();
    float* vplane = kplane + setup->plane_tokens * token_floats;
    for (std::uint32_t r = 0; r < setup->lengths.size(); ++r) {
        std::uint64_t g = 0;
        for (std::uint32_t i = l.first[r]; i < l.first[r + 1]; ++i)
            for (std::uint32_t t = 0; t < l.runs[i].tokens; ++t, ++g) {
                odma::support::splitmix64 rng((std::uint64_t(r) << 32) + g);
                const std::size_t at = (l.runs[i].slot + t) * token_floats;
                for (float* p : {kplane + at, vplane + at})
                    for (std::size_t e = 0; e < token_floats; ++e)
                        p[e] = float(std::int32_t(rng())) * 0x1.0p-31f;
            }
    }
}

/// Every layout's output against one_run's: exits with a message when one differs by more
/// than rounding (chunk boundaries move with run boundaries, and so the softmax rescales).
/// Each layout is written into the arena before it is run; the timed steps later read
/// whatever the arena holds (timing does not depend on the values).
void verify() {
    const std::size_t n = setup->lengths.size() * q_heads * head_dim;
    std::vector<float> ref(n), out(n);
    write_kv(setup->layouts[0]);
    decode_step(setup->layouts[0], 1, ref);
    for (std::size_t i = 1; i < setup->layouts.size(); ++i) {
        write_kv(setup->layouts[i]);
        decode_step(setup->layouts[i], 1, out);
        double worst = 0;
        for (std::size_t e = 0; e < n; ++e) {
            const double err = std::abs(double(out[e]) - ref[e]) / (1e-3 + std::abs(ref[e]));
            if (!(err <= worst)) worst = err;  // NaN counts as the worst
        }
        if (!(worst <= 1e-4)) {
            std::fprintf(stderr,
                         "odma_bench_attention: layout %s disagrees with one_run (worst relative "
                         "error %g)\n",
                         setup->layouts[i].name.c_str(), worst);
            std::exit(1);
        }
    }
    std::printf("verified: %zu layouts produce one_run's output (relative error <= 1e-4)\n",
                setup->layouts.size() - 1);
}

double seconds_of(auto&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

/// FMA throughput of one core on v16 (independent accumulators): the kernel's ceiling.
double fma_gflops_one_core() {
    constexpr int acc_count = 12;
    constexpr long iterations = 20'000'000;
    v16 a[acc_count];
    for (int i = 0; i < acc_count; ++i)
        a[i] = v16{} + float(i) * 1e-3f;
    v16 b = v16{} + 0.999999f, c = v16{} + 1e-7f;
    benchmark::DoNotOptimize(b);
    benchmark::DoNotOptimize(c);
    const double s = seconds_of([&] {
        for (long it = 0; it < iterations; ++it)
#pragma GCC unroll 16
            for (int i = 0; i < acc_count; ++i)
                a[i] = a[i] * b + c;
    });
    float sink = 0;
    for (int i = 0; i < acc_count; ++i)
        sink += a[i][0];
    benchmark::DoNotOptimize(sink);
    return double(iterations) * acc_count * lanes * 2 / s / 1e9;
}

void bm_attention(benchmark::State& state, std::size_t index) {
    const layout& l = setup->layouts[index];
    std::vector<float> out(setup->lengths.size() * q_heads * head_dim);
    for (auto _ : state) {
        decode_step(l, unsigned(state.range(0)), out);
        benchmark::DoNotOptimize(out.data());
    }
    state.counters["KV_GB/s"] = benchmark::Counter(
        double(setup->kv_bytes()) * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
    state.counters["runs"] = double(l.model_runs());
}

/// The calling thread's CPU time in seconds: on a shared machine it leaves out the time the
/// thread waited for a core (stalls on memory are still in it).
double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

/// The headline: every layout once per round, in an order that rotates each round, for
/// `rounds` rounds. Per layout: the median step time; the slowdown and the cost per extra run
/// as medians over rounds of the comparison with one_run in the same round (paired, so that
/// load that changes between rounds cancels); and a least-squares line through the medians.
void summary(int rounds, unsigned threads, bool huge_pages, bool cpu_clock) {
    const auto& ls = setup->layouts;
    std::vector<std::vector<double>> ms(ls.size()), wall(ls.size());
    std::vector<float> out(setup->lengths.size() * q_heads * head_dim);
    for (std::size_t i = 0; i < ls.size(); ++i)  // warm-up: one untimed step each
        decode_step(ls[i], threads, out);
    for (int r = 0; r < rounds; ++r)
        for (std::size_t j = 0; j < ls.size(); ++j) {
            const std::size_t i = (j + std::size_t(r)) % ls.size();
            const double c0 = thread_cpu_seconds();
            wall[i].push_back(1e3 * seconds_of([&] { decode_step(ls[i], threads, out); }));
            ms[i].push_back(cpu_clock ? 1e3 * (thread_cpu_seconds() - c0) : wall[i].back());
        }
    benchmark::DoNotOptimize(out.data());

    std::vector<double> med(ls.size());
    for (std::size_t i = 0; i < ls.size(); ++i)
        med[i] = median(ms[i]);
    const double base_runs = double(ls[0].model_runs());
    // Least squares over all layouts: median ms = a + c x runs.
    double mx = 0, my = 0;
    for (std::size_t i = 0; i < ls.size(); ++i) {
        mx += double(ls[i].model_runs()) / double(ls.size());
        my += med[i] / double(ls.size());
    }
    double sxy = 0, sxx = 0, syy = 0;
    for (std::size_t i = 0; i < ls.size(); ++i) {
        const double dx = double(ls[i].model_runs()) - mx, dy = med[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    const double slope = sxy / sxx, intercept = my - slope * mx;

    std::printf(
        "\nsummary: decode attention, 1 layer, 28 q heads / 4 KV heads x 128, fp32 KV; %zu "
        "requests, %llu tokens, %.3f GB of KV per step; arena %zu MiB%s; %u thread%s; %d "
        "rounds; %s time (medians)\n",
        setup->lengths.size(), static_cast<unsigned long long>(setup->tokens),
        double(setup->kv_bytes()) / 1e9, setup->arena_bytes >> 20,
        huge_pages ? " (MADV_HUGEPAGE)" : "", threads, threads == 1 ? "" : "s", rounds,
        cpu_clock ? "thread CPU" : "wall-clock");
    std::printf("%-10s %10s %9s %8s %9s %8s %9s %9s %9s %13s\n", "layout", "runs/step", "ms/step",
                "spread", "wall ms", "KV GB/s", "GFLOP/s", "KiB/run", "vs 1 run", "ns/extra run");
    for (std::size_t i = 0; i < ls.size(); ++i) {
        const auto [lo, hi] = std::minmax_element(ms[i].begin(), ms[i].end());
        const double runs = double(ls[i].model_runs());
        std::vector<double> ratio, per_run;
        for (int r = 0; r < rounds; ++r) {
            ratio.push_back(ms[i][r] / ms[0][r]);
            if (i > 0) per_run.push_back((ms[i][r] - ms[0][r]) * 1e6 / (runs - base_runs));
        }
        char cost[32] = "-";
        if (i > 0) std::snprintf(cost, sizeof cost, "%.1f", median(per_run));
        std::printf("%-10s %10.0f %9.2f %7.1f%% %9.2f %8.2f %9.2f %9.1f %9.3f %13s\n",
                    ls[i].name.c_str(), runs, med[i], 100 * (*hi - *lo) / med[i], median(wall[i]),
                    double(setup->kv_bytes()) / med[i] / 1e6, setup->flops() / med[i] / 1e6,
                    double(setup->kv_bytes()) / runs / 1024, median(ratio), cost);
    }
    std::printf(
        "least squares over all layouts: ms/step = %.3f + runs x %.1f ns (R^2 %.3f; one_run "
        "measured %.3f ms)\n",
        intercept, slope * 1e6, syy > 0 ? sxy * sxy / (sxx * syy) : 1.0, med[0]);
    std::printf("FMA peak of one core (v16 multiply-add, 12 chains): %.1f GFLOP/s\n",
                fma_gflops_one_core());
    std::printf(
        "(runs: one per plane and piece, K and V counted apart, as the cost model counts them; "
        "spread: (max - min) / median over the rounds; vs 1 run and ns/extra run: medians over "
        "rounds of the comparison with one_run in the same round)\n");
}

}  // namespace

int main(int argc, char** argv) {
    const auto mib = std::stoul(odma_bench::take_flag(argc, argv, "odma_arena_mib", "2048"));
    const int rounds = std::stoi(odma_bench::take_flag(argc, argv, "odma_rounds", "7"));
    const auto threads =
        unsigned(std::stoul(odma_bench::take_flag(argc, argv, "odma_threads", "1")));
    const bool huge = odma_bench::take_flag(argc, argv, "odma_hugepages", "0") == "1";
    const bool cpu_clock =
        odma_bench::take_flag(argc, argv, "odma_clock", "cpu") == "cpu" && threads <= 1;
    attention_setup s(mib, huge);
    setup = &s;
    verify();

    for (std::size_t i = 0; i < s.layouts.size(); ++i)
        benchmark::RegisterBenchmark(("attention/" + s.layouts[i].name).c_str(), bm_attention, i)
            ->Arg(1)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    if (!odma_bench::start_arena_benchmark(argc, argv, mib, s.lengths.size(), huge)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    if (rounds > 0) summary(rounds, std::max(1u, threads), huge, cpu_clock);
    return 0;
}
