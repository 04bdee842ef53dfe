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
#include <odma/detail/granule_map.hpp>
#include <odma/errc.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#define ODMA_HAS_CNDRV_VMM 1

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
/// is kept in last_error(). Move-only; not thread-safe.
class cndrv_vmm {
public:
    using pointer = std::byte*;  ///< an MLU virtual address; never dereference it on the host

    static constexpr int current_device = -1;

    enum class granularity { minimum, recommended };

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

    /// The last driver error seen by commit()/decommit() (code 0: none).
    struct error {
        int code = 0;
        std::string message;
    };

    /// Reserves `bytes` bytes on the current device, minimum granularity, fallback allowed.
    explicit cndrv_vmm(std::size_t bytes) : cndrv_vmm(bytes, options{}) {}

    /// Reserves `bytes` bytes of virtual address space, rounded up to whole granules.
    /// Throws device_error.
    cndrv_vmm(std::size_t bytes, options opts)
        : device_(detail::cnrt_resolve_device(opts.device, who)), queue_(opts.queue) {
        detail::cnrt_device_scope on(device_, who);
        // cnrtSetDevice leaves the context inactive until the runtime is used; cn* calls need
        // it active. The result is ignored: this call's only job is to activate the context,
        // and every driver call below reports its own errors.
        (void)cnrtFree(nullptr);

        CNdev dev{};
        driver_check(cnDeviceGet(&dev, device_), "cnDeviceGet");
        int supported = 0;
        driver_check(cnDeviceGetAttribute(
                         &supported, CN_DEVICE_ATTRIBUTE_VIRTUAL_ADDRESS_MANAGEMENT_SUPPORTED, dev),
                     "cnDeviceGetAttribute(VIRTUAL_ADDRESS_MANAGEMENT_SUPPORTED)");

        prop_.type = CN_MEM_ALLOCATION_TYPE_DEFAULT;
        prop_.location.type = CN_MEM_LOCATION_TYPE_DEVICE;
        prop_.location.id = static_cast<cn_uint32_t>(device_);
        access_.location = prop_.location;
        access_.accessFlags = CN_MEM_ACCESS_FLAGS_PROT_READWRITE;

        if (supported) {
            const std::size_t granule = choose_granule(opts);
            const std::size_t reserved = (bytes + granule - 1) / granule * granule;
            if (reserved == 0) {
                granules_ = detail::granule_map(0, granule);
                return;
            }
            CNaddr base{};
            const CNresult r = cnMemAddressReserve(&base, reserved, 0, 0, 0);
            if (r == CN_SUCCESS) {
                base_ = base;
                granules_ = detail::granule_map(reserved, granule);
                handles_.assign(granules_.granule_count(), 0);
                return;
            }
            if (r != CN_OPS_ERROR_NOT_SUPPORTED)
                throw device_error(
                    static_cast<int>(r),
                    driver_message("cnMemAddressReserve(" + std::to_string(reserved) + " bytes)",
                                   r));
        }
        if (!opts.allow_fallback)
            throw device_error(static_cast<int>(CN_OPS_ERROR_NOT_SUPPORTED),
                               std::string(who) + ": MLU " + std::to_string(device_) +
                                   " does not support virtual address management and "
                                   "options::allow_fallback is false");
        // Fallback: the whole capacity physically, at once.
        fallback_ = true;
        if (bytes == 0) return;
        void* p = nullptr;
        detail::cnrt_check(cnrtMalloc(&p, bytes), who,
                           "fallback cnrtMalloc(" + std::to_string(bytes) + " bytes) on MLU " +
                               std::to_string(device_) + " (no virtual address management)");
        fallback_base_ = static_cast<std::byte*>(p);
        whole_ = detail::fully_backed(bytes);
    }

    cndrv_vmm(cndrv_vmm&& other) noexcept { take(other); }
    cndrv_vmm& operator=(cndrv_vmm&& other) noexcept {
        if (this != &other) {
            release();
            take(other);
        }
        return *this;
    }
    cndrv_vmm(const cndrv_vmm&) = delete;
    cndrv_vmm& operator=(const cndrv_vmm&) = delete;
    ~cndrv_vmm() { release(); }

    /// Reserved bytes: virtual, whole granules (the whole physical arena in fallback mode).
    std::size_t capacity() const noexcept {
        return fallback_ ? whole_.capacity() : granules_.capacity();
    }
    pointer address(std::size_t offset) const noexcept {
        return fallback_
                   ? fallback_base_ + offset
                   : reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(base_)) + offset;
    }
    /// False in fallback mode (no virtual address management on the device).
    bool on_demand() const noexcept { return !fallback_; }
    std::size_t granule_size() const noexcept {
        return fallback_ ? whole_.capacity() : granules_.granule();
    }
    int device() const noexcept { return device_; }
    const commit_counters& counters() const noexcept {
        return fallback_ ? whole_.counters() : granules_.counters();
    }
    const error& last_error() const noexcept { return last_error_; }

    /// Device-to-device copy between two committed, non-overlapping ranges; returns when the
    /// copy is complete. Throws device_error.
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) {
        if (bytes == 0) return;
        detail::cnrt_device_scope on(device_, who);
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

    /// Backs [offset, offset + bytes) with device memory. False (nothing changed) when the
    /// device is out of memory or the driver fails; last_error() says which.
    bool commit(std::size_t offset, std::size_t bytes) noexcept {
        if (fallback_) return whole_.commit(offset, bytes);
        return granules_.commit(
            offset, bytes, [this](std::size_t g, std::size_t n) { return map_granules(g, n); },
            [this](std::size_t g, std::size_t n) { return unmap_granules(g, n); });
    }

    /// The range holds no live data: granules no committed byte uses any more are unmapped and
    /// their memory released to the device.
    void decommit(std::size_t offset, std::size_t bytes) noexcept {
        if (fallback_) {
            whole_.decommit(offset, bytes);
            return;
        }
        granules_.decommit(offset, bytes,
                           [this](std::size_t g, std::size_t n) { return unmap_granules(g, n); });
    }

private:
    static constexpr const char* who = "odma::backing::cndrv_vmm";

    static std::string driver_message(const std::string& what, CNresult code) {
        const char* text = nullptr;
        if (cnGetErrorString(code, &text) != CN_SUCCESS || !text) text = "unknown CNDrv error";
        return std::string(who) + ": " + what + " failed: " + text + " (CNresult " +
               std::to_string(static_cast<long long>(code)) + ")";
    }
    static void driver_check(CNresult code, const std::string& what) {
        if (code != CN_SUCCESS)
            throw device_error(static_cast<int>(code), driver_message(what, code));
    }

    std::size_t choose_granule(const options& opts) {
        cn_uint64_t minimum = 0;
        driver_check(
            cnMemGetAllocationGranularity(&minimum, &prop_, CN_MEM_ALLOC_GRANULARITY_MINIMUM),
            "cnMemGetAllocationGranularity(MINIMUM)");
        if (minimum == 0)
            throw device_error(0, std::string(who) + ": the driver reported granularity 0");
        if (opts.granule_bytes) {
            if (opts.granule_bytes % minimum != 0)
                throw device_error(static_cast<int>(CN_ERROR_INVALID_VALUE),
                                   std::string(who) + ": granule of " +
                                       std::to_string(opts.granule_bytes) +
                                       " bytes is not a multiple of the device's minimum "
                                       "granularity (" +
                                       std::to_string(minimum) + ")");
            return opts.granule_bytes;
        }
        if (opts.granule == granularity::minimum) return minimum;
        cn_uint64_t recommended = 0;
        driver_check(cnMemGetAllocationGranularity(&recommended, &prop_,
                                                   CN_MEM_ALLOC_GRANULARITY_RECOMMENDED),
                     "cnMemGetAllocationGranularity(RECOMMENDED)");
        return recommended >= minimum && recommended % minimum == 0 ? recommended : minimum;
    }

    CNaddr granule_address(std::size_t g) const noexcept {
        return base_ + CNaddr(g) * CNaddr(granules_.granule());
    }

    // Keeps a driver failure for last_error(); never throws (it runs inside commit).
    void note(CNresult code, const char* what) noexcept {
        last_error_.code = static_cast<int>(code);
        try {
            last_error_.message = driver_message(what, code);
        } catch (...) {
            last_error_.message.clear();
        }
    }

    // Maps granules [g, g + n), one physical handle each; returns how many it mapped.
    std::size_t map_granules(std::size_t g, std::size_t n) noexcept {
        detail::cnrt_device_scope on(device_, std::nothrow);
        if (!on.ok()) {
            note(CN_ERROR_INVALID_DEVICE, "cnrtSetDevice");
            return 0;
        }
        const cn_uint64_t size = granules_.granule();
        for (std::size_t i = 0; i < n; ++i) {
            const CNaddr at = granule_address(g + i);
            CNmemGenericAllocationHandle handle{};
            CNresult r = cnMemCreate(&handle, size, &prop_, 0);
            if (r != CN_SUCCESS) {
                note(r, "cnMemCreate");
                return i;
            }
            r = cnMemMap(at, size, 0, handle, 0);
            if (r != CN_SUCCESS) {
                note(r, "cnMemMap");
                (void)cnMemRelease(handle);
                return i;
            }
            r = cnMemSetAccess(at, size, &access_, 1);
            if (r != CN_SUCCESS) {
                note(r, "cnMemSetAccess");
                (void)cnMemUnmap(at, size);
                (void)cnMemRelease(handle);
                return i;
            }
            handles_[g + i] = handle;
        }
        return n;
    }

    // Unmaps granules [g, g + n); returns how many from g it unmapped.
    std::size_t unmap_granules(std::size_t g, std::size_t n) noexcept {
        detail::cnrt_device_scope on(device_, std::nothrow);
        const cn_uint64_t size = granules_.granule();
        for (std::size_t i = 0; i < n; ++i) {
            CNresult r = cnMemUnmap(granule_address(g + i), size);
            if (r != CN_SUCCESS) {
                note(r, "cnMemUnmap");
                return i;  // still mapped: the granule map keeps it and retries later
            }
            r = cnMemRelease(handles_[g + i]);
            if (r != CN_SUCCESS) note(r, "cnMemRelease");  // unmapped; the handle leaks
            handles_[g + i] = 0;
        }
        return n;
    }

    void release() noexcept {
        if (fallback_) {
            if (fallback_base_) {
                detail::cnrt_device_scope on(device_, std::nothrow);
                (void)cnrtFree(fallback_base_);
            }
        } else if (base_) {
            granules_.unmap_all(
                [this](std::size_t g, std::size_t n) { return unmap_granules(g, n); });
            detail::cnrt_device_scope on(device_, std::nothrow);
            (void)cnMemAddressFree(base_, granules_.capacity());
        }
        base_ = 0;
        fallback_base_ = nullptr;
    }

    void take(cndrv_vmm& o) noexcept {
        device_ = o.device_;
        queue_ = o.queue_;
        prop_ = o.prop_;
        access_ = o.access_;
        base_ = std::exchange(o.base_, 0);
        granules_ = std::exchange(o.granules_, detail::granule_map{});
        handles_ = std::exchange(o.handles_, {});
        fallback_ = o.fallback_;
        fallback_base_ = std::exchange(o.fallback_base_, nullptr);
        whole_ = std::exchange(o.whole_, detail::fully_backed{});
        last_error_ = std::move(o.last_error_);
    }

    int device_ = 0;
    cnrtQueue_t queue_ = nullptr;
    CNmemAllocationProp prop_{};
    CNmemAccessDesc access_{};
    CNaddr base_ = 0;
    detail::granule_map granules_;
    std::vector<CNmemGenericAllocationHandle> handles_;  // per granule; 0 when unmapped
    bool fallback_ = false;
    std::byte* fallback_base_ = nullptr;
    detail::fully_backed whole_;  // fallback bookkeeping
    error last_error_;
};

}  // namespace odma::backing

#else
#define ODMA_HAS_CNDRV_VMM 0
#endif  // __has_include(<cnrt.h>) && __has_include(<cn_api.h>)
