// odma/stats.hpp - counters an allocator keeps about itself.
#pragma once

#include <cstddef>
#include <cstdint>

namespace odma {

/// A snapshot of an allocator's state and history, returned by allocator::stats().
///
/// Byte figures are the arena's (all planes together). "General area" is the arena minus the
/// safety pool.
struct stats {
    // --- capacity ---------------------------------------------------------------------------
    /// The arena in use: whole tokens x bytes_per_token. resize() changes it.
    std::size_t arena_bytes = 0;
    std::size_t safety_pool_bytes = 0;  ///< part of the arena kept as the safety pool
    /// The largest arena resize() can grow to: every token slot of the backing. Equals
    /// arena_bytes unless config::arena_bytes or resize() made the arena smaller.
    std::size_t max_arena_bytes = 0;

    // --- now --------------------------------------------------------------------------------
    std::size_t reserved_bytes = 0;  ///< held by live leases (their capacities)
    std::size_t used_bytes = 0;      ///< tokens live leases really hold x bytes_per_token
    std::size_t safety_pool_reserved_bytes = 0;  ///< reserved_bytes that lie in the pool
    std::size_t free_bytes = 0;                  ///< arena_bytes - reserved_bytes
    std::size_t largest_free_bytes = 0;          ///< largest free extent of the general area
    std::size_t live_leases = 0;

    /// 1 - largest free extent / total free, over the general area: 0 when all free space is
    /// one extent, near 1 when it is shredded into pieces too small to use.
    double external_fragmentation = 0.0;

    // --- history ----------------------------------------------------------------------------
    std::size_t peak_live_leases = 0;
    std::size_t peak_used_bytes = 0;
    std::uint64_t admissions = 0;              ///< successful admit() and resume() calls
    std::uint64_t resumptions = 0;             ///< of which resume() (preempted requests)
    std::uint64_t admissions_in_runs = 0;      ///< of which placed in several runs (max_runs > 1)
    std::uint64_t releases = 0;                ///< successful release() and abandon() calls
    std::uint64_t in_place_growths = 0;        ///< extend() that grew without moving
    std::uint64_t appended_runs = 0;           ///< extend() that added a run (max_runs > 1)
    std::uint64_t migrations = 0;              ///< extend() that copied to a new region
    std::uint64_t lending_passes = 0;          ///< passes that took back unused tails
    std::uint64_t lent_bytes = 0;              ///< reserved bytes those passes handed back
    std::uint64_t demand_refusals = 0;         ///< admissions refused by config::demand_limit
    std::uint64_t migrated_bytes = 0;          ///< bytes those migrations copied
    std::uint64_t safety_pool_admissions = 0;  ///< admit() placed in the pool
    std::uint64_t safety_pool_migrations = 0;  ///< extend() migrated or appended into the pool
    std::uint64_t resizes = 0;                 ///< resize() calls that changed the arena
    std::uint64_t resize_copied_bytes = 0;     ///< bytes resize() copied to move leases

    /// Failed calls, by the error they returned.
    struct rejection_counts {
        std::uint64_t invalid_request = 0;   ///< admit or extend with an impossible size
        std::uint64_t admit_no_memory = 0;   ///< admit found no room
        std::uint64_t extend_no_memory = 0;  ///< extend found no room (lease kept its size)
        std::uint64_t invalid_lease = 0;     ///< stale, foreign, empty or released handle
    } rejected;

    /// Used bytes over the whole arena: the share of memory doing useful work.
    double utilization() const noexcept {
        return arena_bytes ? double(used_bytes) / double(arena_bytes) : 0.0;
    }
    /// Used bytes over reserved bytes: how well reservations match real lengths.
    double reserved_utilization() const noexcept {
        return reserved_bytes ? double(used_bytes) / double(reserved_bytes) : 0.0;
    }
};

}  // namespace odma
