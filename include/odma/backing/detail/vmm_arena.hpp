// odma/backing/detail/vmm_arena.hpp - what the device on-demand backings (cuda_vmm, cndrv_vmm)
// share: choosing the granule and reserving the virtual range, mapping it granule by granule
// with one physical handle per granule, and the fallback to one plain allocation on devices
// without virtual memory management. The vendor headers keep only what differs: the driver
// calls, device/context selection and the copy.
#pragma once

#include <odma/backing/commit_counters.hpp>
#include <odma/backing/detail/granule_map.hpp>
#include <odma/errc.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace odma::detail {

/// Throws device_error with Driver::message's text unless `code` (a vendor code as int) is 0.
template <class Driver>
void driver_check(int code, const std::string& what) {
    if (code != 0) throw device_error(code, Driver::message(code, what));
}

/// Which device granularity a VMM backing maps in: the minimum (finer on-demand steps, more
/// driver calls) or the driver's recommendation (fewer, larger maps).
enum class vmm_granularity { minimum, recommended };

/// The common part of a device VMM backing, over a Driver that binds one vendor API. Driver
/// members, all noexcept, returning the vendor's code as int (0 = success):
///
///   create(std::uint64_t& handle, size)        allocate one granule of physical memory
///   map(at, size, handle) / set_access(at, size)   map it at `at` and make it read-write
///   unmap(at, size) / release(handle)          undo both
///   free_reservation(base, size) / free_fallback(base)
///   on_destroy()                               last step of destruction (e.g. release a context)
///   granularity(size_t& out, bool recommended) the device's minimum / recommended granularity
///   reserve(std::uint64_t& base, size)         reserve virtual address space
///   ordinal() -> int                           the device ordinal (device(), messages)
///   describe_memory()                          fill the allocation properties for the device
///   message(code, what) -> std::string         "<who>: <what> failed: <vendor text> (...)"
///   Driver::scope(const Driver&)               makes the device/context current for a scope;
///                                              ok() tells whether it could
///
/// and two that may throw device_error: supports_vmm() -> bool (asks the device) and
/// allocate_whole(std::uint64_t& base, bytes), the plain allocation of the fallback.
/// Constants: who, device_noun ("device", "MLU"), vmm_name (the vendor's name for the
/// feature), not_supported and invalid_value (vendor codes), and the names of the calls
/// (create_name, ..., granularity_name, reserve_name) for messages.
///
/// Addresses are 64-bit device virtual addresses (CUdeviceptr, CNaddr).
template <class Driver>
class vmm_arena {
public:
    using pointer = std::byte*;  ///< a device virtual address; never dereference it on the host

    /// The last driver error seen by commit()/decommit() (code 0: none).
    struct error {
        int code = 0;
        std::string message;
    };

    /// Reserved bytes: virtual, whole granules (the whole physical arena in fallback mode).
    std::size_t capacity() const noexcept {
        return fallback_ ? whole_.capacity() : granules_.capacity();
    }
    pointer address(std::size_t offset) const noexcept {
        return reinterpret_cast<std::byte*>(static_cast<std::uintptr_t>(device_address(offset)));
    }
    /// The device ordinal the arena lives on.
    int device() const noexcept { return driver_.ordinal(); }
    /// False in fallback mode (no virtual memory management on the device).
    bool on_demand() const noexcept { return !fallback_; }
    std::size_t granule_size() const noexcept {
        return fallback_ ? whole_.capacity() : granules_.granule();
    }
    const backing::commit_counters& counters() const noexcept {
        return fallback_ ? whole_.counters() : granules_.counters();
    }
    const error& last_error() const noexcept { return last_error_; }

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

protected:
    vmm_arena() = default;
    vmm_arena(vmm_arena&& other) noexcept { take(other); }
    vmm_arena& operator=(vmm_arena&& other) noexcept {
        if (this != &other) {
            release();
            take(other);
        }
        return *this;
    }
    vmm_arena(const vmm_arena&) = delete;
    vmm_arena& operator=(const vmm_arena&) = delete;
    ~vmm_arena() { release(); }

    /// From now on the destructor frees what the driver holds (on_destroy runs).
    void activate() noexcept { active_ = true; }

    /// Throws device_error with the driver's text unless `code` is 0.
    static void check(int code, const std::string& what) { driver_check<Driver>(code, what); }

    /// Once the driver knows its device (and it is current): reserves `bytes` bytes of virtual
    /// address space in granules chosen from `opts` (granule, granule_bytes) when the device
    /// supports virtual memory management; else, or when the driver refuses the reservation as
    /// not supported, falls back to one plain allocation of the whole capacity if
    /// opts.allow_fallback. Throws device_error.
    template <class Options>
    void reserve_or_fallback(std::size_t bytes, const Options& opts) {
        const bool supported = driver_.supports_vmm();
        driver_.describe_memory();
        if (supported && reserve(bytes, opts.granule, opts.granule_bytes)) return;
        if (!opts.allow_fallback)
            throw device_error(Driver::not_supported,
                               std::string(Driver::who) + ": " + Driver::device_noun + " " +
                                   std::to_string(driver_.ordinal()) + " does not support " +
                                   Driver::vmm_name + " and options::allow_fallback is false");
        std::uint64_t base = 0;
        if (bytes) driver_.allocate_whole(base, bytes);
        adopt_fallback(base, bytes);
    }

    std::uint64_t device_address(std::size_t offset) const noexcept { return base_ + offset; }

    Driver driver_;

private:
    // Reserves the address space; false when the driver says VMM is not supported after all.
    bool reserve(std::size_t bytes, vmm_granularity which, std::size_t granule_bytes) {
        std::size_t minimum = 0;
        check(driver_.granularity(minimum, false),
              std::string(Driver::granularity_name) + "(MINIMUM)");
        std::size_t recommended = 0;
        if (!granule_bytes && which == vmm_granularity::recommended)
            check(driver_.granularity(recommended, true),
                  std::string(Driver::granularity_name) + "(RECOMMENDED)");
        const std::size_t granule = choose_granule(minimum, granule_bytes, recommended);
        const std::size_t reserved = (bytes + granule - 1) / granule * granule;
        std::uint64_t base = 0;
        if (reserved) {
            const int r = driver_.reserve(base, reserved);
            if (r == Driver::not_supported) return false;
            check(r,
                  std::string(Driver::reserve_name) + "(" + std::to_string(reserved) + " bytes)");
        }
        adopt_reservation(base, reserved, granule);
        return true;
    }

    // The granule to map in: `explicit_bytes` when set (it must be a multiple of `minimum`),
    // else `recommended` when it is a usable multiple of `minimum` (0 when not asked for), else
    // `minimum`. Throws device_error(invalid_value) for a bad explicit granule or a zero
    // minimum.
    static std::size_t choose_granule(std::size_t minimum, std::size_t explicit_bytes,
                                      std::size_t recommended) {
        if (minimum == 0)
            throw device_error(Driver::invalid_value,
                               std::string(Driver::who) + ": the driver reported granularity 0");
        if (explicit_bytes) {
            if (explicit_bytes % minimum != 0)
                throw device_error(Driver::invalid_value,
                                   std::string(Driver::who) + ": granule of " +
                                       std::to_string(explicit_bytes) +
                                       " bytes is not a multiple of the device's "
                                       "minimum granularity (" +
                                       std::to_string(minimum) + ")");
            return explicit_bytes;
        }
        return recommended >= minimum && recommended % minimum == 0 ? recommended : minimum;
    }

    // The range [base, base + reserved) was reserved; map it in granules of `granule` bytes.
    void adopt_reservation(std::uint64_t base, std::size_t reserved, std::size_t granule) {
        granules_ = granule_map(reserved, granule);
        handles_.assign(granules_.granule_count(), 0);
        base_ = base;
    }
    // Fallback: [base, base + bytes) is one plain allocation (base 0 when bytes is 0).
    void adopt_fallback(std::uint64_t base, std::size_t bytes) noexcept {
        fallback_ = true;
        base_ = base;
        whole_ = fully_backed(bytes);
    }

    std::uint64_t granule_address(std::size_t g) const noexcept {
        return base_ + std::uint64_t(g) * std::uint64_t(granules_.granule());
    }

    // Keeps a driver failure for last_error(); never throws (it runs inside commit).
    void note(int code, const char* what) noexcept {
        last_error_.code = code;
        try {
            last_error_.message = driver_.message(code, what);
        } catch (...) {
            last_error_.message.clear();
        }
    }

    // Maps granules [g, g + n), one physical handle each; returns how many it mapped.
    std::size_t map_granules(std::size_t g, std::size_t n) noexcept {
        typename Driver::scope on(driver_);
        if (!on.ok()) {
            note(on.code(), "selecting the device");
            return 0;
        }
        const std::size_t size = granules_.granule();
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint64_t at = granule_address(g + i);
            std::uint64_t handle = 0;
            if (int r = driver_.create(handle, size)) {
                note(r, Driver::create_name);
                return i;
            }
            if (int r = driver_.map(at, size, handle)) {
                note(r, Driver::map_name);
                (void)driver_.release(handle);
                return i;
            }
            if (int r = driver_.set_access(at, size)) {
                note(r, Driver::set_access_name);
                (void)driver_.unmap(at, size);
                (void)driver_.release(handle);
                return i;
            }
            handles_[g + i] = handle;
        }
        return n;
    }

    // Unmaps granules [g, g + n); returns how many from g it unmapped. A granule the driver
    // will not unmap stays mapped; the granule map retries it later.
    std::size_t unmap_granules(std::size_t g, std::size_t n) noexcept {
        typename Driver::scope on(driver_);
        const std::size_t size = granules_.granule();
        for (std::size_t i = 0; i < n; ++i) {
            if (int r = driver_.unmap(granule_address(g + i), size)) {
                note(r, Driver::unmap_name);
                return i;
            }
            if (int r = driver_.release(handles_[g + i]))
                note(r, Driver::release_name);  // unmapped; only the handle leaks
            handles_[g + i] = 0;
        }
        return n;
    }

    void release() noexcept {
        if (!active_) return;
        {
            typename Driver::scope on(driver_);
            if (fallback_) {
                if (base_) (void)driver_.free_fallback(base_);
            } else if (base_) {
                granules_.unmap_all(
                    [this](std::size_t g, std::size_t n) { return unmap_granules(g, n); });
                (void)driver_.free_reservation(base_, granules_.capacity());
            }
        }
        driver_.on_destroy();
        active_ = false;
        base_ = 0;
    }

    void take(vmm_arena& o) noexcept {
        driver_ = std::move(o.driver_);
        active_ = std::exchange(o.active_, false);
        base_ = std::exchange(o.base_, 0);
        granules_ = std::exchange(o.granules_, granule_map{});
        handles_ = std::exchange(o.handles_, {});
        fallback_ = o.fallback_;
        whole_ = std::exchange(o.whole_, fully_backed{});
        last_error_ = std::move(o.last_error_);
    }

    bool active_ = false;
    std::uint64_t base_ = 0;  // reservation, or the fallback allocation
    granule_map granules_;
    std::vector<std::uint64_t> handles_;  // per granule; 0 when unmapped
    bool fallback_ = false;
    fully_backed whole_;
    error last_error_;
};

}  // namespace odma::detail
