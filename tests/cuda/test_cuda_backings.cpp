// backing::cuda and backing::cuda_vmm on a real GPU. Registered with ctest through
// run_if_gpu.cmake, which skips (code 77) on machines without a GPU, where these adapters are
// only compiled.
#include <odma/backing/cuda_vmm.hpp>  // first: the header compiles on its own
//
#include <odma/backing/cuda.hpp>
#include <odma/odma.hpp>

#include <doctest/doctest.h>

#include <cuda_runtime_api.h>

#include <cstdio>
#include <random>
#include <vector>

static_assert(ODMA_HAS_CUDA == 1 && ODMA_HAS_CUDA_VMM == 1);
static_assert(odma::Backing<odma::backing::cuda>);
static_assert(!odma::CommittingBacking<odma::backing::cuda>);
static_assert(odma::CommittingBacking<odma::backing::cuda_vmm>);
static_assert(odma::ResizableBacking<odma::backing::cuda_vmm>);

namespace {

constexpr std::size_t mib = std::size_t(1) << 20;

void gpu_write(std::byte* device, const std::vector<std::byte>& data) {
    REQUIRE(cudaMemcpy(device, data.data(), data.size(), cudaMemcpyHostToDevice) == cudaSuccess);
}

std::vector<std::byte> gpu_read(const std::byte* device, std::size_t bytes) {
    std::vector<std::byte> out(bytes);
    REQUIRE(cudaMemcpy(out.data(), device, bytes, cudaMemcpyDeviceToHost) == cudaSuccess);
    return out;
}

std::vector<std::byte> pattern(std::size_t bytes, unsigned seed) {
    std::vector<std::byte> v(bytes);
    for (std::size_t i = 0; i < bytes; ++i)
        v[i] = std::byte((i * 31 + seed) & 0xff);
    return v;
}

std::size_t free_device_memory() {
    std::size_t free = 0, total = 0;
    REQUIRE(cudaMemGetInfo(&free, &total) == cudaSuccess);
    return free;
}

}  // namespace

TEST_CASE("cuda: a cudaMalloc arena copies device to device, too much memory is device_error") {
    REQUIRE(cudaSetDevice(0) == cudaSuccess);
    REQUIRE(cudaFree(nullptr) == cudaSuccess);
    odma::backing::cuda arena(64 * mib);
    const auto data = pattern(mib, 3);
    gpu_write(arena.address(0), data);
    arena.copy(32 * mib, 0, mib);
    CHECK(gpu_read(arena.address(32 * mib), mib) == data);
    const auto info = arena.device_memory();
    CHECK(info.total > info.free);
    try {
        odma::backing::cuda too_big(info.total * 2);
        FAIL("cudaMalloc beyond device memory must throw");
    } catch (const odma::device_error& e) {
        CHECK(e.vendor_code() == int(cudaErrorMemoryAllocation));
        std::printf("expected error: %s\n", e.what());
    }
}

TEST_CASE("cuda_vmm: physical memory follows commits, data survives in-place growth") {
    REQUIRE(cudaSetDevice(0) == cudaSuccess);
    REQUIRE(cudaFree(nullptr) == cudaSuccess);
    std::size_t free = 0, total = 0;
    REQUIRE(cudaMemGetInfo(&free, &total) == cudaSuccess);
    // Twice the device's memory as address space: only commits cost memory.
    odma::backing::cuda_vmm arena(2 * total, {.device = 0});
    REQUIRE(arena.on_demand());
    const std::size_t g = arena.granule_size();
    std::printf("cuda_vmm: granule %zu KiB, %zu GiB reserved on a %zu GiB device\n", g / 1024,
                arena.capacity() >> 30, total >> 30);
    const std::size_t before = free_device_memory();
    REQUIRE(arena.commit(0, 64 * g));
    CHECK(before - free_device_memory() >= 64 * g);
    const auto data = pattern(64 * g, 9);
    gpu_write(arena.address(0), data);
    REQUIRE(arena.commit(64 * g, 16 * g));  // grow in place: the old bytes stay where they are
    CHECK(gpu_read(arena.address(0), 64 * g) == data);
    arena.copy(64 * g, 0, 16 * g);
    CHECK(gpu_read(arena.address(64 * g), 16 * g) ==
          std::vector<std::byte>(data.begin(), data.begin() + std::ptrdiff_t(16 * g)));
    arena.decommit(0, 80 * g);
    CHECK(arena.counters().mapped_bytes == 0);
    CHECK(free_device_memory() + 4 * g >= before);  // given back (allowing driver slack)
    // More than the device has: commit says no, cleanly.
    CHECK_FALSE(arena.commit(0, (total / g + 1) * g));
    CHECK(arena.counters().mapped_bytes == 0);
    std::printf("cuda_vmm: over-commit refused with: %s\n", arena.last_error().message.c_str());
}

TEST_CASE("cuda_vmm under the allocator: random operations keep the data") {
    REQUIRE(cudaSetDevice(0) == cudaSuccess);
    REQUIRE(cudaFree(nullptr) == cudaSuccess);
    constexpr std::size_t bpt = 57344;  // DeepSeek-R1-Distill-Qwen-7B, bf16 (FACTS.md)
    using kv_t =
        odma::allocator<odma::predict::oracle, odma::bucket::fixed, odma::backing::cuda_vmm>;
    kv_t kv({.bytes_per_token = bpt, .max_tokens = 4096, .safety_pool_fraction = 0.1}, {},
            odma::bucket::fixed::powers_of_two(64, 4096),
            odma::backing::cuda_vmm(std::size_t(16384) * bpt, {.device = 0}));
    struct model_lease {
        odma::lease handle;
        std::uint32_t used;
        unsigned seed;
    };
    std::vector<model_lease> live;
    std::mt19937 rng(3);
    int migrated = 0;
    for (int step = 0; step < 300; ++step) {
        if (rng() % 3 == 0 || live.empty()) {
            const std::uint64_t id = std::uint64_t(step) + 1;
            kv.predictor().tell(id, 1 + rng() % 512);
            auto l = kv.admit({.id = id,
                               .prompt_tokens = 1 + std::uint32_t(rng() % 256),
                               .max_new_tokens = 2048});
            if (!l) continue;
            live.push_back({*l, kv.region_of(*l)->used, unsigned(step)});
            gpu_write(kv.data(*l), pattern(live.back().used * bpt, live.back().seed));
        } else if (rng() % 2 == 0) {
            auto& m = live[rng() % live.size()];
            const auto total = std::min<std::uint32_t>(4096, m.used + 1 + rng() % 300);
            auto g = kv.extend(m.handle, total);
            if (!g) continue;
            migrated += *g == odma::growth::migrated;
            REQUIRE(gpu_read(kv.data(m.handle), m.used * bpt) == pattern(m.used * bpt, m.seed));
            m.used = total;
            gpu_write(kv.data(m.handle), pattern(m.used * bpt, m.seed));
        } else {
            const std::size_t k = rng() % live.size();
            REQUIRE(kv.release(live[k].handle, live[k].used));
            live[k] = live.back();
            live.pop_back();
        }
        REQUIRE(kv.check());
    }
    std::printf("cuda_vmm allocator run: %d migrations, peak mapped %zu MiB, peak used %zu MiB\n",
                migrated, kv.backing().counters().peak_mapped_bytes / mib,
                kv.stats().peak_used_bytes / mib);
    for (const auto& m : live)
        REQUIRE(kv.release(m.handle, m.used));
    CHECK(kv.backing().counters().mapped_bytes == 0);
}

TEST_CASE("cuda_vmm under the allocator: resize grows, then moves leases and keeps their data") {
    REQUIRE(cudaSetDevice(0) == cudaSuccess);
    REQUIRE(cudaFree(nullptr) == cudaSuccess);
    constexpr std::size_t bpt = 57344;
    using kv_t =
        odma::allocator<odma::predict::oracle, odma::bucket::fixed, odma::backing::cuda_vmm>;
    // 4,096 token slots reserved; the arena starts at 1,024 (no pool).
    kv_t kv({.bytes_per_token = bpt,
             .max_tokens = 512,
             .safety_pool_fraction = 0.0,
             .arena_bytes = 1024 * bpt},
            {}, odma::bucket::fixed::uniform(4, 512),
            odma::backing::cuda_vmm(4096 * bpt, {.device = 0}));
    std::vector<odma::lease> live;
    auto admit = [&](std::uint64_t id) {
        kv.predictor().tell(id, 28);  // 100 + 28: one 128-token bucket
        auto l = kv.admit({.id = id, .prompt_tokens = 100, .max_new_tokens = 400});
        REQUIRE(l);
        gpu_write(kv.data(*l), pattern(100 * bpt, unsigned(id)));
        live.push_back(*l);
    };
    for (std::uint64_t id = 0; id < 8; ++id)
        admit(id);  // [0, 1024): full
    REQUIRE(kv.resize(2048 * bpt));
    for (std::uint64_t id = 8; id < 12; ++id)
        admit(id);  // [1024, 1536)
    for (int k = 0; k < 4; ++k)
        REQUIRE(kv.release(live[k], 1));
    CHECK(kv.resize(1024 * bpt, 0).error() == odma::errc::no_memory);
    const auto moved = kv.resize(1024 * bpt, 4 * 100 * bpt);
    REQUIRE(moved);
    CHECK(moved.copied_bytes() == 4 * 100 * bpt);
    CHECK(kv.check());
    for (std::uint64_t id = 4; id < 12; ++id) {
        CHECK(kv.region_of(live[id])->offset_tokens < 1024);
        CHECK(gpu_read(kv.data(live[id]), 100 * bpt) == pattern(100 * bpt, unsigned(id)));
    }
    CHECK(kv.backing().counters().contract_violations == 0);
    for (std::uint64_t id = 4; id < 12; ++id)
        REQUIRE(kv.release(live[id], 1));
    CHECK(kv.backing().counters().mapped_bytes == 0);
}
