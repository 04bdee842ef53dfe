// odma/backing/cuda.hpp - one device arena on an NVIDIA GPU through the CUDA runtime API.
//
// Compiles only where <cuda_runtime_api.h> is found (CUDA toolkit; link CUDA::cudart);
// elsewhere it defines nothing and ODMA_HAS_CUDA is 0. Plain C++: no nvcc needed.
#pragma once

#if __has_include(<cuda_runtime_api.h>)

#include <cuda_runtime_api.h>

#include <odma/backing/detail/cuda_support.hpp>
#include <odma/backing/detail/device_arena.hpp>

#include <cstddef>

#define ODMA_HAS_CUDA 1

namespace odma::detail {

/// The CUDA runtime, reported as backing::cuda (the Driver of device_arena).
struct cuda_arena_driver : cuda_runtime {
    static constexpr const char* who = "odma::backing::cuda";
};

}  // namespace odma::detail

namespace odma::backing {

/// One arena of GPU memory, reserved whole with cudaMalloc at construction and freed with
/// cudaFree at destruction (static pre-allocation, odma placing leases inside). Migration
/// copies are device-to-device cudaMemcpy, or cudaMemcpyAsync on a stream the caller gives.
///
/// Members (from detail::device_arena, shared with backing::cnrt): pointer, current_device,
/// memory_info, capacity(), address(), device(), copy(), synchronize() (waits for the stream),
/// device_memory() and query_memory() (cudaMemGetInfo, e.g. to size an arena).
///
/// Errors: construction, copy(), synchronize() and the memory queries throw odma::device_error
/// with the cudaError_t and CUDA's text. Move-only.
class cuda : public detail::device_arena<detail::cuda_arena_driver> {
public:
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

    /// Reserves `bytes` bytes on the current device.
    explicit cuda(std::size_t bytes) : cuda(bytes, options{}) {}

    /// Reserves `bytes` bytes on the device. Throws device_error (cudaErrorMemoryAllocation
    /// when the device has not enough free memory).
    cuda(std::size_t bytes, options opts) : device_arena(bytes, opts.device, opts.stream) {}

    /// The stream copies are enqueued on (null: synchronous cudaMemcpy).
    cudaStream_t stream() const noexcept { return queue(); }
};

}  // namespace odma::backing

#else
#define ODMA_HAS_CUDA 0
#endif  // __has_include(<cuda_runtime_api.h>)
