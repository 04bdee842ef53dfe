// Helpers shared by odma's benchmarks: the request sizes of a real trace, a live set of leases
// for "cost vs live count" benchmarks, and flags of our own beside Google Benchmark's.
#pragma once

#include <odma/odma.hpp>
#include <odma/support/random.hpp>

#include <odma_internal/combos.hpp>
#include <odma_internal/trace.hpp>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include <sys/mman.h>

namespace odma_bench {

/// DeepSeek-R1-Distill-Qwen-7B: 2 (K, V) x 28 layers x 4 KV heads x 128 dims x 2 bytes.
inline constexpr std::size_t r1_qwen7b_bytes_per_token = 57344;

/// Prompt and generated tokens of one request.
struct sized_request {
    std::uint32_t prompt, generated;
    std::uint32_t total() const noexcept { return prompt + generated; }
};

/// The requests of data/azure2023_conv.csv (19,366 production conversations), each clipped to
/// `max_tokens` in all, in trace order.
inline std::vector<sized_request> azure_requests(std::uint32_t max_tokens) {
    const auto t =
        odma::tools::load_azure(std::string(ODMA_BENCH_DATA_DIR) + "/azure2023_conv.csv");
    std::vector<sized_request> out;
    out.reserve(t.requests.size());
    for (const auto& r : t.requests) {
        const std::uint32_t prompt = std::clamp<std::uint32_t>(r.prompt_tokens, 1, max_tokens - 1);
        const std::uint32_t generated =
            std::clamp<std::uint32_t>(r.output_tokens, 1, max_tokens - prompt);
        out.push_back({prompt, generated});
    }
    return out;
}

/// Removes `--name=value` from argv (so Google Benchmark does not see it) and returns value,
/// or `fallback` when absent.
inline std::string take_flag(int& argc, char** argv, std::string_view name, std::string fallback) {
    const std::string prefix = "--" + std::string(name) + "=";
    for (int i = 1; i < argc; ++i) {
        if (std::strncmp(argv[i], prefix.c_str(), prefix.size()) != 0) continue;
        std::string value = argv[i] + prefix.size();
        for (int j = i; j + 1 < argc; ++j)
            argv[j] = argv[j + 1];
        --argc;
        return value;
    }
    return fallback;
}

/// Admits `count` requests of random sizes (prompt and max_new_tokens uniform in 1..300)
/// and keeps them live. Returns false if the arena is too small.
template <class Allocator>
bool fill_live(Allocator& kv, std::uint32_t count, std::vector<odma::lease>& held,
               std::uint64_t seed = 1) {
    odma::support::splitmix64 rng(seed);
    held.reserve(count);
    for (std::uint32_t i = 0; i < count; ++i) {
        const auto prompt = std::uint32_t(1 + rng.below(300)),
                   max_new = std::uint32_t(1 + rng.below(300));
        odma_test::tell_length(kv, 1'000'000'000ull + i, max_new);
        auto l = kv.admit(
            {.id = 1'000'000'000ull + i, .prompt_tokens = prompt, .max_new_tokens = max_new});
        if (!l) return false;
        held.push_back(*l);
    }
    return true;
}

/// Registers fn<Combo> for every combo of `list` as "<prefix>/<combo name>", with the live
/// counts 10, 100, ..., 100,000 as argument.
template <class... Combos, class Fn>
void register_per_combo(odma_test::type_list<Combos...> list, const std::string& prefix, Fn fn) {
    odma_test::for_each_combo(list, [&]<class Combo>() {
        benchmark::RegisterBenchmark((prefix + "/" + Combo::name()).c_str(),
                                     fn.template operator()<Combo>())
            ->RangeMultiplier(10)
            ->Range(10, 100000);
    });
}

/// Anonymous memory for the real-memory benchmarks (bench_layout, bench_attention), optionally
/// on transparent huge pages (2 MiB, where the kernel allows them), filled by fill(data,
/// elements) so that every page is really there before anything is timed.
template <class T>
class mapped_arena {
public:
    template <class Fill>
    mapped_arena(std::size_t bytes, bool huge_pages, Fill&& fill) : bytes_(bytes) {
        void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        if (huge_pages) madvise(p, bytes, MADV_HUGEPAGE);
        data_ = static_cast<T*>(p);
        fill(data_, bytes / sizeof(T));
    }
    mapped_arena(const mapped_arena&) = delete;
    mapped_arena& operator=(const mapped_arena&) = delete;
    ~mapped_arena() { munmap(data_, bytes_); }
    T* data() const noexcept { return data_; }

private:
    std::size_t bytes_;
    T* data_;
};

/// Starts Google Benchmark for a real-memory benchmark: parses its flags and records the arena
/// size, the batch and the huge-page choice in the report's context. False on an unknown flag.
inline bool start_arena_benchmark(int& argc, char** argv, std::size_t arena_mib,
                                  std::size_t batch_requests, bool huge_pages) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return false;
    benchmark::AddCustomContext("arena_mib", std::to_string(arena_mib));
    benchmark::AddCustomContext("batch_requests", std::to_string(batch_requests));
    benchmark::AddCustomContext("arena_madvise_hugepage", huge_pages ? "yes" : "no");
    return true;
}

}  // namespace odma_bench
