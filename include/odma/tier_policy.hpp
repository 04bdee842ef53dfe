// odma/tier_policy.hpp - what a tier policy decides, and what it decides from.
//
// odma::tiered (tiered.hpp) puts each lease in one of two KV allocators: a fast tier (HBM, the
// device's own memory) and a slow tier (LPDDR5X behind NVLink-C2C on a GH200, host DDR behind
// PCIe). Where a lease goes at admission, which lease leaves the fast tier when a fast lease
// must grow and there is no room, and which slow-tier leases come back when room frees up are
// the decisions of a TierPolicy; moving the bytes is the job of a TierLink. Both are policies
// in the sense of concepts.hpp: the composition calls them directly, and a policy that never
// moves anything says so once (moves() == false) instead of answering every question.
#pragma once

#include <odma/request.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace odma {

/// The two memories of a tiered KV cache.
enum class tier : std::uint8_t {
    fast = 0,  ///< where the accelerator reads fastest (HBM)
    slow = 1,  ///< larger and slower: off-package LPDDR, host DDR over a link
};

constexpr std::string_view to_string(tier t) noexcept {
    return t == tier::fast ? "fast" : "slow";
}

/// The other tier.
constexpr tier other(tier t) noexcept {
    return t == tier::fast ? tier::slow : tier::fast;
}

/// Token counts of both tiers, indexed by tier: what a policy sees of the whole cache.
struct tier_occupancy {
    std::uint64_t capacity_tokens[2] = {0, 0};  ///< token slots of each tier's arena
    std::uint64_t held_tokens[2] = {0, 0};      ///< tokens the live leases of each tier hold
    std::uint64_t free_tokens[2] = {0, 0};      ///< unreserved token slots of each tier

    std::uint64_t capacity(tier t) const noexcept { return capacity_tokens[int(t)]; }
    std::uint64_t held(tier t) const noexcept { return held_tokens[int(t)]; }
    std::uint64_t free(tier t) const noexcept { return free_tokens[int(t)]; }
};

/// One live lease as a policy sees it when choosing whom to move.
struct tier_resident {
    tier where = tier::fast;
    std::uint32_t held_tokens = 0;  ///< tokens the lease holds now (prompt + generated)
    std::uint32_t generated = 0;    ///< of which generated since admission (held - prompt)
    /// The policy's own estimate of tokens still to generate (expected_output() at admission
    /// minus what has been generated), at least 1 while the request runs.
    std::uint32_t expected_remaining = 1;
    std::uint64_t admitted = 0;  ///< admission order: larger is newer
};

/// Where an admission goes: the tier tried first, and whether the other one may take it when
/// the first has no room.
struct tier_plan {
    tier first = tier::fast;
    bool may_spill = true;
};

/// Decides where leases live.
///
///   p.expected_output(req)        -> uint32     tokens the request is expected to generate
///                                               (0: the policy does not look at lengths); kept
///                                               with the lease for tier_resident
///   p.admission(occ, tokens, r)   -> tier_plan  where a lease of `tokens` tokens goes, `r`
///                                               being its resident view as it would be placed
///   p.moves()                     -> bool       false: leases never change tier (the calls
///                                               below are never made)
///   p.promotion_priority(r)       -> double     > 0: worth moving up when the fast tier has
///                                               room; larger goes first
///   p.demotion_priority(r)        -> double     which fast lease leaves first when a fast lease
///                                               must grow and the fast tier is full; larger
///                                               leaves first, <= 0 never
///
/// Calls are made on the composition's own thread, O(live leases) per pass at most.
template <class P>
concept TierPolicy = std::move_constructible<P> &&
    requires(P& p, const P& cp, const request& req, const tier_occupancy& occ,
             const tier_resident& r, std::uint32_t tokens) {
    { p.expected_output(req) } -> std::convertible_to<std::uint32_t>;
    { cp.admission(occ, tokens, r) } -> std::same_as<tier_plan>;
    { cp.moves() } -> std::convertible_to<bool>;
    { cp.promotion_priority(r) } -> std::convertible_to<double>;
    { cp.demotion_priority(r) } -> std::convertible_to<double>;
};

/// Moves bytes between the two tiers' backings.
///
///   link(from_backing, from_offset, to_backing, to_offset, bytes)
///
/// called with either tier as the source. It may throw; the composition then keeps the lease
/// where it was.
template <class L, class FastBacking, class SlowBacking>
concept TierLink = requires(L& link, FastBacking& f, SlowBacking& s, std::size_t offset,
                            std::size_t bytes) {
    link(f, offset, s, offset, bytes);
    link(s, offset, f, offset, bytes);
};

}  // namespace odma
