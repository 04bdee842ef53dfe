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

}  // namespace odma::backing
