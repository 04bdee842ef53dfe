// odma/tier/static_spill.hpp - the seed's baseline: fast tier first, spill, never move.
#pragma once

#include <odma/request.hpp>
#include <odma/tier_policy.hpp>

#include <cstdint>

namespace odma::tier_policies {

/// Static placement (Fang et al.'s baseline for the GH200): a lease goes to the fast tier when
/// it has room, else to the slow tier, and stays where it was placed until it is released. A
/// fast lease that cannot grow in place is not moved out: the engine preempts, as it would
/// without a slow tier.
struct static_spill {
    std::uint32_t expected_output(const request&) const noexcept { return 0; }
    tier_plan admission(const tier_occupancy&, std::uint32_t, const tier_resident&) const noexcept {
        return {tier::fast, true};
    }
    bool moves() const noexcept { return false; }
    double promotion_priority(const tier_resident&) const noexcept { return 0.0; }
    double demotion_priority(const tier_resident&) const noexcept { return 0.0; }
};

}  // namespace odma::tier_policies
