// odma/backing/detail/device_arena.hpp - what the plain device backings (cuda, cnrt) share: one
// device allocation reserved whole, device-to-device copies on an optional queue, and every
// failure reported as odma::device_error. The plain counterpart of vmm_arena.hpp.
#pragma once

#include <odma/backing/detail/device_runtime.hpp>
#include <odma/backing/detail/owned_block.hpp>

#include <cstddef>
#include <new>
#include <string>

namespace odma::detail {

/// One arena of device memory over a Driver: a Runtime binding (device_runtime.hpp) plus
/// `static constexpr const char* who`, the backing's name in error messages. The backing class
/// derives from it and adds only its options and its vendor's spelling of the queue.
///
/// The device is resolved once at construction (the caller's current one by default) and
/// selected around every call the arena makes, the caller's device restored after, so an arena
/// works from any thread whatever device that thread uses. Move-only.
template <class Driver>
class device_arena {
public:
    using pointer = std::byte*;  ///< a device address; never dereference it on the host
    using queue_type = typename Driver::queue_type;

    /// As a device ordinal: the caller's current device at construction.
    static constexpr int current_device = -1;

    /// Free and total memory of a device, from the runtime's memory query.
    struct memory_info {
        std::size_t free = 0;
        std::size_t total = 0;
    };

    std::size_t capacity() const noexcept { return block_.size(); }
    pointer address(std::size_t offset) const noexcept { return block_.get() + offset; }
    int device() const noexcept { return block_.releaser().device; }

    /// Device-to-device copy between two non-overlapping ranges of the arena: synchronous
    /// without a queue; with one, enqueued and not waited for (ordered with the caller's
    /// kernels on that queue). Throws device_error.
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) {
        if (bytes == 0) return;
        device_scope<Driver> on(device(), Driver::who);
        copy_device_to_device<Driver>(address(dst), address(src), bytes, queue_, false,
                                      Driver::who);
    }

    /// Waits for the copies enqueued on the queue (a no-op without one). Throws device_error.
    void synchronize() {
        if (queue_)
            runtime_check<Driver>(Driver::synchronize(queue_), Driver::who,
                                  Driver::synchronize_name);
    }

    /// Free and total memory of this arena's device now.
    memory_info device_memory() const { return query_memory(device()); }

    /// Free and total memory of a device, e.g. to size an arena before building it.
    static memory_info query_memory(int device = current_device) {
        device = resolve_device<Driver>(device, Driver::who);
        device_scope<Driver> on(device, Driver::who);
        memory_info info;
        runtime_check<Driver>(Driver::memory_info(info.free, info.total), Driver::who,
                              Driver::memory_info_name);
        return info;
    }

protected:
    /// Reserves `bytes` bytes on `device` (current_device: the caller's). Throws device_error
    /// when the device cannot be selected or has not enough free memory; nothing is allocated
    /// for 0 bytes.
    device_arena(std::size_t bytes, int device, queue_type queue)
        : block_(nullptr, 0, free_on_device{resolve_device<Driver>(device, Driver::who)})
        , queue_(queue) {
        if (bytes == 0) return;
        const int on_device = this->device();
        device_scope<Driver> on(on_device, Driver::who);
        void* p = nullptr;
        runtime_check<Driver>(Driver::malloc(p, bytes), Driver::who,
                              std::string(Driver::malloc_name) + "(" + std::to_string(bytes) +
                                  " bytes) on " + Driver::device_noun + " " +
                                  std::to_string(on_device));
        block_ = owned_block<free_on_device>(static_cast<std::byte*>(p), bytes,
                                             free_on_device{on_device});
    }
    device_arena(device_arena&&) noexcept = default;
    device_arena& operator=(device_arena&&) noexcept = default;
    ~device_arena() = default;

    /// The queue copies go to (null: synchronous copies). Not owned.
    queue_type queue() const noexcept { return queue_; }

private:
    // Frees on the arena's device: the runtime frees in the current device's context.
    struct free_on_device {
        int device = 0;
        void operator()(std::byte* p) const noexcept {
            device_scope<Driver> on(device, std::nothrow);
            (void)Driver::free(p);  // nothing useful to do with an error in a destructor
        }
    };

    owned_block<free_on_device> block_;
    queue_type queue_ = nullptr;
};

}  // namespace odma::detail
