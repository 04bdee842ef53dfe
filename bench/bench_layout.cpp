// Real memory, not the model: how fast host DRAM reads a batch's KV cache laid out
// contiguously (as odma places it) versus in 16-token blocks scattered through the arena (as a
// paged allocator places it).
//
// KV geometry: DeepSeek-R1-Distill-Qwen-7B, 57,344 bytes per token = 28 layers x (K, V) x 1 KiB
// (4 KV heads x 128 dims x 2 bytes). A decode step reads, layer by layer, each request's keys
// and values.
//
//   contiguous  odma with planes = 56: each (layer, K/V) pair is a sub-arena and a request's
//               tokens are one run in it, so a step reads 56 runs of len KiB per request.
//   paged       16-token blocks (16 KiB: 16 tokens of one layer's K or V, as vLLM lays them
//               out), every block of every request at a random place in the arena, so a step
//               reads 56 x ceil(len / 16) blocks per request (the last one partly).
//   seq_read    one sequential read of the same number of bytes: the physical reference.
//   copy        memcpy of half the arena onto the other half, counted as read + write bytes,
//               like STREAM's copy kernel.
//
// The batch: requests of the Azure 2023 conversation trace (prompt + generated tokens, at
// most 8,192, fixed seed) until the arena is full: both layouts read the same bytes from the same
// arena. The arena is written before timing (untouched pages would read the shared zero page).
//
//   --odma_arena_mib=N     arena size (default 1024; use 4096-8192 to defeat every cache)
//   --odma_rounds=R        rounds of the interleaved summary printed at the end (default 5)
//   --odma_hugepages=1     madvise(MADV_HUGEPAGE) on the arena: 2 MiB pages where the kernel
//                          allows (transparent_hugepage = madvise or always); default: 4 KiB
// Each benchmark takes the thread count as its argument (1, 2, and the core count if larger).
#include "bench_support.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t plane_token_bytes = 1024;  // one layer's K (or V) of one token
constexpr std::uint32_t planes = 56;             // 28 layers x (K, V)
constexpr std::uint32_t block_tokens = 16;
constexpr std::size_t block_bytes = block_tokens * plane_token_bytes;
static_assert(planes * plane_token_bytes == odma_bench::r1_qwen7b_bytes_per_token);

/// A byte range of the arena that one read covers.
struct span {
    std::size_t offset, bytes;
};

/// The arena, written once with a pattern (untouched pages would read the shared zero page).
void fill_words(std::uint64_t* words, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i)
        words[i] = i * 0x9e3779b97f4a7c15ull;
}

struct layout_setup {
    std::size_t arena_bytes = 0;
    odma_bench::mapped_arena<std::uint64_t> arena;
    std::vector<std::uint32_t> lengths;  // tokens per request of the batch
    std::vector<span> contiguous, paged, sequential;
    std::size_t read_bytes = 0;  // per pass, identical for the three read layouts

    layout_setup(std::size_t mib, bool huge_pages)
        : arena_bytes(mib << 20), arena(arena_bytes, huge_pages, fill_words) {
        // The batch: trace requests (at most 8,192 tokens) until neither layout has room for
        // another; a request too long for the room left is skipped.
        const auto requests = odma_bench::azure_requests(8192);
        std::mt19937 rng(7);
        const std::size_t plane_bytes =
            arena_bytes / planes / plane_token_bytes * plane_token_bytes;
        const std::size_t total_blocks = arena_bytes / block_bytes;
        std::size_t tokens = 0, blocks = 0;
        for (int misses = 0; misses < 1000;) {
            const std::uint32_t len = requests[rng() % requests.size()].total();
            const std::size_t b = (len + block_tokens - 1) / block_tokens;
            if ((tokens + len) * plane_token_bytes > plane_bytes ||
                (blocks + b) * planes > total_blocks) {
                ++misses;
                continue;
            }
            lengths.push_back(len);
            tokens += len;
            blocks += b;
        }
        read_bytes = tokens * odma_bench::r1_qwen7b_bytes_per_token;

        // Contiguous: plane p starts at p * plane_bytes; requests back to back in each plane.
        for (std::uint32_t p = 0; p < planes; ++p) {
            std::size_t at = p * plane_bytes;
            for (const std::uint32_t len : lengths) {
                contiguous.push_back({at, len * plane_token_bytes});
                at += len * plane_token_bytes;
            }
        }
        // Paged: every (plane, request, block) gets a random block of the arena.
        std::vector<std::uint32_t> order(total_blocks);
        std::iota(order.begin(), order.end(), 0u);
        std::shuffle(order.begin(), order.end(), rng);
        std::size_t next = 0;
        for (std::uint32_t p = 0; p < planes; ++p)
            for (const std::uint32_t len : lengths)
                for (std::uint32_t t = 0; t < len; t += block_tokens) {
                    const std::uint32_t in_block = std::min(block_tokens, len - t);
                    paged.push_back(
                        {std::size_t(order[next++]) * block_bytes, in_block * plane_token_bytes});
                }
        sequential.push_back({0, read_bytes});
    }
};

layout_setup* setup = nullptr;  // built in main from the flags

/// Sums the words of every span; four accumulators keep the loads independent.
std::uint64_t read_spans(const std::uint64_t* base, const span* first, const span* last) {
    std::uint64_t a = 0, b = 0, c = 0, d = 0;
    for (const span* s = first; s != last; ++s) {
        const std::uint64_t* p = base + s->offset / 8;
        const std::size_t n = s->bytes / 8;
        std::size_t i = 0;
        for (; i + 4 <= n; i += 4) {
            a += p[i];
            b += p[i + 1];
            c += p[i + 2];
            d += p[i + 3];
        }
        for (; i < n; ++i)
            a += p[i];
    }
    return a + b + c + d;
}

/// Splits `spans` into `threads` parts of about equal bytes and reads them in parallel.
/// Returns the sum of what was read (so the reads cannot be optimised away).
std::uint64_t parallel_read(const std::vector<span>& spans, unsigned threads) {
    const std::uint64_t* base = setup->arena.data();
    if (threads <= 1) return read_spans(base, spans.data(), spans.data() + spans.size());
    // A single span (the sequential read) is cut into equal pieces first.
    std::vector<span> pieces;
    const std::vector<span>* work = &spans;
    if (spans.size() < threads) {
        for (const span& s : spans)
            for (unsigned t = 0; t < threads; ++t) {
                const std::size_t from = s.bytes / threads * t / 64 * 64;
                const std::size_t to =
                    t + 1 == threads ? s.bytes : s.bytes / threads * (t + 1) / 64 * 64;
                pieces.push_back({s.offset + from, to - from});
            }
        work = &pieces;
    }
    std::size_t total = 0;
    for (const span& s : *work)
        total += s.bytes;
    std::vector<std::size_t> cut{0};
    std::size_t acc = 0;
    for (std::size_t i = 0; i < work->size() && cut.size() < threads; ++i) {
        acc += (*work)[i].bytes;
        if (acc >= total / threads * cut.size()) cut.push_back(i + 1);
    }
    cut.push_back(work->size());
    std::vector<std::uint64_t> sums(threads, 0);
    std::vector<std::thread> pool;
    for (unsigned t = 0; t + 1 < cut.size() && t < threads; ++t)
        pool.emplace_back([&, t] {
            sums[t] = read_spans(base, work->data() + cut[t], work->data() + cut[t + 1]);
        });
    for (auto& th : pool)
        th.join();
    return std::accumulate(sums.begin(), sums.end(), std::uint64_t{0});
}

void copy_halves(unsigned threads) {
    auto* bytes = reinterpret_cast<char*>(setup->arena.data());
    const std::size_t half = setup->arena_bytes / 2;
    const std::size_t part = half / threads / 4096 * 4096;
    std::vector<std::thread> pool;
    for (unsigned t = 0; t < threads; ++t) {
        const std::size_t from = part * t, len = t + 1 == threads ? half - from : part;
        pool.emplace_back([=] { std::memcpy(bytes + half + from, bytes + from, len); });
    }
    for (auto& th : pool)
        th.join();
}

double gb_per_s(double bytes, double seconds) {
    return bytes / seconds / 1e9;
}

void bm_read(benchmark::State& state, const std::vector<span> layout_setup::*layout) {
    const auto threads = unsigned(state.range(0));
    const auto& spans = setup->*layout;
    for (auto _ : state)
        benchmark::DoNotOptimize(parallel_read(spans, threads));
    state.counters["GB/s"] = benchmark::Counter(
        double(setup->read_bytes) * double(state.iterations()) / 1e9, benchmark::Counter::kIsRate);
    state.counters["spans"] = double(spans.size());
}

void bm_copy(benchmark::State& state) {
    const auto threads = unsigned(state.range(0));
    for (auto _ : state) {
        copy_halves(threads);
        benchmark::ClobberMemory();
    }
    state.counters["GB/s"] = benchmark::Counter(
        double(setup->arena_bytes) * double(state.iterations()) / 1e9,  // half read + half written
        benchmark::Counter::kIsRate);
}

double seconds_of(auto&& f) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// AnonHugePages of this process (how much of the arena really sits on 2 MiB pages).
std::string anon_huge_pages() {
    std::ifstream f("/proc/self/smaps_rollup");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("AnonHugePages:", 0) == 0) {
            line.erase(0, line.find_first_not_of(" ", 14));
            return line;
        }
    return "unknown";
}

/// The headline: contiguous, paged, sequential and copy interleaved `rounds` times per
/// thread count, medians printed with the paged / contiguous ratio.
void summary(const std::vector<unsigned>& thread_counts, int rounds, bool huge_pages) {
    std::printf(
        "\nsummary: %zu requests, %.2f GB read per pass, arena %zu MiB%s, %d rounds "
        "(median GB/s)\n",
        setup->lengths.size(), double(setup->read_bytes) / 1e9, setup->arena_bytes >> 20,
        huge_pages ? " (MADV_HUGEPAGE)" : "", rounds);
    std::printf("AnonHugePages of this process: %s\n", anon_huge_pages().c_str());
    std::printf("%8s %12s %12s %14s %12s %16s\n", "threads", "contiguous", "paged", "sequential",
                "copy", "paged/contig");
    for (const unsigned t : thread_counts) {
        std::vector<double> c, p, s, k;
        std::uint64_t sink = 0;
        for (int r = 0; r < rounds; ++r) {
            c.push_back(gb_per_s(double(setup->read_bytes),
                                 seconds_of([&] { sink += parallel_read(setup->contiguous, t); })));
            p.push_back(gb_per_s(double(setup->read_bytes),
                                 seconds_of([&] { sink += parallel_read(setup->paged, t); })));
            s.push_back(gb_per_s(double(setup->read_bytes),
                                 seconds_of([&] { sink += parallel_read(setup->sequential, t); })));
            k.push_back(gb_per_s(double(setup->arena_bytes), seconds_of([&] { copy_halves(t); })));
        }
        benchmark::DoNotOptimize(sink);
        auto med = [](std::vector<double> v) {
            std::sort(v.begin(), v.end());
            return v[v.size() / 2];
        };
        std::printf("%8u %12.2f %12.2f %14.2f %12.2f %16.3f\n", t, med(c), med(p), med(s), med(k),
                    med(p) / med(c));
    }
}

std::string transparent_huge_pages() {
    std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
    std::string mode;
    std::getline(f, mode);
    return mode.empty() ? "unknown" : mode;
}

}  // namespace

int main(int argc, char** argv) {
    const auto mib = std::stoul(odma_bench::take_flag(argc, argv, "odma_arena_mib", "1024"));
    const int rounds = std::stoi(odma_bench::take_flag(argc, argv, "odma_rounds", "5"));
    const bool huge = odma_bench::take_flag(argc, argv, "odma_hugepages", "0") == "1";
    layout_setup s(mib, huge);
    setup = &s;
    std::vector<unsigned> thread_counts{1, 2};
    if (std::thread::hardware_concurrency() > 2)
        thread_counts.push_back(std::thread::hardware_concurrency());

    for (const unsigned t : thread_counts) {
        benchmark::RegisterBenchmark("layout/contiguous", bm_read, &layout_setup::contiguous)
            ->Arg(t)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark("layout/paged16", bm_read, &layout_setup::paged)
            ->Arg(t)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark("layout/seq_read", bm_read, &layout_setup::sequential)
            ->Arg(t)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark("layout/copy", bm_copy)
            ->Arg(t)
            ->UseRealTime()
            ->Unit(benchmark::kMillisecond);
    }
    if (!odma_bench::start_arena_benchmark(argc, argv, mib, s.lengths.size(), huge)) return 1;
    benchmark::AddCustomContext("transparent_hugepage", transparent_huge_pages());
    benchmark::AddCustomContext("anon_huge_pages", anon_huge_pages());
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    if (rounds > 0) summary(thread_counts, rounds, huge);
    return 0;
}
