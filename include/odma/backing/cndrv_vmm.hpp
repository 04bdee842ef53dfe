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
#include <odma/backing/detail/cnrt_support.hpp>
#include <odma/backing/detail/device_runtime.hpp>
#include <odma/backing/detail/vmm_arena.hpp>
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
    static constexpr const char* granularity_name = "cnMemGetAllocationGranularity";
    static constexpr const char* reserve_name = "cnMemAddressReserve";
    static constexpr const char* device_noun = "MLU";
    static constexpr const char* vmm_name = "virtual address management";
    static constexpr int not_supported = CN_OPS_ERROR_NOT_SUPPORTED;
    static constexpr int invalid_value = CN_ERROR_INVALID_VALUE;

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
            cnrt_runtime::free(reinterpret_cast<void*>(static_cast<std::uintptr_t>(base))));
    }
    void on_destroy() noexcept {}
    int granularity(std::size_t& out, bool recommended) noexcept {
        cn_uint64_t g = 0;
        const CNresult r = cnMemGetAllocationGranularity(
            &g, &prop,
            recommended ? CN_MEM_ALLOC_GRANULARITY_RECOMMENDED : CN_MEM_ALLOC_GRANULARITY_MINIMUM);
        out = static_cast<std::size_t>(g);
        return static_cast<int>(r);
    }
    int reserve(std::uint64_t& base, std::size_t size) noexcept {
        CNaddr p{};
        const CNresult r = cnMemAddressReserve(&p, size, 0, 0, 0);
        base = p;
        return static_cast<int>(r);
    }
    int ordinal() const noexcept { return device; }
    bool supports_vmm() const {
        CNdev dev{};
        driver_check<cndrv_driver>(cnDeviceGet(&dev, device), "cnDeviceGet");
        int supported = 0;
        driver_check<cndrv_driver>(
            cnDeviceGetAttribute(&supported,
                                 CN_DEVICE_ATTRIBUTE_VIRTUAL_ADDRESS_MANAGEMENT_SUPPORTED, dev),
            "cnDeviceGetAttribute(VIRTUAL_ADDRESS_MANAGEMENT_SUPPORTED)");
        return supported != 0;
    }
    // Default device memory on this MLU, read-write from it.
    void describe_memory() noexcept {
        prop.type = CN_MEM_ALLOCATION_TYPE_DEFAULT;
        prop.location.type = CN_MEM_LOCATION_TYPE_DEVICE;
        prop.location.id = static_cast<cn_uint32_t>(device);
        access.location = prop.location;
        access.accessFlags = CN_MEM_ACCESS_FLAGS_PROT_READWRITE;
    }
    // The fallback arena is plain CNRT memory, so its errors are CNRT's (cnrtRet_t).
    void allocate_whole(std::uint64_t& base, std::size_t bytes) {
        void* p = nullptr;
        runtime_check<cnrt_runtime>(cnrt_runtime::malloc(p, bytes), who,
                                    "fallback cnrtMalloc(" + std::to_string(bytes) +
                                        " bytes) on MLU " + std::to_string(device) +
                                        " (no virtual address management)");
        base = reinterpret_cast<std::uintptr_t>(p);
    }

    /// "<who>: <what> failed: <cnGetErrorString text> (CNresult <code>)".
    static std::string message(int code, const std::string& what) {
        const char* text = nullptr;
        if (cnGetErrorString(static_cast<CNresult>(code), &text) != CN_SUCCESS || !text)
            text = "unknown CNDrv error";
        return failure_message(who, what, nullptr, text, "CNresult", code);
    }

    /// Selects the backing's MLU for the scope, restoring the caller's after.
    class scope {
    public:
        explicit scope(const cndrv_driver& d) noexcept : on_(d.device, std::nothrow) {}
        bool ok() const noexcept { return on_.ok(); }
        int code() const noexcept { return static_cast<int>(CN_ERROR_INVALID_DEVICE); }

    private:
        device_scope<cnrt_runtime> on_;
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
        using runtime = detail::cnrt_runtime;
        const char* who = detail::cndrv_driver::who;
        driver_.device = detail::resolve_device<runtime>(opts.device, who);
        activate();
        detail::device_scope<runtime> on(driver_.device, who);
        // cnrtSetDevice leaves the context inactive until the runtime is used; cn* calls need
        // it active. The result is ignored: this call's only job is to activate the context,
        // and every driver call below reports its own errors.
        (void)cnrtFree(nullptr);
        reserve_or_fallback(bytes, opts);
    }

    /// Device-to-device copy between two committed, non-overlapping ranges; returns when the
    /// copy is complete. Throws device_error.
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) {
        if (bytes == 0) return;
        using runtime = detail::cnrt_runtime;
        const char* who = detail::cndrv_driver::who;
        detail::device_scope<runtime> on(driver_.device, who);
        detail::copy_device_to_device<runtime>(address(dst), address(src), bytes, queue_, true,
                                               who);
    }

private:
    cnrtQueue_t queue_ = nullptr;
};

}  // namespace odma::backing

#else
#define ODMA_HAS_CNDRV_VMM 0
#endif  // __has_include(<cnrt.h>) && __has_include(<cn_api.h>)
