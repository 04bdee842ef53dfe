// odma/tier/host_link.hpp - moving a lease between two host-addressable tiers with memcpy.
#pragma once

#include <cstddef>
#include <cstring>
#include <type_traits>

namespace odma::tier_policies {

/// A TierLink for backings that hand out host addresses (backing::host, backing::host_vmm and
/// wrappers of them): one memcpy per piece. Tests use it to check that a tier move keeps every
/// byte; a device pair needs its runtime's peer or host-device copy instead.
struct host_link {
    template <class From, class To>
    requires std::is_same_v<typename From::pointer, std::byte*> &&
        std::is_same_v<typename To::pointer, std::byte*>
    void operator()(From& from, std::size_t from_offset, To& to, std::size_t to_offset,
                    std::size_t bytes) const noexcept {
        std::memcpy(to.address(to_offset), from.address(from_offset), bytes);
    }
};

/// A TierLink that copies nothing: for placement-only backings (simulation), where the cost
/// of a move is charged from the bytes the composition reports (tiered_stats::moved_bytes).
struct placement_link {
    template <class From, class To>
    void operator()(From&, std::size_t, To&, std::size_t, std::size_t) const noexcept {}
};

}  // namespace odma::tier_policies
