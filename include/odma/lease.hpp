// odma/lease.hpp - the handle to one request's KV memory.
#pragma once

// growth and region lived here before they got headers of their own; code that names them
// after including only this header keeps compiling.
#include <odma/growth.hpp>
#include <odma/region.hpp>

#include <cstdint>

namespace odma {

namespace detail {
struct lease_access;
}  // namespace detail

/// A handle to a live KV region, returned by allocator::admit.
///
/// A lease is a small value (an owner id, a slot and a generation), not a pointer: copying it
/// is cheap and every allocator call validates it. After release() every copy of it is stale,
/// and a moved-from lease is empty; the allocator answers both with errc::invalid_lease instead
/// of touching memory. Leases from one allocator are rejected by every other allocator.
class lease {
public:
    /// An empty lease; every allocator rejects it.
    constexpr lease() noexcept = default;

    constexpr lease(const lease&) noexcept = default;
    constexpr lease& operator=(const lease&) noexcept = default;

    /// Moving leaves `other` empty, so a handle passed on with std::move cannot be used twice.
    constexpr lease(lease&& other) noexcept
        : owner_(other.owner_), slot_(other.slot_), generation_(other.generation_) {
        other = lease{};
    }
    constexpr lease& operator=(lease&& other) noexcept {
        if (this != &other) {
            owner_ = other.owner_;
            slot_ = other.slot_;
            generation_ = other.generation_;
            other.owner_ = 0;
            other.slot_ = 0;
            other.generation_ = 0;
        }
        return *this;
    }

    /// True for a default-constructed or moved-from lease. A non-empty lease may still be stale.
    constexpr bool empty() const noexcept { return owner_ == 0; }

    friend constexpr bool operator==(const lease&, const lease&) noexcept = default;

private:
    friend struct detail::lease_access;

    constexpr lease(std::uint64_t owner, std::uint32_t slot, std::uint32_t generation) noexcept
        : owner_(owner), slot_(slot), generation_(generation) {}

    std::uint64_t owner_ = 0;       // allocator instance id; 0 = empty
    std::uint32_t slot_ = 0;        // index into the allocator's lease table
    std::uint32_t generation_ = 0;  // slot generation at admission; bumps on release
};

}  // namespace odma
