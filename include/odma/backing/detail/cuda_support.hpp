// odma/backing/detail/cuda_support.hpp - the CUDA runtime binding of backing/cuda.hpp: error
// text (cudaGetErrorName / cudaGetErrorString), device selection, plain allocation and copies.
// The twin of cnrt_support.hpp, so both plain device arenas share detail::device_arena.
// Compiles to nothing without <cuda_runtime_api.h>; plain C++, no nvcc needed.
#pragma once

#if __has_include(<cuda_runtime_api.h>)

#include <cuda_runtime_api.h>

#include <odma/backing/detail/device_runtime.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace odma::detail {

/// The CUDA runtime API as a Runtime binding (see device_runtime.hpp).
struct cuda_runtime {
    using status = cudaError_t;
    using queue_type = cudaStream_t;
    static constexpr status success = cudaSuccess;

    static constexpr const char* device_noun = "device";
    static constexpr const char* get_device_name = "cudaGetDevice";
    static constexpr const char* set_device_name = "cudaSetDevice";
    static constexpr const char* malloc_name = "cudaMalloc";
    static constexpr const char* copy_name = "cudaMemcpy(device to device)";
    static constexpr const char* copy_async_name = "cudaMemcpyAsync(device to device)";
    static constexpr const char* synchronize_name = "cudaStreamSynchronize";
    static constexpr const char* memory_info_name = "cudaMemGetInfo";

    /// "<who>: <what> failed: <cudaGetErrorName>: <cudaGetErrorString> (cudaError_t <code>)".
    static std::string message(std::string_view who, std::string_view what, status code) {
        const char* name = cudaGetErrorName(code);
        const char* text = cudaGetErrorString(code);
        return failure_message(who, what, name ? name : "?", text ? text : "unknown CUDA error",
                               "cudaError_t", static_cast<long long>(code));
    }

    static status get_device(int& device) noexcept { return cudaGetDevice(&device); }
    static status set_device(int device) noexcept { return cudaSetDevice(device); }
    static status malloc(void*& p, std::size_t bytes) noexcept { return cudaMalloc(&p, bytes); }
    static status free(void* p) noexcept { return cudaFree(p); }
    static status copy(void* dst, void* src, std::size_t bytes) noexcept {
        return cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice);
    }
    static status copy_async(void* dst, void* src, std::size_t bytes, queue_type s) noexcept {
        return cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s);
    }
    static status synchronize(queue_type s) noexcept { return cudaStreamSynchronize(s); }
    static status memory_info(std::size_t& free, std::size_t& total) noexcept {
        return cudaMemGetInfo(&free, &total);
    }
};

}  // namespace odma::detail

#endif  // __has_include(<cuda_runtime_api.h>)
