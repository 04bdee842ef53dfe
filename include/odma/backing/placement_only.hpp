// odma/backing/placement_only.hpp - an arena with an address space and no bytes.
#pragma once

#include <cstddef>
#include <cstdint>

namespace odma::backing {

/// A Backing that owns no memory: addresses are the offsets themselves and copy() moves
/// nothing. It lets a simulator decide placement in a 24 GB (or 80 GB) device without
/// allocating it, typically as accounted<placement_only> (make_placement_device()) so that
/// every access is still costed. The name says what it does, placement only, and keeps it apart
/// from the cost model's reference simulator (odma/memory/detail/dram_reference.hpp).
class placement_only {
public:
    using pointer = std::uintptr_t;

    explicit placement_only(std::size_t bytes) noexcept : capacity_(bytes) {}

    std::size_t capacity() const noexcept { return capacity_; }
    /// The offset itself: a device address in a device that does not exist.
    pointer address(std::size_t offset) const noexcept { return pointer(offset); }
    /// Nothing to move: there are no bytes.
    void copy(std::size_t /*dst*/, std::size_t /*src*/, std::size_t /*bytes*/) noexcept {}

private:
    std::size_t capacity_;
};

/// placement_only that also behaves like an on-demand backing (ResizableBacking): commit()
/// always succeeds, decommit() does nothing, and granule_size() names the unit a device's
/// virtual-memory backing would map. It lets a simulator replay an allocator that resize()s its
/// arena (odma-replay's ballooning rows) without a device.
class placement_on_demand : public placement_only {
public:
    /// `granule` in bytes (2 MiB: CUDA's VMM granularity, a common huge page).
    explicit placement_on_demand(std::size_t bytes, std::size_t granule = std::size_t(2)
                                                                          << 20) noexcept
        : placement_only(bytes), granule_(granule) {}

    bool commit(std::size_t /*offset*/, std::size_t /*bytes*/) noexcept { return true; }
    void decommit(std::size_t /*offset*/, std::size_t /*bytes*/) noexcept {}
    std::size_t granule_size() const noexcept { return granule_; }

private:
    std::size_t granule_;
};

}  // namespace odma::backing
