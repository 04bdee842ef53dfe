// odma/backing/cuda_vmm.hpp - a GPU arena reserved as virtual address space and backed on
// demand through the CUDA driver API's virtual memory management.
//
// Compiles only where <cuda.h> is found (CUDA toolkit; link CUDA::cuda_driver, i.e. -lcuda);
// elsewhere it defines nothing and ODMA_HAS_CUDA_VMM is 0. Plain C++: no nvcc needed.
#pragma once

#if __has_include(<cuda.h>)

#include <cuda.h>

#include <odma/backing/commit_counters.hpp>
#include <odma/backing/detail/device_runtime.hpp>
#include <odma/backing/detail/vmm_arena.hpp>
#include <odma/errc.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

#define ODMA_HAS_CUDA_VMM 1

namespace odma::detail {

/// CUDA driver calls for vmm_arena (see there).
struct cuda_driver {
    static constexpr const char* who = "odma::backing::cuda_vmm";
    static constexpr const char* create_name = "cuMemCreate";
    static constexpr const char* map_name = "cuMemMap";
    static constexpr const char* set_access_name = "cuMemSetAccess";
    static constexpr const char* unmap_name = "cuMemUnmap";
    static constexpr const char* release_name = "cuMemRelease";
    static constexpr const char* granularity_name = "cuMemGetAllocationGranularity";
    static constexpr const char* reserve_name = "cuMemAddressReserve";
    static constexpr const char* device_noun = "device";
    static constexpr const char* vmm_name = "virtual memory management";
    static constexpr int not_supported = CUDA_ERROR_NOT_SUPPORTED;
    static constexpr int invalid_value = CUDA_ERROR_INVALID_VALUE;

    CUdevice device{};
    CUcontext context = nullptr;
    bool retained = false;  // context is device's primary context, retained by us
    CUmemAllocationProp prop{};
    CUmemAccessDesc access{};

    int create(std::uint64_t& handle, std::size_t size) noexcept {
        CUmemGenericAllocationHandle h{};
        const CUresult r = cuMemCreate(&h, size, &prop, 0);
        handle = h;
        return static_cast<int>(r);
    }
    int map(std::uint64_t at, std::size_t size, std::uint64_t handle) noexcept {
        return static_cast<int>(cuMemMap(CUdeviceptr(at), size, 0, handle, 0));
    }
    int set_access(std::uint64_t at, std::size_t size) noexcept {
        return static_cast<int>(cuMemSetAccess(CUdeviceptr(at), size, &access, 1));
    }
    int unmap(std::uint64_t at, std::size_t size) noexcept {
        return static_cast<int>(cuMemUnmap(CUdeviceptr(at), size));
    }
    int release(std::uint64_t handle) noexcept { return static_cast<int>(cuMemRelease(handle)); }
    int free_reservation(std::uint64_t base, std::size_t size) noexcept {
        return static_cast<int>(cuMemAddressFree(CUdeviceptr(base), size));
    }
    int free_fallback(std::uint64_t base) noexcept {
        return static_cast<int>(cuMemFree(CUdeviceptr(base)));
    }
    void on_destroy() noexcept {
        if (retained) (void)cuDevicePrimaryCtxRelease(device);
        retained = false;
    }
    int granularity(std::size_t& out, bool recommended) const noexcept {
        return static_cast<int>(cuMemGetAllocationGranularity(
            &out, &prop,
            recommended ? CU_MEM_ALLOC_GRANULARITY_RECOMMENDED : CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    }
    int reserve(std::uint64_t& base, std::size_t size) noexcept {
        CUdeviceptr p{};
        const CUresult r = cuMemAddressReserve(&p, size, 0, 0, 0);
        base = p;
        return static_cast<int>(r);
    }
    int ordinal() const noexcept { return static_cast<int>(device); }
    bool supports_vmm() const {
        int supported = 0;
        driver_check<cuda_driver>(
            cuDeviceGetAttribute(&supported,
                                 CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, device),
            "cuDeviceGetAttribute(VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED)");
        return supported != 0;
    }
    // Pinned device memory on this device, read-write from it.
    void describe_memory() noexcept {
        prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
        prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
        prop.location.id = static_cast<int>(device);
        access.location = prop.location;
        access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    }
    void allocate_whole(std::uint64_t& base, std::size_t bytes) {
        CUdeviceptr p{};
        driver_check<cuda_driver>(cuMemAlloc(&p, bytes),
                                  "fallback cuMemAlloc(" + std::to_string(bytes) +
                                      " bytes) (no virtual memory management)");
        base = p;
    }

    /// "<who>: <what> failed: <cuGetErrorName>: <cuGetErrorString> (CUresult <code>)".
    static std::string message(int code, const std::string& what) {
        const char* name = nullptr;
        const char* text = nullptr;
        const auto r = static_cast<CUresult>(code);
        if (cuGetErrorName(r, &name) != CUDA_SUCCESS || !name) name = "?";
        if (cuGetErrorString(r, &text) != CUDA_SUCCESS || !text) text = "unknown CUDA error";
        return failure_message(who, what, name, text, "CUresult", code);
    }

    /// Pushes the backing's context when the calling thread has another current; pops it
    /// after.
    class scope {
    public:
        explicit scope(const cuda_driver& d) noexcept {
            CUcontext current = nullptr;
            if (cuCtxGetCurrent(&current) == CUDA_SUCCESS && current == d.context) return;
            result_ = cuCtxPushCurrent(d.context);
            pushed_ = result_ == CUDA_SUCCESS;
        }
        ~scope() {
            CUcontext popped = nullptr;
            if (pushed_) (void)cuCtxPopCurrent(&popped);
        }
        scope(const scope&) = delete;
        scope& operator=(const scope&) = delete;
        bool ok() const noexcept { return result_ == CUDA_SUCCESS; }
        int code() const noexcept { return static_cast<int>(result_); }

    private:
        CUresult result_ = CUDA_SUCCESS;
        bool pushed_ = false;
    };
};

}  // namespace odma::detail

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
/// The on-demand machinery is detail::vmm_arena, shared with cndrv_vmm. Move-only; not
/// thread-safe.
class cuda_vmm : public detail::vmm_arena<detail::cuda_driver> {
public:
    static constexpr int current_context = -1;

    using granularity = detail::vmm_granularity;

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

    /// Reserves `bytes` bytes in the current context, minimum granularity, fallback allowed.
    explicit cuda_vmm(std::size_t bytes) : cuda_vmm(bytes, options{}) {}

    /// Reserves `bytes` bytes of virtual address space, rounded up to whole granules.
    /// Throws device_error.
    cuda_vmm(std::size_t bytes, options opts) : stream_(opts.stream) {
        using driver = detail::cuda_driver;
        check(cuInit(0), "cuInit");
        if (opts.device >= 0) {
            check(cuDeviceGet(&driver_.device, opts.device), "cuDeviceGet");
            check(cuDevicePrimaryCtxRetain(&driver_.context, driver_.device),
                  "cuDevicePrimaryCtxRetain");
            driver_.retained = true;
        } else {
            check(cuCtxGetCurrent(&driver_.context), "cuCtxGetCurrent");
            if (!driver_.context)
                throw device_error(static_cast<int>(CUDA_ERROR_INVALID_CONTEXT),
                                   std::string(driver::who) +
                                       ": no current CUDA context; pass options::device or make "
                                       "one current first (e.g. cudaSetDevice + cudaFree(0))");
            check(cuCtxGetDevice(&driver_.device), "cuCtxGetDevice");
        }
        activate();  // from here the destructor releases what was retained
        driver::scope on(driver_);
        check(on.code(), "cuCtxPushCurrent");
        reserve_or_fallback(bytes, opts);
    }

    /// Device-to-device copy between two committed, non-overlapping ranges; returns when the
    /// copy is complete. Throws device_error.
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) {
        if (bytes == 0) return;
        detail::cuda_driver::scope on(driver_);
        check(on.code(), "cuCtxPushCurrent");
        check(cuMemcpyDtoDAsync(device_address(dst), device_address(src), bytes, stream_),
              "cuMemcpyDtoDAsync");
        check(cuStreamSynchronize(stream_), "cuStreamSynchronize");
    }

private:
    CUstream stream_ = nullptr;
};

}  // namespace odma::backing

#else
#define ODMA_HAS_CUDA_VMM 0
#endif  // __has_include(<cuda.h>)
