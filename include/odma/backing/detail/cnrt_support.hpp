// odma/backing/detail/cnrt_support.hpp - the CNRT runtime binding shared by the Cambricon
// backings (backing/cnrt.hpp, backing/cndrv_vmm.hpp): error text, device selection, plain
// allocation and copies. Both backings go through CNRT for these (cndrv_vmm's fallback arena
// and its copies too), so they are bound once. Compiles to nothing without <cnrt.h>.
#pragma once

#if __has_include(<cnrt.h>)

#include <cnrt.h>

#include <odma/backing/detail/device_runtime.hpp>

#include <cstddef>
#include <string>
#include <string_view>

namespace odma::detail {

/// CNRT 6 as a Runtime binding (see device_runtime.hpp).
struct cnrt_runtime {
    using status = cnrtRet_t;
    using queue_type = cnrtQueue_t;
    static constexpr status success = cnrtSuccess;

    static constexpr const char* device_noun = "MLU";
    static constexpr const char* get_device_name = "cnrtGetDevice";
    static constexpr const char* set_device_name = "cnrtSetDevice";
    static constexpr const char* malloc_name = "cnrtMalloc";
    static constexpr const char* copy_name = "cnrtMemcpy(device to device)";
    static constexpr const char* copy_async_name = "cnrtMemcpyAsync(device to device)";
    static constexpr const char* synchronize_name = "cnrtQueueSync";
    static constexpr const char* memory_info_name = "cnrtMemGetInfo";

    /// "<who>: <what> failed: <cnrtGetErrorStr text> (cnrtRet_t <code>)".
    static std::string message(std::string_view who, std::string_view what, status code) {
        const char* text = cnrtGetErrorStr(code);
        return failure_message(who, what, nullptr, text ? text : "unknown CNRT error", "cnrtRet_t",
                               static_cast<long long>(code));
    }

    static status get_device(int& device) noexcept { return cnrtGetDevice(&device); }
    static status set_device(int device) noexcept { return cnrtSetDevice(device); }
    static status malloc(void*& p, std::size_t bytes) noexcept { return cnrtMalloc(&p, bytes); }
    static status free(void* p) noexcept { return cnrtFree(p); }
    static status copy(void* dst, void* src, std::size_t bytes) noexcept {
        return cnrtMemcpy(dst, src, bytes, cnrtMemcpyDevToDev);
    }
    static status copy_async(void* dst, void* src, std::size_t bytes, queue_type q) noexcept {
        return cnrtMemcpyAsync(dst, src, bytes, q, cnrtMemcpyDevToDev);
    }
    static status synchronize(queue_type q) noexcept { return cnrtQueueSync(q); }
    static status memory_info(std::size_t& free, std::size_t& total) noexcept {
        return cnrtMemGetInfo(&free, &total);
    }
};

}  // namespace odma::detail

#endif  // __has_include(<cnrt.h>)
