// odma/growth.hpp - what extend() had to do to give a lease more tokens.
#pragma once

#include <cstdint>

namespace odma {

/// What allocator::extend had to do to give a lease the requested number of tokens.
enum class growth : std::uint8_t {
    unchanged,  ///< the tokens already fit in the lease's reservation
    in_place,   ///< the region grew into free space right after it; the address is unchanged
    migrated,   ///< the live tokens were copied to a larger region; call data() again
    appended,   ///< a new run was added after the lease's last one (config::max_runs > 1);
                ///< nothing moved, the lease reads as one more run
};

}  // namespace odma
