// odma/backing/cuda.hpp - one device arena on an NVIDIA GPU through the CUDA runtime API.
//
// Compiles only where <cuda_runtime_api.h> is found (CUDA toolkit; link CUDA::cudart);
// elsewhere it defines nothing and ODMA_HAS_CUDA is 0. Plain C++: no nvcc needed.
#pragma once

#if __has_include(<cuda_runtime_api.h>)

#include <cuda_runtime_api.h>

#include <odma/errc.hpp>

#include <cstddef>
#include <new>
#include <string>
#include <string_view>
#include <utility>

#define ODMA_HAS_CUDA 1

namespace odma::detail {

/// "<who>: <what> failed: <cudaGetErrorName>: <cudaGetErrorString> (cudaError_t <code>)".
inline std::string cuda_message(std::string_view who, std::string_view what, cudaError_t code) {
    const char* name = cudaGetErrorName(code);
    const char* text = cudaGetErrorString(code);
    return std::string(who) + ": " + std::string(what) + " failed: " + (name ? name : "?") + ": " +
           (text ? text : "unknown CUDA error") + " (cudaError_t " +
           std::to_string(static_cast<int>(code)) + ")";
}

/// Throws odma::device_error carrying the CUDA code and text unless `code` is cudaSuccess.
inline void cuda_check(cudaError_t code, std::string_view who, std::string_view what) {
    if (code != cudaSuccess)
        throw device_error(static_cast<int>(code), cuda_message(who, what, code));
}

/// Makes `device` current for the scope (cudaSetDevice) and restores the caller's after.
class cuda_device_scope {
public:
    cuda_device_scope(int device, std::string_view who) {
        cuda_check(cudaGetDevice(&previous_), who, "cudaGetDevice");
        if (previous_ != device) {
            cuda_check(cudaSetDevice(device), who, "cudaSetDevice(" + std::to_string(device) + ")");
            switched_ = true;
        }
    }
    cuda_device_scope(int device, std::nothrow_t) noexcept {
        if (cudaGetDevice(&previous_) == cudaSuccess && previous_ != device)
            switched_ = cudaSetDevice(device) == cudaSuccess;
    }
    ~cuda_device_scope() {
        if (switched_) (void)cudaSetDevice(previous_);
    }
    cuda_device_scope(const cuda_device_scope&) = delete;
    cuda_device_scope& operator=(const cuda_device_scope&) = delete;

private:
    int previous_ = 0;
    bool switched_ = false;
};

}  // namespace odma::detail

namespace odma::backing {

/// One arena of GPU memory, reserved whole with cudaMalloc at construction and freed with
/// cudaFree at destruction (static pre-allocation, odma placing leases inside). Migration
/// copies are device-to-device cudaMemcpy, or cudaMemcpyAsync on a stream the caller gives.
///
/// Errors: construction and copy() throw odma::device_error with the cudaError_t and CUDA's
/// text. Move-only.
class cuda {
public:
    using pointer = std::byte*;  ///< a device address; never dereference it on the host

    static constexpr int current_device = -1;

    struct options {
        /// CUDA device ordinal; current_device means the caller's current device. Selected
        /// around the backing's own calls, the caller's device restored after.
        int device = current_device;
        /// When set, migration copies are cudaMemcpyAsync on this stream and not waited for:
        /// they are ordered with the caller's kernels on that stream, which must then be the
        /// stream every kernel touching the arena runs on (or call synchronize()). When null,
        /// copies are cudaMemcpy on the legacy default stream. Not owned.
        cudaStream_t stream = nullptr;
    };

    struct memory_info {
        std::size_t free = 0;
        std::size_t total = 0;
    };

    /// Reserves `bytes` bytes on the current device.
    explicit cuda(std::size_t bytes) : cuda(bytes, options{}) {}

    /// Reserves `bytes` bytes on the device. Throws device_error (cudaErrorMemoryAllocation
    /// when the device has not enough free memory).
    cuda(std::size_t bytes, options opts) : device_(resolve(opts.device)), stream_(opts.stream) {
        if (bytes == 0) return;
        detail::cuda_device_scope on(device_, who);
        void* p = nullptr;
        detail::cuda_check(
            cudaMalloc(&p, bytes), who,
            "cudaMalloc(" + std::to_string(bytes) + " bytes) on device " + std::to_string(device_));
        base_ = static_cast<std::byte*>(p);
        capacity_ = bytes;
    }

    cuda(cuda&& other) noexcept
        : base_(std::exchange(other.base_, nullptr))
        , capacity_(std::exchange(other.capacity_, 0))
        , device_(other.device_)
        , stream_(other.stream_) {}
    cuda& operator=(cuda&& other) noexcept {
        if (this != &other) {
            release();
            base_ = std::exchange(other.base_, nullptr);
            capacity_ = std::exchange(other.capacity_, 0);
            device_ = other.device_;
            stream_ = other.stream_;
        }
        return *this;
    }
    cuda(const cuda&) = delete;
    cuda& operator=(const cuda&) = delete;
    ~cuda() { release(); }

    std::size_t capacity() const noexcept { return capacity_; }
    pointer address(std::size_t offset) const noexcept { return base_ + offset; }
    int device() const noexcept { return device_; }
    cudaStream_t stream() const noexcept { return stream_; }

    /// Device-to-device copy between two non-overlapping ranges of the arena. Throws
    /// device_error.
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) {
        if (bytes == 0) return;
        detail::cuda_device_scope on(device_, who);
        if (stream_)
            detail::cuda_check(
                cudaMemcpyAsync(base_ + dst, base_ + src, bytes, cudaMemcpyDeviceToDevice, stream_),
                who, "cudaMemcpyAsync(device to device)");
        else
            detail::cuda_check(
                cudaMemcpy(base_ + dst, base_ + src, bytes, cudaMemcpyDeviceToDevice), who,
                "cudaMemcpy(device to device)");
    }

    /// Waits for the copies enqueued on the stream (a no-op without one).
    void synchronize() {
        if (stream_)
            detail::cuda_check(cudaStreamSynchronize(stream_), who, "cudaStreamSynchronize");
    }

    memory_info device_memory() const { return query_memory(device_); }

    /// Free and total memory of a device (cudaMemGetInfo), e.g. to size an arena.
    static memory_info query_memory(int device = current_device) {
        device = resolve(device);
        detail::cuda_device_scope on(device, who);
        memory_info info;
        detail::cuda_check(cudaMemGetInfo(&info.free, &info.total), who, "cudaMemGetInfo");
        return info;
    }

private:
    static constexpr const char* who = "odma::backing::cuda";

    static int resolve(int device) {
        if (device >= 0) return device;
        int current = 0;
        detail::cuda_check(cudaGetDevice(&current), who, "cudaGetDevice");
        return current;
    }

    void release() noexcept {
        if (!base_) return;
        detail::cuda_device_scope on(device_, std::nothrow);
        (void)cudaFree(base_);
        base_ = nullptr;
        capacity_ = 0;
    }

    std::byte* base_ = nullptr;
    std::size_t capacity_ = 0;
    int device_ = 0;
    cudaStream_t stream_ = nullptr;
};

}  // namespace odma::backing

#else
#define ODMA_HAS_CUDA 0
#endif  // __has_include(<cuda_runtime_api.h>)
