// odma/backing/lpddr_emulated.hpp - compatibility: the class moved to odma/backing/accounted.hpp.
#pragma once

#include <odma/backing/accounted.hpp>
#include <odma/backing/host.hpp>
#include <odma/backing/memory_model.hpp>
#include <odma/backing/placement_only.hpp>
#include <odma/backing/simulated.hpp>
#include <odma/concepts.hpp>
#include <odma/memory/memory_model.hpp>

#include <utility>

namespace odma::backing {

/// The former name of accounted: it never modelled only LPDDR (HBM3 is a preset too).
template <Backing Inner = host>
using lpddr_emulated = accounted<Inner>;

/// The former name of make_placement_device().
inline accounted<placement_only> make_simulated_device(memory::memory_model model) {
    return make_placement_device(std::move(model));
}

}  // namespace odma::backing
