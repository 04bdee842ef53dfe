// backing::cnrt against the fake CNRT (tests/fakes): every call, argument and error path.
#include <odma/backing/cnrt.hpp>  // first: the header compiles on its own against <cnrt.h>

#include <odma/odma.hpp>

#include "fakes/fake_cambricon.hpp"
#include "fakes/mlu_test_support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

static_assert(ODMA_HAS_CNRT == 1);
static_assert(odma::Backing<odma::backing::cnrt>);
static_assert(!odma::CommittingBacking<odma::backing::cnrt>);
static_assert(!odma::ResizableBacking<odma::backing::cnrt>);  // no allocator::resize on it

using odma_fake::calls;
using odma_test::mlu_read;
using odma_test::mlu_write;

TEST_CASE("cnrt: the arena is one cnrtMalloc on the chosen device, freed with cnrtFree") {
    odma_fake::reset();
    {
        odma::backing::cnrt arena(8 << 20, {.device = 1});
        CHECK(arena.capacity() == (8u << 20));
        CHECK(arena.device() == 1);
        const auto mallocs = calls("cnrtMalloc");
        REQUIRE(mallocs.size() == 1);
        CHECK(mallocs[0].args[1] == (8u << 20));
        CHECK(mallocs[0].args[2] == reinterpret_cast<std::uintptr_t>(arena.address(0)));
        CHECK(odma_fake::device_bytes(1) == (8u << 20));
        CHECK(odma_fake::device_bytes(0) == 0);
        // The device was selected for the call and the caller's device restored after.
        const auto sets = calls("cnrtSetDevice");
        REQUIRE(sets.size() == 2);
        CHECK(sets[0].args[0] == 1);
        CHECK(sets[1].args[0] == 0);
        CHECK(odma_fake::current_device() == 0);
        odma_fake::clear_log();
    }
    const auto frees = calls("cnrtFree");
    REQUIRE(frees.size() == 1);
    CHECK(odma_fake::in_use().allocations == 0);
    CHECK(odma_fake::device_bytes(1) == 0);
    CHECK(odma_fake::current_device() == 0);
}

TEST_CASE("cnrt: running out of device memory is a device_error with CNRT's own text") {
    odma_fake::reset({.memory_per_device = 16 << 20});
    try {
        odma::backing::cnrt arena(32 << 20);
        FAIL("cnrtMalloc beyond device memory must throw");
    } catch (const odma::device_error& e) {
        CHECK(e.vendor_code() == cnrtErrorNoMem);
        CHECK(e.code() == odma::errc::device_error);
        const std::string what = e.what();
        CHECK(what.find("cnrtMalloc(33554432 bytes) on MLU 0") != std::string::npos);
        CHECK(what.find(cnrtGetErrorStr(cnrtErrorNoMem)) != std::string::npos);
    }
    // An injected failure reports the same way.
    odma_fake::fail("cnrtMalloc", cnrtErrorNoMem);
    CHECK_THROWS_AS(odma::backing::cnrt(1 << 20), odma::device_error);
    odma_fake::fail("cnrtSetDevice", cnrtErrorDeviceInvalid);
    CHECK_THROWS_AS(odma::backing::cnrt(1 << 20, {.device = 1}), odma::device_error);
    CHECK(odma_fake::in_use().allocations == 0);
    CHECK(calls("cnrtMalloc").size() == 2);  // the device could not be selected: no cnrtMalloc
    odma::backing::cnrt empty(0);            // nothing to allocate: no call at all
    CHECK(calls("cnrtMalloc").size() == 2);
}

TEST_CASE("cnrt: copies are device-to-device cnrtMemcpy, errors become device_error") {
    odma_fake::reset();
    odma::backing::cnrt arena(1 << 20);
    std::vector<std::byte> data(4096);
    for (std::size_t i = 0; i < data.size(); ++i)
        data[i] = std::byte(i * 13);
    mlu_write(arena.address(1000), data);
    odma_fake::clear_log();
    arena.copy(500000, 1000, data.size());
    const auto copies = calls("cnrtMemcpy");
    REQUIRE(copies.size() == 1);
    CHECK(copies[0].args[0] == reinterpret_cast<std::uintptr_t>(arena.address(500000)));
    CHECK(copies[0].args[1] == reinterpret_cast<std::uintptr_t>(arena.address(1000)));
    CHECK(copies[0].args[2] == data.size());
    CHECK(copies[0].args[3] == cnrtMemcpyDevToDev);
    CHECK(mlu_read(arena.address(500000), data.size()) == data);

    odma_fake::clear_log();
    arena.copy(0, 1, 0);  // nothing to copy: no call
    CHECK(calls("cnrtMemcpy").empty());
    odma_fake::fail("cnrtMemcpy", cnrtErrorArgsInvalid);
    try {
        arena.copy(0, 4096, 100);
        FAIL("a failed copy must throw");
    } catch (const odma::device_error& e) {
        CHECK(e.vendor_code() == cnrtErrorArgsInvalid);
        CHECK(std::string(e.what()).find("cnrtMemcpy(device to device)") != std::string::npos);
    }
}

TEST_CASE("cnrt: with a queue, copies are enqueued with cnrtMemcpyAsync (queue before dir)") {
    odma_fake::reset();
    cnrtQueue_t queue = nullptr;
    REQUIRE(cnrtQueueCreate(&queue) == cnrtSuccess);
    {
        odma::backing::cnrt arena(1 << 20, {.queue = queue});
        odma_fake::clear_log();
        arena.copy(8192, 0, 4096);
        const auto copies = calls("cnrtMemcpyAsync");
        REQUIRE(copies.size() == 1);
        CHECK(copies[0].args[3] == reinterpret_cast<std::uintptr_t>(queue));
        CHECK(copies[0].args[4] == cnrtMemcpyDevToDev);
        CHECK(odma_fake::in_use().pending_async == 1);  // not waited for
        arena.synchronize();
        CHECK(odma_fake::in_use().pending_async == 0);
        odma_fake::fail("cnrtQueueSync", cnrtErrorQueue);
        CHECK_THROWS_AS(arena.synchronize(), odma::device_error);
    }
    REQUIRE(cnrtQueueDestroy(queue) == cnrtSuccess);
}

TEST_CASE("cnrt: query_memory reports cnrtMemGetInfo of the chosen device") {
    odma_fake::reset({.memory_per_device = 32 << 20});
    odma::backing::cnrt arena(12 << 20, {.device = 1});
    const auto mine = arena.device_memory();
    CHECK(mine.total == (32u << 20));
    CHECK(mine.free == (20u << 20));
    const auto other = odma::backing::cnrt::query_memory(0);
    CHECK(other.free == (32u << 20));
    odma_fake::fail("cnrtMemGetInfo", cnrtErrorNoDevice);
    CHECK_THROWS_AS(odma::backing::cnrt::query_memory(), odma::device_error);
}

TEST_CASE("cnrt: moves hand the arena over, it is freed exactly once") {
    odma_fake::reset();
    {
        odma::backing::cnrt a(1 << 20);
        odma::backing::cnrt b(std::move(a));
        CHECK(b.capacity() == (1u << 20));
        odma::backing::cnrt c(2 << 20);
        c = std::move(b);  // c's old arena is freed here
        CHECK(calls("cnrtFree").size() == 1);
    }
    CHECK(calls("cnrtFree").size() == 2);
    CHECK(odma_fake::in_use().allocations == 0);
}

TEST_CASE("cnrt under the allocator: migrations copy on the device, a failed copy rolls back") {
    odma_fake::reset();
    using kv_t = odma::allocator<odma::predict::constant, odma::bucket::fixed, odma::backing::cnrt>;
    constexpr std::size_t bpt = 64;
    kv_t kv({.bytes_per_token = bpt, .max_tokens = 256, .safety_pool_fraction = 0.25, .planes = 2},
            {}, odma::bucket::fixed::uniform(4, 256), odma::backing::cnrt(1024 * bpt));
    // Two leases side by side: the first cannot grow in place, so it migrates.
    auto a = kv.admit({.id = 1, .prompt_tokens = 40, .max_new_tokens = 20});
    auto b = kv.admit({.id = 2, .prompt_tokens = 40, .max_new_tokens = 20});
    REQUIRE(a);
    REQUIRE(b);
    std::vector<std::byte> tokens(40 * bpt / 2);
    for (std::size_t i = 0; i < tokens.size(); ++i)
        tokens[i] = std::byte(i);
    mlu_write(kv.data(*a, 0), tokens);
    mlu_write(kv.data(*a, 1), tokens);

    odma_fake::clear_log();
    odma_fake::fail("cnrtMemcpy", cnrtErrorNoMem, 1);  // the second plane's copy fails
    CHECK_THROWS_AS((void)kv.extend(*a, 100), odma::device_error);
    CHECK(kv.region_of(*a)->used == 40);  // still there, at its old size
    CHECK(kv.check());
    CHECK(mlu_read(kv.data(*a, 1), tokens.size()) == tokens);

    auto g = kv.extend(*a, 100);
    REQUIRE(g);
    CHECK(*g == odma::growth::migrated);
    CHECK(mlu_read(kv.data(*a, 0), tokens.size()) == tokens);
    CHECK(mlu_read(kv.data(*a, 1), tokens.size()) == tokens);
    const auto copies = calls("cnrtMemcpy");
    // The failed attempt (2 calls: one copied, one refused) plus one copy per plane.
    CHECK(std::count_if(copies.begin(), copies.end(), [](const odma_fake::call& c) {
              return c.args[3] == cnrtMemcpyDevToDev && c.result == cnrtSuccess;
          }) == 3);
    CHECK(kv.release(*a, 60));
    CHECK(kv.release(*b, 0));
}
