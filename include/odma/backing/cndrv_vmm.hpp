// odma/backing/cndrv_vmm.hpp - an MLU arena reserved as virtual address space and backed on
// demand through CNDrv virtual memory management.
//
// Compiles only where <cnrt.h> and <cn_api.h> are found (Cambricon Neuware SDK; link -lcnrt
// -lcndrv); elsewhere it defines nothing and ODMA_HAS_CNDRV_VMM is 0.
#pragma once

#if __has_include(<cnrt.h>) && __has_include(<cn_api.h>)

#include <cn_api.h>
#include <cnrt.h>

#include <odma/backing/commit_counters.hpp>
#include <odma/detail/cnrt_support.hpp>
#include <odma/detail/vmm_arena.hpp>
#include <odma/errc.hpp>

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>

#define ODMA_HAS_CNDRV_VMM 1

namespace odma::detail {

/// CNDrv calls for vmm_arena (see there). Device selection goes through CNRT, as the runtime
/// owns the context the driver calls use.
struct cndrv_driver {
    static constexpr const char* who = "odma::backing::cndrv_vmm";
    static constexpr const char* create_name = "cnMemCreate";
    static constexpr const char* map_name = "cnMemMap";
    static constexpr const char* set_access_name = "cnMemSetAccess";
    static constexpr const char* unmap_name = "cnMemUnmap";
    static constexpr const char* release_name = "cnMemRelease";

    int device = 0;
    CNmemAllocationProp prop{};
    CNmemAccessDesc access{};

    int create(std::uint64_t& handle, std::size_t size) noexcept {
        CNmemGenericAllocationHandle h{};
        const CNresult r = cnMemCreate(&h, size, &prop, 0);
        handle = h;
        return static_cast<int>(r);
    }
    int map(std::uint64_t at, std::size_t size, std::uint64_t handle) noexcept {
        return static_cast<int>(cnMemMap(at, size, 0, handle, 0));
    }
    int set_access(std::uint64_t at, std::size_t size) noexcept {
        return static_cast<int>(cnMemSetAccess(at, size, &access, 1));  // count must be 1
    }
    int unmap(std::uint64_t at, std::size_t size) noexcept {
        return static_cast<int>(cnMemUnmap(at, size));
    }
    int release(std::uint64_t handle) noexcept { return static_cast<int>(cnMemRelease(handle)); }
    int free_reservation(std::uint64_t base, std::size_t size) noexcept {
        return static_cast<int>(cnMemAddressFree(base, size));
    }
    int free_fallback(std::uint64_t base) noexcept {
        return static_cast<int>(
            cnrtFree(reinterpret_cast<void*>(static_cast<std::uintptr_t>(base))));
    }
    void on_destroy() noexcept {}

    static std::string message(int code, const std::string& what) {
        const char* text = nullptr;
        if (cnGetErrorString(static_cast<CNresult>(code), &text) != CN_SUCCESS || !text)
            text = "unknown CNDrv error";
        return std::string(who) + ": " + what + " failed: " + text + " (CNresult " +
               std::to_string(code) + ")";
    }
    static void check(CNresult code, const std::string& what) {
        if (code != CN_SUCCESS) throw device_error(static_cast<int>(code), message(code, what));
    }

    /// Selects the backing's MLU for the scope, restoring the caller's after.
    class scope {
    public:
        explicit scope(const cndrv_driver& d) noexcept : on_(d.device, std::nothrow) {}
        bool ok() const noexcept { return on_.ok(); }
        int code() const noexcept { return static_cast<int>(CN_ERROR_INVALID_DEVICE); }

    private:
        cnrt_device_scope on_;
    };
};

}  // namespace odma::detail

namespace odma::backing {

/// A large range of MLU virtual address space (cnMemAddressReserve) whose granules get physical
/// memory only while leases hold tokens in them (cnMemCreate + cnMemMap + cnMemSetAccess), and
/// give it back when they stop (cnMemUnmap + cnMemRelease).
///
/// This is what makes over-reservation free: the allocator may reserve a lease's predicted
/// worst case, grow it in place without copying, and the device pays only for the tokens
/// written, rounded to granules. Reserve more address space than the device has memory
/// (e.g. 2x) and let commit() - which returns false at CN_MEMORY_ERROR_OUT_OF_MEMORY, making
/// the allocator answer errc::no_memory - be the real limit.
///
/// How CNDrv is used, following its documentation:
///   - the runtime is selected with cnrtSetDevice and touched (cnrtFree(NULL)) before the first
///     cn* call, because cnrtSetDevice alone leaves the context inactive;
///   - each granule is its own physical handle mapped at offset 0 (cnMemMap maps a whole
///     handle, and a mapping cannot be partly unmapped), then made accessible with
///     cnMemSetAccess(count 1);
///   - the granule is the device's minimum granularity by default (finer on-demand steps) or
///     the recommended one (fewer, larger maps); public serving code reports 32 MiB on MLU.
///
/// Devices without virtual address management (CN_DEVICE_ATTRIBUTE_VIRTUAL_ADDRESS_MANAGEMENT_
/// SUPPORTED = 0, or cnMemAddressReserve answering CN_OPS_ERROR_NOT_SUPPORTED) fall back to one
/// cnrtMalloc of the whole capacity, unless options::allow_fallback is false: commit() then
/// always succeeds, on_demand() is false and counters().mapped_bytes is the whole capacity.
///
/// Errors: construction and copy() throw odma::device_error with the vendor code and text.
/// commit() never throws (the allocator needs a clean yes/no): any failure returns false and
/// is kept in last_error(). The on-demand machinery is detail::vmm_arena, shared with
/// cuda_vmm. Move-only; not thread-safe.
class cndrv_vmm : public detail::vmm_arena<detail::cndrv_driver> {
public:
    static constexpr int current_device = -1;

    using granularity = detail::vmm_granularity;

    struct options {
        /// MLU ordinal; current_device means the caller's current device. Selected around the
        /// backing's own calls, the caller's device restored after.
        int device = current_device;
        /// Which device granularity to map in, unless granule_bytes is set.
        granularity granule = granularity::minimum;
        /// An explicit granule in bytes: a multiple of the minimum granularity. 0: use granule.
        std::size_t granule_bytes = 0;
        /// Without device VMM support: true falls back to one cnrtMalloc of the whole
        /// capacity; false throws device_error(CN_OPS_ERROR_NOT_SUPPORTED).
        bool allow_fallback = true;
        /// Copies run as cnrtMemcpyAsync on this queue, followed by cnrtQueueSync (the
        /// allocator unmaps the source right after copy() returns). Null: synchronous
        /// cnrtMemcpy. Not owned.
        cnrtQueue_t queue = nullptr;
    };

    /// Reserves `bytes` bytes on the current device, minimum granularity, fallback allowed.
    explicit cndrv_vmm(std::size_t bytes) : cndrv_vmm(bytes, options{}) {}

    /// Reserves `bytes` bytes of virtual address space, rounded up to whole granules.
    /// Throws device_error.
    cndrv_vmm(std::size_t bytes, options opts) : queue_(opts.queue) {
        using driver = detail::cndrv_driver;
        driver_.device = detail::cnrt_resolve_device(opts.device, driver::who);
        activate();
        detail::cnrt_device_scope on(driver_.device, driver::who);
        // cnrtSetDevice leaves the context inactive until the runtime is used; cn* calls need
        // it active. The result is ignored: this call's only job is to activate the context,
        // and every driver call below reports its own errors.
        (void)cnrtFree(nullptr);

        CNdev dev{};
        driver::check(cnDeviceGet(&dev, driver_.device), "cnDeviceGet");
        int supported = 0;
        driver::check(
            cnDeviceGetAttribute(&supported,
                                 CN_DEVICE_ATTRIBUTE_VIRTUAL_ADDRESS_MANAGEMENT_SUPPORTED, dev),
            "cnDeviceGetAttribute(VIRTUAL_ADDRESS_MANAGEMENT_SUPPORTED)");
        driver_.prop.type = CN_MEM_ALLOCATION_TYPE_DEFAULT;
        driver_.prop.location.type = CN_MEM_LOCATION_TYPE_DEVICE;
        driver_.prop.location.id = static_cast<cn_uint32_t>(driver_.device);
        driver_.access.location = driver_.prop.location;
        driver_.access.accessFlags = CN_MEM_ACCESS_FLAGS_PROT_READWRITE;

        if (supported && reserve(bytes, opts)) return;
        if (!opts.allow_fallback)
            throw device_error(static_cast<int>(CN_OPS_ERROR_NOT_SUPPORTED),
                               std::string(driver::who) + ": MLU " +
                                   std::to_string(driver_.device) +
                                   " does not support virtual address management and "
                                   "options::allow_fallback is false");
        // Fallback: the whole capacity physically, at once.
        void* p = nullptr;
        if (bytes)
            detail::cnrt_check(cnrtMalloc(&p, bytes), driver::who,
                               "fallback cnrtMalloc(" + std::to_string(bytes) + " bytes) on MLU " +
                                   std::to_string(driver_.device) +
                                   " (no virtual address management)");
        adopt_fallback(reinterpret_cast<std::uintptr_t>(p), bytes);
    }

    cndrv_vmm(cndrv_vmm&&) noexcept = default;
    cndrv_vmm& operator=(cndrv_vmm&&) noexcept = default;

    int device() const noexcept { return driver_.device; }

    /// Device-to-device copy between two committed, non-overlapping ranges; returns when the
    /// copy is complete. Throws device_error.
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) {
        if (bytes == 0) return;
        const char* who = detail::cndrv_driver::who;
        detail::cnrt_device_scope on(driver_.device, who);
        if (queue_) {
            detail::cnrt_check(
                cnrtMemcpyAsync(address(dst), address(src), bytes, queue_, cnrtMemcpyDevToDev), who,
                "cnrtMemcpyAsync(device to device)");
            detail::cnrt_check(cnrtQueueSync(queue_), who, "cnrtQueueSync");
        } else {
            detail::cnrt_check(cnrtMemcpy(address(dst), address(src), bytes, cnrtMemcpyDevToDev),
                               who, "cnrtMemcpy(device to device)");
        }
    }

private:
    // Reserves the address space; false when the driver says VMM is not supported after all.
    bool reserve(std::size_t bytes, const options& opts) {
        using driver = detail::cndrv_driver;
        cn_uint64_t minimum = 0;
        driver::check(cnMemGetAllocationGranularity(&minimum, &driver_.prop,
                                                    CN_MEM_ALLOC_GRANULARITY_MINIMUM),
                      "cnMemGetAllocationGranularity(MINIMUM)");
        cn_uint64_t recommended = 0;
        if (!opts.granule_bytes && opts.granule == granularity::recommended)
            driver::check(cnMemGetAllocationGranularity(&recommended, &driver_.prop,
                                                        CN_MEM_ALLOC_GRANULARITY_RECOMMENDED),
                          "cnMemGetAllocationGranularity(RECOMMENDED)");
        const std::size_t granule = choose_granule(minimum, opts.granule_bytes, recommended,
                                                   static_cast<int>(CN_ERROR_INVALID_VALUE));
        const std::size_t reserved = (bytes + granule - 1) / granule * granule;
        CNaddr base{};
        if (reserved) {
            const CNresult r = cnMemAddressReserve(&base, reserved, 0, 0, 0);
            if (r == CN_OPS_ERROR_NOT_SUPPORTED) return false;
            driver::check(r, "cnMemAddressReserve(" + std::to_string(reserved) + " bytes)");
        }
        adopt_reservation(base, reserved, granule);
        return true;
    }

    cnrtQueue_t queue_ = nullptr;
};

}  // namespace odma::backing

#else
#define ODMA_HAS_CNDRV_VMM 0
#endif  // __has_include(<cnrt.h>) && __has_include(<cn_api.h>)
