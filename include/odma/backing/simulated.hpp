// odma/backing/simulated.hpp - compatibility: the class moved to odma/backing/placement_only.hpp.
#pragma once

#include <odma/backing/placement_only.hpp>

namespace odma::backing {

/// The former name of placement_only (a backing with capacity and no bytes).
using simulated = placement_only;

}  // namespace odma::backing
