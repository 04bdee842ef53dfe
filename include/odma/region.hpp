// odma/region.hpp - where a contiguous lease lies, as allocator::region_of reports it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace odma {

/// Where a live lease sits, for engines, simulators and cost models. For a lease of several
/// runs (config::max_runs > 1) the offset and the pool flag are those of its first run, and
/// for_each_run() gives every run.
struct region {
    std::size_t offset_tokens = 0;  ///< first token of the (first run of the) lease in each plane
    std::uint32_t capacity = 0;     ///< tokens reserved, over all runs
    std::uint32_t used = 0;         ///< tokens held (prompt + generated so far)
    bool in_safety_pool = false;    ///< the (first run of the) lease lies in the safety pool
    std::uint32_t runs = 1;         ///< contiguous runs the lease occupies
};

}  // namespace odma
