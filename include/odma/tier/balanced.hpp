// odma/tier/balanced.hpp - the dynamic tier policy: keep the growing, long-lived KV in the fast
// tier and read the slow tier only as much as the fast one hides.
#pragma once

#include <odma/concepts.hpp>
#include <odma/request.hpp>
#include <odma/tier_policy.hpp>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <utility>

namespace odma::tier_policies {

/// Dynamic placement driven by a length predictor.
///
/// With dense attention every live lease is read on every decode step, so a lease in the slow
/// tier costs its bytes over the slow path on each step until it finishes. The accelerator
/// reads the two tiers at once (separate memory paths), so slow-tier reads are free as long
/// as they take no longer than the fast-tier reads of the same step; past that point each
/// slow byte lengthens the step for everyone. Hence three rules:
///
///  - admission: the fast tier first; the slow tier only while the slow tier would hold at
///    most `slow_share` x the fast tier's capacity, the point where both paths take equal
///    time with a full fast tier (slow_share = slow read bandwidth / fast read bandwidth).
///    Beyond it the request waits: admitting it would slow every step more than its own
///    tokens add.
///  - demotion, when a fast lease must grow and the fast tier is full: the fast lease whose
///    remaining slow-path cost is least (held tokens x expected remaining steps) leaves,
///    instead of a preemption that would prefill it again.
///  - promotion, when the fast tier has room: slow leases with the most expected remaining
///    steps first (each step saves its bytes over the slow path; the move costs them once).
///
/// The predictor gives the expected output at admission (its median); an oracle predictor
/// makes this policy the offline bound of the replay. The predictor is copied in and never
/// trained here: the tiers' own allocators learn from releases.
template <Predictor P>
class balanced {
public:
    /// `slow_share` in [0, 1]: see the class comment. Throws std::invalid_argument otherwise.
    explicit balanced(P predictor, double slow_share)
        : predictor_(std::move(predictor)), slow_share_(slow_share) {
        if (!(slow_share >= 0.0 && slow_share <= 1.0))
            throw std::invalid_argument("balanced tier policy: slow_share must be in [0, 1]");
    }

    std::uint32_t expected_output(const request& r) {
        return std::max<std::uint32_t>(1, predictor_.predict(r).tokens());
    }

    tier_plan admission(const tier_occupancy& occ, std::uint32_t tokens,
                        const tier_resident&) const noexcept {
        const double slow_after = double(occ.held(tier::slow)) + double(tokens);
        return {tier::fast, slow_after <= slow_share_ * double(occ.capacity(tier::fast))};
    }

    bool moves() const noexcept { return true; }

    double promotion_priority(const tier_resident& r) const noexcept {
        return double(r.expected_remaining);
    }

    double demotion_priority(const tier_resident& r) const noexcept {
        return 1.0 / (double(std::max<std::uint32_t>(r.held_tokens, 1)) *
                      double(std::max<std::uint32_t>(r.expected_remaining, 1)));
    }

    /// The predictor (an oracle is told the true lengths through it).
    P& predictor() noexcept { return predictor_; }
    double slow_share() const noexcept { return slow_share_; }

private:
    P predictor_;
    double slow_share_;
};

}  // namespace odma::tier_policies
