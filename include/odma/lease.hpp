// odma/lease.hpp - the handle to one request's KV region, and how a region grew.
#pragma once

#include <cstddef>
#include <cstdint>

namespace odma {

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
    friend struct lease_access;

    constexpr lease(std::uint64_t owner, std::uint32_t slot, std::uint32_t generation) noexcept
        : owner_(owner), slot_(slot), generation_(generation) {}

    std::uint64_t owner_ = 0;       // allocator instance id; 0 = empty
    std::uint32_t slot_ = 0;        // index into the allocator's lease table
    std::uint32_t generation_ = 0;  // slot generation at admission; bumps on release
};

/// Internal access to a lease's fields for odma's own containers. Not part of the public API.
struct lease_access {
    static constexpr lease make(std::uint64_t owner, std::uint32_t slot,
                                std::uint32_t generation) noexcept {
        return lease(owner, slot, generation);
    }
    static constexpr std::uint64_t owner(const lease& l) noexcept { return l.owner_; }
    static constexpr std::uint32_t slot(const lease& l) noexcept { return l.slot_; }
    static constexpr std::uint32_t generation(const lease& l) noexcept { return l.generation_; }
};

/// What allocator::extend had to do to give a lease the requested number of tokens.
enum class growth : std::uint8_t {
    unchanged,  ///< the tokens already fit in the lease's reservation
    in_place,   ///< the region grew into free space right after it; the address is unchanged
    migrated,   ///< the live tokens were copied to a larger region; call data() again
};

/// Where a live lease sits, for engines, simulators and cost models.
struct region {
    std::size_t offset_tokens = 0;  ///< first token of the region within each plane
    std::uint32_t capacity = 0;     ///< tokens reserved
    std::uint32_t used = 0;         ///< tokens held (prompt + generated so far)
    bool in_safety_pool = false;    ///< the region lies in the safety pool
};

}  // namespace odma
