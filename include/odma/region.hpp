// odma/region.hpp - where a contiguous lease lies, as allocator::region_of reports it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace odma {

/// Where a live lease sits, for engines, simulators and cost models.
struct region {
    std::size_t offset_tokens = 0;  ///< first token of the region within each plane
    std::uint32_t capacity = 0;     ///< tokens reserved
    std::uint32_t used = 0;         ///< tokens held (prompt + generated so far)
    bool in_safety_pool = false;    ///< the region lies in the safety pool
};

}  // namespace odma
