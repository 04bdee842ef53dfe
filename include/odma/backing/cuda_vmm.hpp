// odma/backing/cuda_vmm.hpp - a GPU arena reserved as virtual address space and backed on
// demand through the CUDA driver API's virtual memory management.
//
// Compiles only where <cuda.h> is found (CUDA toolkit; link CUDA::cuda_driver, i.e. -lcuda);
// elsewhere it defines nothing and ODMA_HAS_CUDA_VMM is 0. Plain C++: no nvcc needed.
#pragma once

#if __has_include(<cuda.h>)

#include <cuda.h>

#include <odma/backing/commit_counters.hpp>
#include <odma/detail/granule_map.hpp>
#include <odma/errc.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#define ODMA_HAS_CUDA_VMM 1

namespace odma::backing {

/// A large range of GPU virtual address space (cuMemAddressReserve) whose granules get physical
/// memory only while leases hold tokens in them (cuMemCreate + cuMemMap + cuMemSetAccess), and
/// give it back when they stop (cuMemUnmap + cuMemRelease): the vAttention idea applied to
/// odma's contiguous regions. A lease grows in place without a copy, and over-reservation costs
/// only address space; commit() returning false at CUDA_ERROR_OUT_OF_MEMORY makes the allocator
/// answer errc::no_memory.
///
/// Each granule is its own physical handle, so any granule can be unmapped alone. The granule is
/// the device's minimum granularity by default (2 MiB on current GPUs).
///
/// Context: the backing works in the primary context of options::device (retained for its
/// lifetime), or in the context current at construction when no device is given. It makes
/// that context current around its own driver calls when the calling thread has another.
///
/// Devices without virtual memory management (CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_
/// SUPPORTED = 0, or cuMemAddressReserve answering CUDA_ERROR_NOT_SUPPORTED) fall back to one
/// cuMemAlloc of the whole capacity unless options::allow_fallback is false.
///
/// Errors: construction and copy() throw odma::device_error (CUresult + cuGetErrorName /
/// cuGetErrorString). commit() never throws: failures return false, kept in last_error().
/// Move-only; not thread-safe.
class cuda_vmm {
public:
    using pointer = std::byte*;  ///< a device virtual address; never dereference it on the host

    static constexpr int current_context = -1;

    enum class granularity { minimum, recommended };

    struct options {
        /// Device ordinal whose primary context the backing uses; current_context: the context
        /// current at construction (there must be one).
        int device = current_context;
        granularity granule = granularity::minimum;
        /// An explicit granule in bytes: a multiple of the minimum granularity. 0: use granule.
        std::size_t granule_bytes = 0;
        /// Without VMM support: fall back to cuMemAlloc of the whole capacity (true) or throw
        /// device_error(CUDA_ERROR_NOT_SUPPORTED) (false).
        bool allow_fallback = true;
        /// Copies are cuMemcpyDtoDAsync on this stream followed by cuStreamSynchronize (the
        /// allocator unmaps the source right after copy() returns). Null: the legacy default
        /// stream. Not owned.
        CUstream stream = nullptr;
    };

    struct error {
        int code = 0;
        std::string message;
    };

    /// Reserves `bytes` bytes in the current context, minimum granularity, fallback allowed.
    explicit cuda_vmm(std::size_t bytes) : cuda_vmm(bytes, options{}) {}

    /// Reserves `bytes` bytes of virtual address space, rounded up to whole granules.
    /// Throws device_error.
    cuda_vmm(std::size_t bytes, options opts) : stream_(opts.stream) {
        driver_check(cuInit(0), "cuInit");
        if (opts.device >= 0) {
            driver_check(cuDeviceGet(&device_, opts.device), "cuDeviceGet");
            driver_check(cuDevicePrimaryCtxRetain(&context_, device_), "cuDevicePrimaryCtxRetain");
            retained_ = true;
        } else {
            driver_check(cuCtxGetCurrent(&context_), "cuCtxGetCurrent");
            if (!context_)
                throw device_error(static_cast<int>(CUDA_ERROR_INVALID_CONTEXT),
                                   std::string(who) +
                                       ": no current CUDA context; pass options::device or make "
                                       "one current first (e.g. cudaSetDevice + cudaFree(0))");
            driver_check(cuCtxGetDevice(&device_), "cuCtxGetDevice");
        }
        try {
            context_scope on(context_);
            driver_check(on.result(), "cuCtxPushCurrent");
            int supported = 0;
            driver_check(
                cuDeviceGetAttribute(
                    &supported, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, device_),
                "cuDeviceGetAttribute(VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED)");
            prop_.type = CU_MEM_ALLOCATION_TYPE_PINNED;
            prop_.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
            prop_.location.id = static_cast<int>(device_);
            access_.location = prop_.location;
            access_.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
            if (supported && reserve(bytes, opts)) return;
            if (!opts.allow_fallback)
                throw device_error(static_cast<int>(CUDA_ERROR_NOT_SUPPORTED),
                                   std::string(who) + ": device " +
                                       std::to_string(static_cast<int>(device_)) +
                                       " does not support virtual memory management and "
                                       "options::allow_fallback is false");
            fallback_ = true;
            if (bytes == 0) return;
            CUdeviceptr p{};
            driver_check(cuMemAlloc(&p, bytes), "fallback cuMemAlloc(" + std::to_string(bytes) +
                                                    " bytes) (no virtual memory management)");
            fallback_base_ = p;
            whole_ = detail::fully_backed(bytes);
        } catch (...) {
            if (retained_) (void)cuDevicePrimaryCtxRelease(device_);
            throw;
        }
    }

    cuda_vmm(cuda_vmm&& other) noexcept { take(other); }
    cuda_vmm& operator=(cuda_vmm&& other) noexcept {
        if (this != &other) {
            release();
            take(other);
        }
        return *this;
    }
    cuda_vmm(const cuda_vmm&) = delete;
    cuda_vmm& operator=(const cuda_vmm&) = delete;
    ~cuda_vmm() { release(); }

    std::size_t capacity() const noexcept {
        return fallback_ ? whole_.capacity() : granules_.capacity();
    }
    pointer address(std::size_t offset) const noexcept {
        const CUdeviceptr base = fallback_ ? fallback_base_ : base_;
        return reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(base)) + offset;
    }
    bool on_demand() const noexcept { return !fallback_; }
    std::size_t granule_size() const noexcept {
        return fallback_ ? whole_.capacity() : granules_.granule();
    }
    int device() const noexcept { return static_cast<int>(device_); }
    const commit_counters& counters() const noexcept {
        return fallback_ ? whole_.counters() : granules_.counters();
    }
    const error& last_error() const noexcept { return last_error_; }

    /// Device-to-device copy between two committed, non-overlapping ranges; returns when the
    /// copy is complete. Throws device_error.
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) {
        if (bytes == 0) return;
        context_scope on(context_);
        driver_check(on.result(), "cuCtxPushCurrent");
        driver_check(cuMemcpyDtoDAsync(device_address(dst), device_address(src), bytes, stream_),
                     "cuMemcpyDtoDAsync");
        driver_check(cuStreamSynchronize(stream_), "cuStreamSynchronize");
    }

    /// Backs [offset, offset + bytes) with device memory. False (nothing changed) when the
    /// device is out of memory or the driver fails; last_error() says which.
    bool commit(std::size_t offset, std::size_t bytes) noexcept {
        if (fallback_) return whole_.commit(offset, bytes);
        return granules_.commit(
            offset, bytes, [this](std::size_t g, std::size_t n) { return map_granules(g, n); },
            [this](std::size_t g, std::size_t n) { return unmap_granules(g, n); });
    }

    void decommit(std::size_t offset, std::size_t bytes) noexcept {
        if (fallback_) {
            whole_.decommit(offset, bytes);
            return;
        }
        granules_.decommit(offset, bytes,
                           [this](std::size_t g, std::size_t n) { return unmap_granules(g, n); });
    }

private:
    static constexpr const char* who = "odma::backing::cuda_vmm";

    /// Pushes `ctx` when the calling thread has another context current; pops it after.
    class context_scope {
    public:
        explicit context_scope(CUcontext ctx) noexcept {
            CUcontext current = nullptr;
            if (cuCtxGetCurrent(&current) == CUDA_SUCCESS && current == ctx) return;
            result_ = cuCtxPushCurrent(ctx);
            pushed_ = result_ == CUDA_SUCCESS;
        }
        ~context_scope() {
            CUcontext popped = nullptr;
            if (pushed_) (void)cuCtxPopCurrent(&popped);
        }
        context_scope(const context_scope&) = delete;
        context_scope& operator=(const context_scope&) = delete;
        CUresult result() const noexcept { return result_; }

    private:
        CUresult result_ = CUDA_SUCCESS;
        bool pushed_ = false;
    };

    static std::string driver_message(const std::string& what, CUresult code) {
        const char* name = nullptr;
        const char* text = nullptr;
        if (cuGetErrorName(code, &name) != CUDA_SUCCESS || !name) name = "?";
        if (cuGetErrorString(code, &text) != CUDA_SUCCESS || !text) text = "unknown CUDA error";
        return std::string(who) + ": " + what + " failed: " + name + ": " + text + " (CUresult " +
               std::to_string(static_cast<int>(code)) + ")";
    }
    static void driver_check(CUresult code, const std::string& what) {
        if (code != CUDA_SUCCESS)
            throw device_error(static_cast<int>(code), driver_message(what, code));
    }

    // Reserves the address space; false when the driver says VMM is not supported after all.
    bool reserve(std::size_t bytes, const options& opts) {
        std::size_t minimum = 0;
        driver_check(
            cuMemGetAllocationGranularity(&minimum, &prop_, CU_MEM_ALLOC_GRANULARITY_MINIMUM),
            "cuMemGetAllocationGranularity(MINIMUM)");
        if (minimum == 0)
            throw device_error(0, std::string(who) + ": the driver reported granularity 0");
        std::size_t granule = minimum;
        if (opts.granule_bytes) {
            if (opts.granule_bytes % minimum != 0)
                throw device_error(static_cast<int>(CUDA_ERROR_INVALID_VALUE),
                                   std::string(who) + ": granule of " +
                                       std::to_string(opts.granule_bytes) +
                                       " bytes is not a multiple of the minimum granularity (" +
                                       std::to_string(minimum) + ")");
            granule = opts.granule_bytes;
        } else if (opts.granule == granularity::recommended) {
            std::size_t recommended = 0;
            driver_check(cuMemGetAllocationGranularity(&recommended, &prop_,
                                                       CU_MEM_ALLOC_GRANULARITY_RECOMMENDED),
                         "cuMemGetAllocationGranularity(RECOMMENDED)");
            if (recommended >= minimum && recommended % minimum == 0) granule = recommended;
        }
        const std::size_t reserved = (bytes + granule - 1) / granule * granule;
        if (reserved == 0) {
            granules_ = detail::granule_map(0, granule);
            return true;
        }
        CUdeviceptr base{};
        const CUresult r = cuMemAddressReserve(&base, reserved, 0, 0, 0);
        if (r == CUDA_ERROR_NOT_SUPPORTED) return false;
        driver_check(r, "cuMemAddressReserve(" + std::to_string(reserved) + " bytes)");
        base_ = base;
        granules_ = detail::granule_map(reserved, granule);
        handles_.assign(granules_.granule_count(), 0);
        return true;
    }

    CUdeviceptr device_address(std::size_t offset) const noexcept {
        return (fallback_ ? fallback_base_ : base_) + offset;
    }
    CUdeviceptr granule_address(std::size_t g) const noexcept {
        return base_ + CUdeviceptr(g) * CUdeviceptr(granules_.granule());
    }

    void note(CUresult code, const char* what) noexcept {
        last_error_.code = static_cast<int>(code);
        try {
            last_error_.message = driver_message(what, code);
        } catch (...) {
            last_error_.message.clear();
        }
    }

    // Maps granules [g, g + n), one physical handle each; returns how many it mapped.
    std::size_t map_granules(std::size_t g, std::size_t n) noexcept {
        context_scope on(context_);
        if (on.result() != CUDA_SUCCESS) {
            note(on.result(), "cuCtxPushCurrent");
            return 0;
        }
        const std::size_t size = granules_.granule();
        for (std::size_t i = 0; i < n; ++i) {
            const CUdeviceptr at = granule_address(g + i);
            CUmemGenericAllocationHandle handle{};
            CUresult r = cuMemCreate(&handle, size, &prop_, 0);
            if (r != CUDA_SUCCESS) {
                note(r, "cuMemCreate");
                return i;
            }
            r = cuMemMap(at, size, 0, handle, 0);
            if (r != CUDA_SUCCESS) {
                note(r, "cuMemMap");
                (void)cuMemRelease(handle);
                return i;
            }
            r = cuMemSetAccess(at, size, &access_, 1);
            if (r != CUDA_SUCCESS) {
                note(r, "cuMemSetAccess");
                (void)cuMemUnmap(at, size);
                (void)cuMemRelease(handle);
                return i;
            }
            handles_[g + i] = handle;
        }
        return n;
    }

    // Unmaps granules [g, g + n); returns how many from g it unmapped.
    std::size_t unmap_granules(std::size_t g, std::size_t n) noexcept {
        context_scope on(context_);
        const std::size_t size = granules_.granule();
        for (std::size_t i = 0; i < n; ++i) {
            CUresult r = cuMemUnmap(granule_address(g + i), size);
            if (r != CUDA_SUCCESS) {
                note(r, "cuMemUnmap");
                return i;
            }
            r = cuMemRelease(handles_[g + i]);
            if (r != CUDA_SUCCESS) note(r, "cuMemRelease");
            handles_[g + i] = 0;
        }
        return n;
    }

    void release() noexcept {
        if (!context_) return;
        {
            context_scope on(context_);
            if (fallback_) {
                if (fallback_base_) (void)cuMemFree(fallback_base_);
            } else if (base_) {
                granules_.unmap_all(
                    [this](std::size_t g, std::size_t n) { return unmap_granules(g, n); });
                (void)cuMemAddressFree(base_, granules_.capacity());
            }
        }
        if (retained_) (void)cuDevicePrimaryCtxRelease(device_);
        context_ = nullptr;
        base_ = fallback_base_ = 0;
        retained_ = false;
    }

    void take(cuda_vmm& o) noexcept {
        device_ = o.device_;
        context_ = std::exchange(o.context_, nullptr);
        retained_ = std::exchange(o.retained_, false);
        stream_ = o.stream_;
        prop_ = o.prop_;
        access_ = o.access_;
        base_ = std::exchange(o.base_, 0);
        granules_ = std::exchange(o.granules_, detail::granule_map{});
        handles_ = std::exchange(o.handles_, {});
        fallback_ = o.fallback_;
        fallback_base_ = std::exchange(o.fallback_base_, 0);
        whole_ = std::exchange(o.whole_, detail::fully_backed{});
        last_error_ = std::move(o.last_error_);
    }

    CUdevice device_{};
    CUcontext context_ = nullptr;
    bool retained_ = false;
    CUstream stream_ = nullptr;
    CUmemAllocationProp prop_{};
    CUmemAccessDesc access_{};
    CUdeviceptr base_ = 0;
    detail::granule_map granules_;
    std::vector<CUmemGenericAllocationHandle> handles_;  // per granule; 0 when unmapped
    bool fallback_ = false;
    CUdeviceptr fallback_base_ = 0;
    detail::fully_backed whole_;
    error last_error_;
};

}  // namespace odma::backing

#else
#define ODMA_HAS_CUDA_VMM 0
#endif  // __has_include(<cuda.h>)
