// odma/backing/commit_counters.hpp - what an on-demand backing reports about physical memory.
#pragma once

#include <cstddef>
#include <cstdint>

namespace odma::backing {

/// Counters of an on-demand (committing) backing: host_vmm, cuda_vmm, cndrv_vmm.
///
/// The point of those backings is that the allocator's reservations cost address space only:
/// physical memory follows the tokens leases really hold, rounded out to whole granules.
/// mapped_bytes is that physical figure; compare it with the allocator's stats().used_bytes
/// and reserved_bytes to see what on-demand mapping saves.
struct commit_counters {
    std::size_t granule_bytes = 0;      ///< unit of physical mapping (page or device chunk)
    std::size_t committed_bytes = 0;    ///< bytes committed by the allocator and not decommitted
    std::size_t mapped_bytes = 0;       ///< bytes physically backed now (whole granules)
    std::size_t peak_mapped_bytes = 0;  ///< highest mapped_bytes so far

    std::uint64_t commits = 0;    ///< commit() calls
    std::uint64_t decommits = 0;  ///< decommit() calls
    std::uint64_t maps = 0;       ///< granules mapped (one driver map or part of one mprotect)
    std::uint64_t unmaps = 0;     ///< granules unmapped

    std::uint64_t failed_commits = 0;  ///< commit() returned false (out of memory, driver error)
    /// Granules the driver or kernel refused to unmap. They stay mapped (and counted in
    /// mapped_bytes), are reused by the next commit that covers them, and are retried on the
    /// next decommit and at destruction.
    std::uint64_t unmap_failures = 0;
    /// Ranges outside the arena, or decommits of bytes that were not committed: a bug in the
    /// caller. The backing ignores the bad part instead of corrupting its bookkeeping.
    std::uint64_t contract_violations = 0;
};

}  // namespace odma::backing
