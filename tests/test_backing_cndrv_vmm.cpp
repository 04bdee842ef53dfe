// backing::cndrv_vmm against the fake CNRT/CNDrv (tests/fakes): call order, arguments,
// on-demand mapping, out-of-memory, injected driver failures, fallback, and the allocator.
#include <odma/backing/cndrv_vmm.hpp>  // first: the header compiles on its own

#include <odma/odma.hpp>

#include "fakes/fake_cambricon.hpp"
#include "fakes/mlu_test_support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>
#include <vector>

static_assert(ODMA_HAS_CNDRV_VMM == 1);
static_assert(odma::CommittingBacking<odma::backing::cndrv_vmm>);
static_assert(odma::ResizableBacking<odma::backing::cndrv_vmm>);

using odma_fake::calls;
using odma_test::mlu_read;
using odma_test::mlu_write;

namespace {

constexpr std::size_t kib = 1024, mib = kib * kib;
constexpr std::size_t granule = 64 * kib;  // the fake's minimum granularity

std::size_t index_of(const std::vector<std::string>& names, const std::string& name) {
    return std::size_t(std::find(names.begin(), names.end(), name) - names.begin());
}

std::uintptr_t addr(const std::byte* p) {
    return reinterpret_cast<std::uintptr_t>(p);
}

}  // namespace

TEST_CASE("cndrv_vmm: construction touches the runtime, then reserves address space only") {
    odma_fake::reset({.memory_per_device = 16 * mib});
    odma::backing::cndrv_vmm arena(100 * mib + 1, {.device = 1});  // more than the device has
    CHECK(arena.on_demand());
    CHECK(arena.granule_size() == granule);
    CHECK(arena.capacity() == (100 * mib / granule + 1) * granule);  // whole granules
    CHECK(odma_fake::device_bytes(1) == 0);                          // nothing physical yet

    const auto names = odma_fake::names();
    // cnrtSetDevice then cnrtFree(NULL) before the first driver call (the context rule).
    const auto free0 = index_of(names, "cnrtFree");
    REQUIRE(free0 < names.size());
    CHECK(calls("cnrtFree")[0].args[0] == 0);
    CHECK(index_of(names, "cnrtSetDevice") < free0);
    CHECK(free0 < index_of(names, "cnDeviceGet"));
    CHECK(calls("cnDeviceGet")[0].args[1] == 1);
    const auto attr = calls("cnDeviceGetAttribute");
    REQUIRE(attr.size() == 1);
    CHECK(attr[0].args[1] == CN_DEVICE_ATTRIBUTE_VIRTUAL_ADDRESS_MANAGEMENT_SUPPORTED);
    const auto gran = calls("cnMemGetAllocationGranularity");
    REQUIRE(gran.size() == 1);
    CHECK(gran[0].args[2] == CN_MEM_ALLOC_GRANULARITY_MINIMUM);
    const auto reserve = calls("cnMemAddressReserve");
    REQUIRE(reserve.size() == 1);
    CHECK(reserve[0].args[1] == arena.capacity());
    CHECK(reserve[0].args[2] == 0);  // alignment
    CHECK(reserve[0].args[3] == 0);  // no fixed start
    CHECK(reserve[0].args[4] == 0);  // flags
    CHECK(reserve[0].args[5] == addr(arena.address(0)));
    CHECK(odma_fake::current_device() == 0);  // the caller's device is restored
}

TEST_CASE("cndrv_vmm: commit maps one handle per granule, decommit unmaps and releases") {
    odma_fake::reset();
    odma::backing::cndrv_vmm arena(64 * mib, {.device = 1});
    odma_fake::clear_log();
    REQUIRE(arena.commit(granule / 2, granule));  // touches granules 0 and 1
    const auto creates = calls("cnMemCreate");
    const auto maps = calls("cnMemMap");
    const auto access = calls("cnMemSetAccess");
    REQUIRE(creates.size() == 2);
    REQUIRE(maps.size() == 2);
    REQUIRE(access.size() == 2);
    for (int i = 0; i < 2; ++i) {
        CHECK(creates[i].args[1] == granule);  // size
        CHECK(creates[i].args[3] == 0);        // flags
        CHECK(maps[i].args[0] == addr(arena.address(i * granule)));
        CHECK(maps[i].args[1] == granule);
        CHECK(maps[i].args[2] == 0);                   // offset 0: the whole handle
        CHECK(maps[i].args[3] == creates[i].args[4]);  // the handle just created
        CHECK(access[i].args[0] == maps[i].args[0]);
        CHECK(access[i].args[1] == granule);
        CHECK(access[i].args[3] == 1);  // count
    }
    CHECK(odma_fake::device_bytes(1) == 2 * granule);
    CHECK(arena.counters().mapped_bytes == 2 * granule);
    CHECK(arena.counters().committed_bytes == granule);
    CHECK(odma_fake::current_device() == 0);

    // The committed bytes are usable device memory; bytes outside are not.
    std::vector<std::byte> data(granule, std::byte{0x3c});
    mlu_write(arena.address(granule / 2), data);
    CHECK(mlu_read(arena.address(granule / 2), granule) == data);
    std::byte probe[16];
    CHECK(cnrtMemcpy(probe, arena.address(3 * granule), 16, cnrtMemcpyDevToHost) != cnrtSuccess);

    // Growing inside a mapped granule costs no driver call.
    odma_fake::clear_log();
    REQUIRE(arena.commit(granule / 2 + granule, 100));
    CHECK(calls("cnMemCreate").empty());

    arena.decommit(granule / 2, granule + 100);
    const auto unmaps = calls("cnMemUnmap");
    const auto releases = calls("cnMemRelease");
    REQUIRE(unmaps.size() == 2);
    REQUIRE(releases.size() == 2);
    CHECK(unmaps[0].args[1] == granule);
    CHECK(odma_fake::device_bytes(1) == 0);
    CHECK(arena.counters().mapped_bytes == 0);
    CHECK(arena.counters().peak_mapped_bytes == 2 * granule);
}

TEST_CASE("cndrv_vmm: out of device memory makes commit false and leaves nothing behind") {
    odma_fake::reset({.memory_per_device = 4 * granule});
    odma::backing::cndrv_vmm arena(16 * granule);
    REQUIRE(arena.commit(0, granule));
    CHECK_FALSE(arena.commit(2 * granule, 4 * granule));  // the 4th new granule does not fit
    CHECK(odma_fake::device_bytes(0) == granule);         // the 3 mapped for it were undone
    CHECK(odma_fake::in_use().handles == 1);
    CHECK(arena.counters().failed_commits == 1);
    CHECK(arena.last_error().code == CN_MEMORY_ERROR_OUT_OF_MEMORY);
    CHECK(arena.last_error().message.find("cnMemCreate") != std::string::npos);
    CHECK(arena.last_error().message.find("out of MLU memory") != std::string::npos);
    REQUIRE(arena.commit(2 * granule, 3 * granule));  // what fits still works
    CHECK(odma_fake::device_bytes(0) == 4 * granule);
}

TEST_CASE("cndrv_vmm: a failure at any step of mapping a granule is undone") {
    for (const char* step : {"cnMemCreate", "cnMemMap", "cnMemSetAccess"}) {
        CAPTURE(step);
        odma_fake::reset();
        odma::backing::cndrv_vmm arena(16 * granule);
        odma_fake::fail(step, CN_ERROR_INVALID_VALUE, 1);  // the second granule fails
        CHECK_FALSE(arena.commit(0, 3 * granule));
        CHECK(odma_fake::in_use().handles == 0);
        CHECK(odma_fake::in_use().mappings == 0);
        CHECK(odma_fake::device_bytes(0) == 0);
        CHECK(arena.last_error().code == CN_ERROR_INVALID_VALUE);
        CHECK(arena.last_error().message.find(step) != std::string::npos);
        CHECK(arena.counters().mapped_bytes == 0);
        REQUIRE(arena.commit(0, 3 * granule));
    }
}

TEST_CASE("cndrv_vmm: a granule the driver will not unmap stays mapped and is reused") {
    odma_fake::reset();
    {
        odma::backing::cndrv_vmm arena(16 * granule);
        REQUIRE(arena.commit(0, 2 * granule));
        odma_fake::fail("cnMemUnmap", CN_MEMORY_ERROR_INVALID_ADDRESS);
        arena.decommit(0, 2 * granule);
        CHECK(arena.counters().unmap_failures == 1);
        CHECK(arena.counters().mapped_bytes == granule);
        CHECK(odma_fake::in_use().mappings == 1);
        odma_fake::clear_log();
        REQUIRE(arena.commit(0, granule));  // reuses the still-mapped granule
        CHECK(calls("cnMemCreate").empty());
        CHECK(arena.last_error().code == CN_MEMORY_ERROR_INVALID_ADDRESS);
    }
    // Destruction unmaps everything, releases every handle and frees the reservation.
    const auto left = odma_fake::in_use();
    CHECK(left.mappings == 0);
    CHECK(left.handles == 0);
    CHECK(left.reservations == 0);
    CHECK(left.device_bytes == 0);
}

TEST_CASE("cndrv_vmm: devices without virtual memory management fall back to cnrtMalloc") {
    odma_fake::reset({.virtual_memory_supported = false});
    {
        odma::backing::cndrv_vmm arena(8 * mib);
        CHECK_FALSE(arena.on_demand());
        CHECK(arena.capacity() == 8 * mib);
        CHECK(odma_fake::device_bytes(0) == 8 * mib);
        CHECK(calls("cnMemAddressReserve").empty());
        REQUIRE(arena.commit(0, 4096));
        CHECK(arena.counters().committed_bytes == 4096);
        CHECK(arena.counters().mapped_bytes == 8 * mib);
        CHECK_FALSE(arena.commit(8 * mib, 1));  // outside: refused even so
        arena.decommit(0, 4096);
        CHECK(arena.counters().committed_bytes == 0);
        CHECK(calls("cnMemCreate").empty());
    }
    CHECK(odma_fake::in_use().allocations == 0);

    try {
        odma::backing::cndrv_vmm strict(8 * mib, {.allow_fallback = false});
        FAIL("no fallback allowed must throw");
    } catch (const odma::device_error& e) {
        CHECK(e.vendor_code() == CN_OPS_ERROR_NOT_SUPPORTED);
    }

    // A driver that claims support but refuses the reservation falls back the same way.
    odma_fake::reset();
    odma_fake::fail("cnMemAddressReserve", CN_OPS_ERROR_NOT_SUPPORTED);
    odma::backing::cndrv_vmm refused(4 * mib);
    CHECK_FALSE(refused.on_demand());
    // Any other reservation error is an error.
    odma_fake::fail("cnMemAddressReserve", CN_MEMORY_ERROR_OUT_OF_MEMORY);
    CHECK_THROWS_AS(odma::backing::cndrv_vmm(4 * mib), odma::device_error);
}

TEST_CASE("cndrv_vmm: granule choice and construction errors") {
    odma_fake::reset();
    odma::backing::cndrv_vmm big(8 * mib,
                                 {.granule = odma::backing::cndrv_vmm::granularity::recommended});
    CHECK(big.granule_size() == mib);
    odma::backing::cndrv_vmm explicit_granule(8 * mib, {.granule_bytes = 4 * granule});
    CHECK(explicit_granule.granule_size() == 4 * granule);
    CHECK_THROWS_AS(odma::backing::cndrv_vmm(8 * mib, {.granule_bytes = granule + 4096}),
                    odma::device_error);
    odma_fake::fail("cnDeviceGetAttribute", CN_ERROR_INVALID_DEVICE);
    try {
        odma::backing::cndrv_vmm broken(8 * mib);
        FAIL("must throw");
    } catch (const odma::device_error& e) {
        CHECK(e.vendor_code() == CN_ERROR_INVALID_DEVICE);
        CHECK(std::string(e.what()).find("cnDeviceGetAttribute") != std::string::npos);
    }
    CHECK_THROWS_AS(odma::backing::cndrv_vmm(8 * mib, {.device = 7}), odma::device_error);
}

TEST_CASE("cndrv_vmm: copies wait for completion before the source can be unmapped") {
    odma_fake::reset();
    cnrtQueue_t queue = nullptr;
    REQUIRE(cnrtQueueCreate(&queue) == cnrtSuccess);
    {
        odma::backing::cndrv_vmm arena(16 * granule, {.queue = queue});
        REQUIRE(arena.commit(0, 4 * granule));
        odma_fake::clear_log();
        arena.copy(2 * granule, 0, granule);
        CHECK(odma_fake::names() ==
              std::vector<std::string>{"cnrtGetDevice", "cnrtMemcpyAsync", "cnrtQueueSync"});
        CHECK(calls("cnrtMemcpyAsync")[0].args[4] == cnrtMemcpyDevToDev);
        CHECK(odma_fake::in_use().pending_async == 0);
        odma_fake::fail("cnrtQueueSync", cnrtErrorQueue);
        CHECK_THROWS_AS(arena.copy(2 * granule, 0, granule), odma::device_error);
    }
    REQUIRE(cnrtQueueDestroy(queue) == cnrtSuccess);
}

TEST_CASE("cndrv_vmm under the allocator: physical memory follows used tokens") {
    odma_fake::reset({.memory_per_device = 8 * mib});
    constexpr std::size_t bpt = 1024;  // 2 planes x 512 bytes: 128 tokens per plane granule
    using kv_t =
        odma::allocator<odma::predict::oracle, odma::bucket::fixed, odma::backing::cndrv_vmm>;
    {
        // 32 MiB of address space on an 8 MiB device.
        kv_t kv(
            {.bytes_per_token = bpt, .max_tokens = 2048, .safety_pool_fraction = 0.1, .planes = 2},
            {}, odma::bucket::fixed::powers_of_two(64, 2048), odma::backing::cndrv_vmm(32 * mib));
        struct model_lease {
            odma::lease handle;
            std::uint32_t used;
            std::byte seed;
        };
        std::vector<model_lease> live;
        std::mt19937 rng(5);
        int admitted = 0, no_memory = 0, in_place = 0, migrated = 0;
        auto fill = [&](const model_lease& m) {
            for (std::uint32_t p = 0; p < 2; ++p)
                mlu_write(kv.data(m.handle, p),
                          std::vector<std::byte>(std::size_t(m.used) * 512, m.seed));
        };
        auto intact = [&](const model_lease& m) {
            for (std::uint32_t p = 0; p < 2; ++p)
                if (mlu_read(kv.data(m.handle, p), std::size_t(m.used) * 512) !=
                    std::vector<std::byte>(std::size_t(m.used) * 512, m.seed))
                    return false;
            return true;
        };
        for (int step = 0; step < 600; ++step) {
            const auto op = rng() % 10;
            if (op < 4) {
                const std::uint64_t id = 1000 + std::uint64_t(step);
                kv.predictor().tell(id, 1 + rng() % 400);  // leases will outgrow these
                auto l = kv.admit({.id = id,
                                   .prompt_tokens = 1 + std::uint32_t(rng() % 300),
                                   .max_new_tokens = 1500});
                if (!l) {
                    REQUIRE(l.error() == odma::errc::no_memory);
                    ++no_memory;
                    continue;
                }
                ++admitted;
                live.push_back({*l, kv.region_of(*l)->used, std::byte(step & 0xff)});
                fill(live.back());
            } else if (op < 8 && !live.empty()) {
                auto& m = live[rng() % live.size()];
                const auto total = std::min<std::uint32_t>(2048, m.used + 1 + rng() % 200);
                auto g = kv.extend(m.handle, total);
                if (g) {
                    in_place += *g == odma::growth::in_place;
                    migrated += *g == odma::growth::migrated;
                    m.used = total;
                    fill(m);
                } else {
                    REQUIRE(g.error() == odma::errc::no_memory);
                    ++no_memory;
                }
                REQUIRE(intact(m));
            } else if (!live.empty()) {
                const std::size_t k = rng() % live.size();
                REQUIRE(intact(live[k]));
                REQUIRE(kv.release(live[k].handle, live[k].used));
                live[k] = live.back();
                live.pop_back();
            }
            REQUIRE(kv.check());
            // Physical use never exceeds the device, and is what the backing says it maps.
            const auto& c = kv.backing().counters();
            REQUIRE(odma_fake::device_bytes(0) == c.mapped_bytes);
            REQUIRE(c.mapped_bytes <= 8 * mib);
        }
        const auto& c = kv.backing().counters();
        MESSAGE("cndrv_vmm fake run: admitted "
                << admitted << ", no_memory " << no_memory << ", in place " << in_place
                << ", migrated " << migrated << "; peak mapped " << c.peak_mapped_bytes / kib
                << " KiB of " << kv.backing().capacity() / kib << " KiB reserved");
        CHECK(admitted > 20);
        CHECK(no_memory > 0);  // the device, not the reservation, was the limit
        CHECK(in_place > 0);
        CHECK(migrated > 0);
        CHECK(c.peak_mapped_bytes <= 8 * mib);
        CHECK(kv.stats().peak_used_bytes > 0);
        for (const auto& m : live)
            REQUIRE(kv.release(m.handle, m.used));
        CHECK(kv.backing().counters().mapped_bytes == 0);
        CHECK(kv.backing().counters().contract_violations == 0);
    }
    const auto left = odma_fake::in_use();
    CHECK(left.device_bytes == 0);
    CHECK(left.handles == 0);
    CHECK(left.mappings == 0);
    CHECK(left.reservations == 0);
}

TEST_CASE("cndrv_vmm under the allocator: a copy failing mid-migration gives back its memory") {
    odma_fake::reset();
    constexpr std::size_t bpt = 1024;
    using kv_t =
        odma::allocator<odma::predict::constant, odma::bucket::fixed, odma::backing::cndrv_vmm>;
    kv_t kv({.bytes_per_token = bpt, .max_tokens = 1024, .safety_pool_fraction = 0.25}, {},
            odma::bucket::fixed::uniform(8, 1024), odma::backing::cndrv_vmm(8 * mib));
    auto a = kv.admit({.id = 1, .prompt_tokens = 100, .max_new_tokens = 20});
    auto b = kv.admit({.id = 2, .prompt_tokens = 100, .max_new_tokens = 20});
    REQUIRE(a);
    REQUIRE(b);
    const auto before = odma_fake::device_bytes(0);
    odma_fake::fail("cnrtMemcpy", cnrtErrorArgsInvalid);
    CHECK_THROWS_AS((void)kv.extend(*a, 600), odma::device_error);
    CHECK(odma_fake::device_bytes(0) == before);  // the half-made copy was decommitted
    CHECK(kv.region_of(*a)->used == 100);
    CHECK(kv.check());
    REQUIRE(kv.extend(*a, 600));
}

TEST_CASE("cndrv_vmm under the allocator: resize grows, then moves leases and gives memory back") {
    odma_fake::reset({.memory_per_device = 16 * mib});
    constexpr std::size_t bpt = 1024;  // 2 planes x 512 bytes: 128 tokens per plane granule
    using kv_t =
        odma::allocator<odma::predict::oracle, odma::bucket::fixed, odma::backing::cndrv_vmm>;
    {
        // 32 MiB of address space; the arena starts at 4 MiB (4,096 tokens, no pool).
        kv_t kv({.bytes_per_token = bpt,
                 .max_tokens = 512,
                 .safety_pool_fraction = 0.0,
                 .planes = 2,
                 .arena_bytes = 4 * mib},
                {}, odma::bucket::fixed::uniform(4, 512), odma::backing::cndrv_vmm(32 * mib));
        struct model_lease {
            odma::lease handle;
            std::byte seed;
        };
        std::vector<model_lease> live;
        auto admit = [&](std::uint64_t id) {
            kv.predictor().tell(id, 28);  // 100 + 28: one 128-token bucket
            auto l = kv.admit({.id = id, .prompt_tokens = 100, .max_new_tokens = 400});
            if (!l) return false;
            live.push_back({*l, std::byte(id & 0xff)});
            for (std::uint32_t p = 0; p < 2; ++p)
                mlu_write(kv.data(*l, p), std::vector<std::byte>(100 * 512, live.back().seed));
            return true;
        };
        auto intact = [&](const model_lease& m) {
            for (std::uint32_t p = 0; p < 2; ++p)
                if (mlu_read(kv.data(m.handle, p), 100 * 512) !=
                    std::vector<std::byte>(100 * 512, m.seed))
                    return false;
            return true;
        };
        for (std::uint64_t id = 0; id < 32; ++id)
            REQUIRE(admit(id));
        CHECK_FALSE(admit(99));  // 32 x 128 tokens fill the 4 MiB arena

        REQUIRE(kv.resize(8 * mib));
        for (std::uint64_t id = 32; id < 40; ++id)
            REQUIRE(admit(id));  // tokens [4096, 5120)
        const auto& c = kv.backing().counters();
        CHECK(odma_fake::device_bytes(0) == c.mapped_bytes);

        // Free the first eight, then back to 4 MiB: the last eight move into their place.
        for (int k = 0; k < 8; ++k)
            REQUIRE(kv.release(live[k].handle, 1));
        live.erase(live.begin(), live.begin() + 8);
        const auto refused = kv.resize(4 * mib, 0);
        CHECK(refused.error() == odma::errc::no_memory);
        CHECK(refused.freeable_bytes() == (8192 - 5120) * bpt);
        const auto moved = kv.resize(4 * mib, 8 * 100 * bpt);
        REQUIRE(moved);
        CHECK(moved.copied_bytes() == 8 * 100 * bpt);
        CHECK(kv.check());
        for (const auto& m : live) {
            CHECK(kv.region_of(m.handle)->offset_tokens < 4096);
            CHECK(intact(m));
        }
        // Nothing is mapped past token 4,096 of either plane: 32 leases of 100 tokens in
        // 128-token granules, one granule per lease and plane.
        CHECK(c.mapped_bytes == 32 * 2 * granule);
        CHECK(odma_fake::device_bytes(0) == c.mapped_bytes);
        CHECK(c.contract_violations == 0);
        for (const auto& m : live)
            REQUIRE(kv.release(m.handle, 1));
        CHECK(c.mapped_bytes == 0);
    }
    CHECK(odma_fake::in_use().device_bytes == 0);
}
