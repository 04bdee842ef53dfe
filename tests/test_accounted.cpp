// backing::accounted and backing::placement_only: the Backing contract, accounting per kind,
// errors, determinism, use under the allocator, and the former names (lpddr_emulated,
// simulated, the cost model's types in odma::backing).
#include "support/memory_streams.hpp"

#include <odma/backing/accounted.hpp>
#include <odma/backing/lpddr_emulated.hpp>
#include <odma/backing/memory_model.hpp>
#include <odma/backing/placement_only.hpp>
#include <odma/backing/simulated.hpp>
#include <odma/odma.hpp>

#include <doctest/doctest.h>

#include <cstring>
#include <stdexcept>
#include <type_traits>

using odma::backing::accounted;
using odma::backing::host;
using odma::backing::placement_only;
using odma::memory::access_kind;
using odma::memory::memory_model;

namespace {
memory_model lpddr5() {
    return odma_test::quick(memory_model::lpddr5_6400());
}
}  // namespace

TEST_CASE("accounted models Backing and AccountingBacking; host accounts for free") {
    static_assert(odma::Backing<accounted<host>>);
    static_assert(odma::AccountingBacking<accounted<host>>);
    static_assert(odma::AccountingBacking<accounted<placement_only>>);
    static_assert(odma::Backing<placement_only>);
    static_assert(!odma::AccountingBacking<placement_only>);
    static_assert(std::is_same_v<accounted<placement_only>::pointer, std::uintptr_t>);
    // The zero-cost no-op: same interface, nothing recorded, nothing that can throw.
    static_assert(odma::AccountingBacking<host>);
    host h(4096);
    static_assert(noexcept(h.read(0, 64))&& noexcept(h.write(0, 64)));
    h.read(0, 4096);
    h.write(0, 4096);
}

TEST_CASE("placement_only: addresses are offsets, nothing is allocated") {
    placement_only s(24ull << 30);
    CHECK(s.capacity() == 24ull << 30);
    CHECK(s.address(12345) == 12345u);
    s.copy(0, 1ull << 30, 1ull << 20);  // moves nothing, costs nothing
    auto device = odma::backing::make_placement_device(lpddr5());
    CHECK(device.capacity() == lpddr5().capacity_bytes);
    device.read(device.capacity() - 64, 64);  // the last line of a 24 GB device
    CHECK(device.report().read.bytes == 64);
}

TEST_CASE("reads, writes and copies are accounted per kind; copy moves the inner bytes") {
    accounted<host> device(host(1u << 20), lpddr5());
    std::memset(device.address(0), 7, 4096);
    device.copy(65536, 0, 4096);
    CHECK(std::memcmp(device.address(65536), device.address(0), 4096) == 0);
    CHECK(static_cast<unsigned char>(*device.address(65536 + 4095)) == 7);
    device.read(0, 16384);
    device.read(16384, 16384);
    device.write(131072, 100);
    const auto& r = device.report();
    CHECK(r.read.bytes == 32768);
    CHECK(r.read.runs == 2);
    CHECK(r.read.bursts == 1024);
    CHECK(r.write.bytes == 100);
    CHECK(r.write.bursts == 4);  // 100 B from a burst boundary touch 4 bursts of 32 B
    CHECK(r.migration.bytes == 4096);
    CHECK(r.migration.runs == 1);
    CHECK(r.migration.bursts == 256);  // 128 read + 128 written
    CHECK(r.read.row_hits + r.read.activations == r.read.bursts);
    // Both layers are reported; the accelerator layer is runs x the model's cost.
    const double per_run = device.model().discontinuity_ns;
    CHECK(r.read.discontinuity_ns == doctest::Approx(2 * per_run));
    CHECK(r.all().discontinuity_ns == doctest::Approx(4 * per_run));
    CHECK(r.read.dram_ns > 0);
    CHECK(r.all().total_ns() == doctest::Approx(r.all().dram_ns + r.all().discontinuity_ns));
    CHECK(r.read.effective_gbps() > 0);
    CHECK(r.read.effective_gbps() < device.model().peak_bytes_per_ns());
    device.reset_report();
    CHECK(device.report().all().bytes == 0);
    CHECK(device.report().all().total_ns() == 0.0);
}

TEST_CASE("a run continuing the previous one costs streaming, not a new start") {
    auto device = odma::backing::make_placement_device(lpddr5());
    device.read(0, 1u << 20);
    const auto whole = device.report().read;
    device.reset_report();
    for (std::uint64_t at = 0; at < (1u << 20); at += 16384)
        device.read(at, 16384);  // the same bytes as 64 adjacent blocks
    const auto blocks = device.report().read;
    CHECK(double(blocks.activations) == doctest::Approx(double(whole.activations)).epsilon(0.05));
    CHECK(blocks.dram_ns == doctest::Approx(whole.dram_ns).epsilon(0.02));
    CHECK(blocks.runs == 64);
    CHECK(blocks.discontinuity_ns == doctest::Approx(64 * device.model().discontinuity_ns));
}

TEST_CASE("errors: out-of-range accesses throw, empty ones are no runs, oversize arenas refused") {
    accounted<host> device(host(8192), lpddr5());
    CHECK_THROWS_AS(device.read(8192 - 63, 64), std::out_of_range);
    CHECK_THROWS_AS(device.write(~std::size_t(0) - 10, 64), std::out_of_range);
    CHECK_THROWS_AS(device.copy(0, 8000, 1024), std::out_of_range);
    device.read(100, 0);
    CHECK(device.report().read.runs == 0);
    memory_model small = lpddr5();
    small.capacity_bytes = std::uint64_t(small.channels) * small.banks_per_channel() *
                           small.row_bytes;  // one row per bank: 768 KiB
    CHECK_THROWS_AS(accounted<placement_only>(placement_only(1u << 20), small),
                    std::invalid_argument);
    memory_model broken = lpddr5();
    broken.row_bytes = 1000;
    CHECK_THROWS_AS(accounted<placement_only>(placement_only(4096), broken), std::invalid_argument);
}

TEST_CASE("accounting is deterministic") {
    const memory_model m = lpddr5();
    const auto runs = odma_test::random_runs(m, access_kind::read, 2000, 16384, 16384, 5);
    auto a = odma::backing::make_placement_device(m);
    auto b = odma::backing::make_placement_device(m);
    const auto ra = odma_test::account(a, runs).all();
    const auto rb = odma_test::account(b, runs).all();
    CHECK(ra.dram_ns == rb.dram_ns);
    CHECK(ra.activations == rb.activations);
    // The same device, reset, gives the same answer again.
    CHECK(odma_test::account(a, runs).all().dram_ns == ra.dram_ns);
}

TEST_CASE("channel parallelism: a stream on one channel takes as long as the whole device's") {
    auto device = odma::backing::make_placement_device(lpddr5());
    const std::uint64_t stride = device.model().channel_granule_bytes() * device.model().channels;
    for (std::uint64_t i = 0; i < 2000; ++i)
        device.read(i * stride, 512);  // every read on channel 0
    const double one_channel = device.report().read.dram_ns;
    device.reset_report();
    for (std::uint64_t i = 0; i < 2000; ++i)
        device.read(i * 512 * 7919 % (1ull << 34) / 512 * 512, 512);  // spread over channels
    const double spread = device.report().read.dram_ns;
    CHECK(one_channel > 10 * spread);
}

TEST_CASE("the allocator's migrations are accounted as migration traffic") {
    // 4 planes of 1 KiB per token (a per-layer K/V plane of the paper's model, 4 of them).
    const odma::config cfg{
        .bytes_per_token = 4096, .max_tokens = 256, .safety_pool_fraction = 0, .planes = 4};
    using kv_allocator =
        odma::allocator<odma::predict::constant, odma::bucket::fixed, accounted<host>>;
    kv_allocator kv(cfg, odma::predict::constant{}, odma::bucket::fixed::uniform(4, 256),
                    accounted<host>(host(1024 * 4096), lpddr5()));
    auto a = *kv.admit({.id = 1, .prompt_tokens = 10, .max_new_tokens = 54});  // 64 tokens
    auto b = *kv.admit({.id = 2, .prompt_tokens = 10, .max_new_tokens = 54});  // right after a
    (void)b;
    REQUIRE(kv.extend(a, 64));
    kv.backing().reset_report();
    REQUIRE(*kv.extend(a, 65) == odma::growth::migrated);
    const auto& r = kv.backing().report();
    CHECK(kv.stats().migrated_bytes == 64 * 4096);
    CHECK(r.migration.bytes == kv.stats().migrated_bytes);
    CHECK(r.migration.runs == 4);  // one copy per plane
    CHECK(r.migration.dram_ns > 0);
    CHECK(r.read.runs == 0);
    // A decode step reads each plane of each lease as one run through the same backing.
    kv.backing().reset_report();
    for (std::uint32_t p = 0; p < cfg.planes; ++p)
        kv.backing().read(kv.data(a, p).get() - kv.backing().address(0),
                          kv.region_of(a)->used * cfg.bytes_per_plane_token());
    CHECK(kv.backing().report().read.runs == 4);
    CHECK(kv.backing().report().read.bytes == 65 * 4096);
}

TEST_CASE("the fast path's calibration is shared by equal models and redone for others") {
    const memory_model m = lpddr5();
    memory_model renamed = m;
    renamed.name = "my-device";
    renamed.discontinuity_ns = 99;  // the accelerator layer does not enter the calibration
    memory_model slower = m;
    slower.tFAW = 40;
    const auto a = odma::memory::detail::cost_table(m, access_kind::read);
    CHECK(odma::memory::detail::cost_table(renamed, access_kind::read) == a);
    const auto b = odma::memory::detail::cost_table(slower, access_kind::read);
    CHECK(b != a);
    // A wider activation window makes random lines dearer and leaves streaming alone.
    CHECK(b->random.front().ns > a->random.front().ns);
    CHECK(b->sequential.ns == doctest::Approx(a->sequential.ns).epsilon(0.02));
}

TEST_CASE("the former names are the new types: code written against them compiles unchanged") {
    namespace backing = odma::backing;
    namespace memory = odma::memory;
    static_assert(std::is_same_v<backing::lpddr_emulated<host>, accounted<host>>);
    static_assert(std::is_same_v<backing::lpddr_emulated<>, accounted<>>);
    static_assert(
        std::is_same_v<backing::lpddr_emulated<backing::simulated>, accounted<placement_only>>);
    static_assert(std::is_same_v<backing::simulated, placement_only>);
    static_assert(std::is_same_v<backing::memory_model, memory::memory_model>);
    static_assert(std::is_same_v<backing::address_mapping, memory::address_mapping>);
    static_assert(std::is_same_v<backing::dram_location, memory::dram_location>);
    static_assert(std::is_same_v<backing::access_kind, memory::access_kind>);
    static_assert(std::is_same_v<backing::access_totals, memory::access_totals>);
    static_assert(std::is_same_v<backing::access_report, memory::access_report>);
    static_assert(backing::access_kinds == memory::access_kinds);
    auto device = backing::make_simulated_device(lpddr5());
    static_assert(std::is_same_v<decltype(device), accounted<placement_only>>);
    device.read(0, 64);
    CHECK(device.report()[backing::access_kind::read].bytes == 64);
}
