// odma/backing/cnrt.hpp - one device arena on a Cambricon MLU through the CNRT runtime (v6).
//
// Compiles only where <cnrt.h> is found (Cambricon Neuware SDK, CNRT 6.x; link -lcnrt);
// elsewhere it defines nothing and ODMA_HAS_CNRT is 0. Targets the CNRT 6 API (cnrtSuccess,
// cnrtQueue_t, cnrtQueueSync); the pre-v5 API (cnrtInit, CNRT_RET_SUCCESS) is not supported.
#pragma once

#if __has_include(<cnrt.h>)

#include <cnrt.h>

#include <odma/backing/detail/cnrt_support.hpp>
#include <odma/backing/detail/device_arena.hpp>

#include <cstddef>

#define ODMA_HAS_CNRT 1

namespace odma::detail {

/// CNRT, reported as backing::cnrt (the Driver of device_arena).
struct cnrt_arena_driver : cnrt_runtime {
    static constexpr const char* who = "odma::backing::cnrt";
};

}  // namespace odma::detail

namespace odma::backing {

/// One arena of MLU device memory, reserved whole with cnrtMalloc at construction and freed
/// with cnrtFree at destruction: static pre-allocation of the KV cache, with odma placing
/// leases inside it. Migration copies are device-to-device cnrtMemcpy calls, or cnrtMemcpyAsync
/// on a queue the caller gives.
///
/// Members (from detail::device_arena, shared with backing::cuda): pointer, current_device,
/// memory_info, capacity(), address(), device(), copy(), synchronize() (waits for the queue),
/// device_memory() and query_memory() (cnrtMemGetInfo, e.g. to size an arena).
///
/// Errors: construction, copy(), synchronize() and the memory queries throw odma::device_error
/// carrying the cnrtRet_t and the text of cnrtGetErrorStr; the allocator turns a failed
/// migration copy into a clean rollback. Move-only.
class cnrt : public detail::device_arena<detail::cnrt_arena_driver> {
public:
    struct options {
        /// MLU ordinal the arena lives on; current_device means the caller's current device.
        /// The backing selects it (cnrtSetDevice) around its own calls and restores the
        /// caller's device after.
        int device = current_device;
        /// When set, migration copies are enqueued on this queue with cnrtMemcpyAsync and not
        /// waited for: they are ordered with the caller's kernels on the same queue, which must
        /// then be the queue every kernel touching the arena runs on (or call synchronize()).
        /// When null, copies are synchronous cnrtMemcpy calls. The queue is not owned.
        cnrtQueue_t queue = nullptr;
    };

    /// Reserves `bytes` bytes on the current device with synchronous copies.
    explicit cnrt(std::size_t bytes) : cnrt(bytes, options{}) {}

    /// Reserves `bytes` bytes on the device. Throws device_error (cnrtErrorNoMem when the
    /// device has not enough free memory).
    cnrt(std::size_t bytes, options opts) : device_arena(bytes, opts.device, opts.queue) {}

    /// The queue copies are enqueued on (null: synchronous cnrtMemcpy).
    using device_arena::queue;
};

}  // namespace odma::backing

#else
#define ODMA_HAS_CNRT 0
#endif  // __has_include(<cnrt.h>)
