// odma/backing/cnrt.hpp - one device arena on a Cambricon MLU through the CNRT runtime (v6).
//
// Compiles only where <cnrt.h> is found (Cambricon Neuware SDK, CNRT 6.x; link -lcnrt);
// elsewhere it defines nothing and ODMA_HAS_CNRT is 0. Targets the CNRT 6 API (cnrtSuccess,
// cnrtQueue_t, cnrtQueueSync); the pre-v5 API (cnrtInit, CNRT_RET_SUCCESS) is not supported.
#pragma once

#if __has_include(<cnrt.h>)

#include <cnrt.h>

#include <odma/detail/cnrt_support.hpp>
#include <odma/errc.hpp>

#include <cstddef>
#include <string>
#include <utility>

#define ODMA_HAS_CNRT 1

namespace odma::backing {

/// One arena of MLU device memory, reserved whole with cnrtMalloc at construction and freed
/// with cnrtFree at destruction: static pre-allocation of the KV cache, with odma placing
/// leases inside it. Migration copies are device-to-device cnrtMemcpy calls, or cnrtMemcpyAsync
/// on a queue the caller gives.
///
/// Errors: construction and copy() throw odma::device_error carrying the cnrtRet_t and the
/// text of cnrtGetErrorStr; the allocator turns a failed migration copy into a clean rollback.
/// Move-only.
class cnrt {
public:
    using pointer = std::byte*;  ///< an MLU device address; never dereference it on the host

    static constexpr int current_device = -1;

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

    /// Free and total memory of a device, from cnrtMemGetInfo.
    struct memory_info {
        std::size_t free = 0;
        std::size_t total = 0;
    };

    /// Reserves `bytes` bytes on the current device with synchronous copies.
    explicit cnrt(std::size_t bytes) : cnrt(bytes, options{}) {}

    /// Reserves `bytes` bytes on the device. Throws device_error (cnrtErrorNoMem when the
    /// device has not enough free memory).
    cnrt(std::size_t bytes, options opts)
        : device_(detail::cnrt_resolve_device(opts.device, who)), queue_(opts.queue) {
        if (bytes == 0) return;
        detail::cnrt_device_scope on(device_, who);
        void* p = nullptr;
        detail::cnrt_check(
            cnrtMalloc(&p, bytes), who,
            "cnrtMalloc(" + std::to_string(bytes) + " bytes) on MLU " + std::to_string(device_));
        base_ = static_cast<std::byte*>(p);
        capacity_ = bytes;
    }

    cnrt(cnrt&& other) noexcept
        : base_(std::exchange(other.base_, nullptr))
        , capacity_(std::exchange(other.capacity_, 0))
        , device_(other.device_)
        , queue_(other.queue_) {}
    cnrt& operator=(cnrt&& other) noexcept {
        if (this != &other) {
            release();
            base_ = std::exchange(other.base_, nullptr);
            capacity_ = std::exchange(other.capacity_, 0);
            device_ = other.device_;
            queue_ = other.queue_;
        }
        return *this;
    }
    cnrt(const cnrt&) = delete;
    cnrt& operator=(const cnrt&) = delete;
    ~cnrt() { release(); }

    std::size_t capacity() const noexcept { return capacity_; }
    pointer address(std::size_t offset) const noexcept { return base_ + offset; }
    int device() const noexcept { return device_; }
    cnrtQueue_t queue() const noexcept { return queue_; }

    /// Device-to-device copy between two non-overlapping ranges of the arena. Throws
    /// device_error when CNRT reports a failure.
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) {
        if (bytes == 0) return;
        detail::cnrt_device_scope on(device_, who);
        if (queue_)
            detail::cnrt_check(
                cnrtMemcpyAsync(base_ + dst, base_ + src, bytes, queue_, cnrtMemcpyDevToDev), who,
                "cnrtMemcpyAsync(device to device)");
        else
            detail::cnrt_check(cnrtMemcpy(base_ + dst, base_ + src, bytes, cnrtMemcpyDevToDev), who,
                               "cnrtMemcpy(device to device)");
    }

    /// Waits for the copies enqueued on the queue (a no-op without one).
    void synchronize() {
        if (queue_) detail::cnrt_check(cnrtQueueSync(queue_), who, "cnrtQueueSync");
    }

    /// Free and total memory of this backing's device now.
    memory_info device_memory() const { return query_memory(device_); }

    /// Free and total memory of a device, e.g. to size an arena before building it.
    static memory_info query_memory(int device = current_device) {
        device = detail::cnrt_resolve_device(device, who);
        detail::cnrt_device_scope on(device, who);
        memory_info info;
        detail::cnrt_check(cnrtMemGetInfo(&info.free, &info.total), who, "cnrtMemGetInfo");
        return info;
    }

private:
    static constexpr const char* who = "odma::backing::cnrt";

    void release() noexcept {
        if (!base_) return;
        detail::cnrt_device_scope on(device_, std::nothrow);
        (void)cnrtFree(base_);  // nothing useful to do with an error in a destructor
        base_ = nullptr;
        capacity_ = 0;
    }

    std::byte* base_ = nullptr;
    std::size_t capacity_ = 0;
    int device_ = 0;
    cnrtQueue_t queue_ = nullptr;
};

}  // namespace odma::backing

#else
#define ODMA_HAS_CNRT 0
#endif  // __has_include(<cnrt.h>)
