// odma/detail/lease_access.hpp - how odma's lease tables read and make lease handles.
#pragma once

#include <odma/lease.hpp>

#include <cstdint>

namespace odma::detail {

/// Access to a lease's fields for odma's own lease tables (detail::slot_table, and the
/// hand-written allocator the zero-overhead benchmark compares against). Users never need it:
/// a lease is opaque to them.
struct lease_access {
    static constexpr lease make(std::uint64_t owner, std::uint32_t slot,
                                std::uint32_t generation) noexcept {
        return lease(owner, slot, generation);
    }
    static constexpr std::uint64_t owner(const lease& l) noexcept { return l.owner_; }
    static constexpr std::uint32_t slot(const lease& l) noexcept { return l.slot_; }
    static constexpr std::uint32_t generation(const lease& l) noexcept { return l.generation_; }
};

}  // namespace odma::detail
