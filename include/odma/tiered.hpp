// odma/tiered.hpp - one KV cache over two memories: a fast tier and a slow tier, each its own
// KV allocator, with a TierPolicy deciding where each lease lives and a TierLink moving it.
//
// The seeds' two systems meet here: dynamic KV placement across HBM and LPDDR5X on a GH200
// (Fang et al.), and eLLM's use of CPU memory as an extension of the accelerator's. A lease
// lives wholly in one tier (its runs are the inner allocator's runs); a move re-admits it in the
// other tier with resume() (so the inner allocator still learns the whole length at release),
// copies every run of every plane through the link, and abandons the old lease. Leases are
// handles of this composition: they stay valid across moves, data() and for_each_run() answer
// for wherever the lease is now.
//
// Offsets: for_each_run() and byte_offset() speak of one address space, the fast backing's
// bytes followed by the slow backing's (slow offset + fast capacity), which backing() (a
// tier_backings view) maps back. An accounting simulator reads through that view and learns
// from tier_backings::tier_of(offset) which tier a read hit.
#pragma once

#include <odma/detail/slot_table.hpp>
#include <odma/errc.hpp>
#include <odma/growth.hpp>
#include <odma/kv_allocator.hpp>
#include <odma/lease.hpp>
#include <odma/request.hpp>
#include <odma/result.hpp>
#include <odma/stats.hpp>
#include <odma/tier_policy.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace odma {

/// What the composition did, beyond what each tier's allocator counts.
struct tiered_stats {
    std::uint64_t admissions[2] = {0, 0};  ///< admit() and resume() placed in each tier
    std::uint64_t spills = 0;              ///< of which went to the tier the plan did not try first
    std::uint64_t promotions = 0;          ///< moves slow -> fast
    std::uint64_t demotions = 0;           ///< moves fast -> slow
    std::uint64_t moved_bytes = 0;         ///< bytes the link carried, both directions
    std::uint64_t failed_moves = 0;        ///< moves given up (no room, or the link threw)
};

/// The two backings of a tiered cache as one address space: [0, fast capacity) is the fast
/// backing, the rest the slow one. read()/write() and the report exist when both backings
/// account (backing::accounted).
template <class FastBacking, class SlowBacking>
class tier_backings {
public:
    tier_backings(FastBacking& fast, SlowBacking& slow) : fast_(&fast), slow_(&slow) {}

    FastBacking& fast() noexcept { return *fast_; }
    SlowBacking& slow() noexcept { return *slow_; }
    const FastBacking& fast() const noexcept { return *fast_; }
    const SlowBacking& slow() const noexcept { return *slow_; }

    std::size_t capacity() const noexcept { return fast_->capacity() + slow_->capacity(); }
    /// The address of joint offset `offset`, in whichever backing holds it.
    auto address(std::size_t offset) const requires
        std::is_same_v<typename FastBacking::pointer, typename SlowBacking::pointer> {
        return offset < slow_base() ? fast_->address(offset) : slow_->address(offset - slow_base());
    }
    /// Where the slow tier's bytes start in the joint address space.
    std::size_t slow_base() const noexcept { return fast_->capacity(); }
    odma::tier tier_of(std::size_t offset) const noexcept {
        return offset < slow_base() ? odma::tier::fast : odma::tier::slow;
    }

    void read(std::size_t offset, std::size_t bytes) requires
        requires(FastBacking& f, SlowBacking& s) {
        f.read(offset, bytes);
        s.read(offset, bytes);
    }
    {
        if (offset < slow_base())
            fast_->read(offset, bytes);
        else
            slow_->read(offset - slow_base(), bytes);
    }
    void write(std::size_t offset, std::size_t bytes) requires
        requires(FastBacking& f, SlowBacking& s) {
        f.write(offset, bytes);
        s.write(offset, bytes);
    }
    {
        if (offset < slow_base())
            fast_->write(offset, bytes);
        else
            slow_->write(offset - slow_base(), bytes);
    }
    /// Both tiers' reports, added (each tier's own is fast().report() and slow().report()).
    auto report() const requires requires(const FastBacking& f, const SlowBacking& s) {
        f.report().all();
        s.report().all();
    }
    {
        auto r = fast_->report();
        const auto& s = slow_->report();
        r.read += s.read;
        r.write += s.write;
        r.migration += s.migration;
        return r;
    }
    void reset_report() requires requires(FastBacking& f, SlowBacking& s) {
        f.reset_report();
        s.reset_report();
    }
    {
        fast_->reset_report();
        slow_->reset_report();
    }

private:
    FastBacking* fast_;
    SlowBacking* slow_;
};

/// A KV cache over a fast and a slow tier (see the file comment). Models KvAllocator.
///
/// `Fast` and `Slow` are KV allocators (odma::allocator, odma::paged, ...) with the same
/// bytes per token and planes, owned by the caller and used only through this composition
/// while it lives. `Policy` is a TierPolicy (tier/static_spill.hpp, tier/balanced.hpp),
/// `Link` a TierLink (tier/host_link.hpp).
///
/// Placement: admit() and resume() ask the policy for a plan and try its first tier, then the
/// other if the plan allows. extend() grows a lease in its tier; when the fast tier is full and
/// the policy moves leases, fast leases are demoted to the slow tier in the policy's order until
/// the growth fits (the growing lease may be the one demoted). rebalance() promotes slow leases
/// into free fast space. Every failure leaves every lease where and as it was.
///
/// Not thread-safe (as the allocators it composes).
template <KvAllocator Fast, KvAllocator Slow, TierPolicy Policy, class Link>
requires std::is_same_v<typename Fast::pointer, typename Slow::pointer> &&
    TierLink<Link, typename Fast::backing_type, typename Slow::backing_type>
class tiered {
public:
    using pointer = typename Fast::pointer;
    using backing_type = tier_backings<typename Fast::backing_type, typename Slow::backing_type>;
    using policy_type = Policy;

    /// Throws std::invalid_argument when the tiers disagree on bytes per token or planes.
    tiered(Fast& fast, Slow& slow, Policy policy, Link link = {})
        : fast_(fast)
        , slow_(slow)
        , policy_(std::move(policy))
        , link_(std::move(link))
        , backings_(fast.backing(), slow.backing()) {
        if (fast.config().bytes_per_token != slow.config().bytes_per_token ||
            fast.config().planes != slow.config().planes)
            throw std::invalid_argument(
                "tiered: the fast and slow tiers must have the same bytes_per_token and planes");
    }

    tiered(const tiered&) = delete;
    tiered& operator=(const tiered&) = delete;

    /// Admits `r` where the policy plans (see the class comment). Errors: the tiers' own
    /// (invalid_request; no_memory when neither planned tier has room).
    result<lease> admit(const request& r) { return place(r, 0, false); }

    /// Admits again a preempted request with `generated` tokens already produced.
    result<lease> resume(const request& r, std::uint32_t generated) {
        return place(r, generated, true);
    }

    /// Grows (or shrinks) `l` to `total_tokens` in its tier, demoting fast leases when the
    /// fast tier is full and the policy moves leases. no_memory leaves `l` as it was.
    result<growth> extend(const lease& l, std::uint32_t total_tokens) {
        slot* s = table_.find(l);
        if (!s) return errc::invalid_lease;
        for (;;) {
            auto g = s->where == tier::fast ? fast_.extend(s->inner, total_tokens)
                                            : slow_.extend(s->inner, total_tokens);
            if (g) {
                held_[int(s->where)] = held_[int(s->where)] - s->held + total_tokens;
                s->held = total_tokens;
                return g;
            }
            if (g.error() != errc::no_memory || s->where != tier::fast || !policy_.moves())
                return g;
            // The fast tier is full: demote the fast lease the policy lets go first.
            slot* victim = demotion_victim();
            if (!victim) return g;
            const bool self = victim == s;
            if (!move(*victim, tier::slow)) return g;
            if (self) continue;  // now grows in the slow tier
        }
    }

    /// Frees `l` and lets its tier's policies learn the whole length (see allocator::release).
    result<void> release(const lease& l, std::uint32_t generated) {
        slot* s = table_.find(l);
        if (!s) return errc::invalid_lease;
        auto r = s->where == tier::fast ? fast_.release(s->inner, generated)
                                        : slow_.release(s->inner, generated);
        if (!r) return r;
        free_slot(*s);
        return {};
    }

    /// Frees `l` without teaching anything (preemption, cancellation).
    result<void> abandon(const lease& l) {
        slot* s = table_.find(l);
        if (!s) return errc::invalid_lease;
        auto r = s->where == tier::fast ? fast_.abandon(s->inner) : slow_.abandon(s->inner);
        if (!r) return r;
        free_slot(*s);
        return {};
    }

    address<pointer> data(const lease& l, std::uint32_t plane = 0) const {
        const slot* s = table_.find(l);
        if (!s) return errc::invalid_lease;
        return s->where == tier::fast ? fast_.data(s->inner, plane) : slow_.data(s->inner, plane);
    }

    /// f(byte offset in the joint address space, bytes) for each run of `l` in `plane`.
    template <class F>
    result<void> for_each_run(const lease& l, std::uint32_t plane, F&& f) const {
        const slot* s = table_.find(l);
        if (!s) return errc::invalid_lease;
        if (s->where == tier::fast) return fast_.for_each_run(s->inner, plane, f);
        const std::size_t base = backings_.slow_base();
        return slow_.for_each_run(s->inner, plane, [&](std::size_t offset, std::size_t bytes) {
            f(base + offset, bytes);
        });
    }

    bool is_live(const lease& l) const noexcept { return table_.find(l) != nullptr; }

    /// Where `l` lives now; invalid_lease when it is not live.
    result<odma::tier> tier_of(const lease& l) const {
        const slot* s = table_.find(l);
        if (!s) return errc::invalid_lease;
        return s->where;
    }

    /// Moves `l` to tier `to` (nothing when it is there already). no_memory when `to` has no
    /// room; invalid_request when the lease cannot be re-admitted (it holds max_tokens). On any
    /// error or exception the lease stays where it was, with its contents.
    result<void> move(const lease& l, odma::tier to) {
        slot* s = table_.find(l);
        if (!s) return errc::invalid_lease;
        if (s->where == to) return {};
        return move(*s, to);
    }

    /// Promotes slow leases into free fast space, highest promotion_priority first, until
    /// the fast tier has no room for the next one or `byte_budget` would be exceeded. Returns
    /// the bytes moved. Nothing happens for policies that do not move leases.
    std::uint64_t rebalance(std::uint64_t byte_budget = std::numeric_limits<std::uint64_t>::max()) {
        if (!policy_.moves()) return 0;
        candidates_.clear();
        for (std::uint32_t i = 0; i < table_.size(); ++i) {
            const slot& s = table_[i];
            if (!s.live || s.where != tier::slow) continue;
            const double p = policy_.promotion_priority(resident(s));
            if (p > 0) candidates_.push_back({p, i});
        }
        std::sort(candidates_.begin(), candidates_.end(), [](const auto& a, const auto& b) {
            return a.first != b.first ? a.first > b.first : a.second < b.second;
        });
        std::uint64_t moved = 0;
        const std::uint64_t per_token = fast_.config().bytes_per_token;
        for (const auto& c : candidates_) {
            slot& s = table_[c.second];
            const std::uint64_t bytes = std::uint64_t(s.held) * per_token;
            if (moved + bytes > byte_budget) break;
            if (std::uint64_t(s.held) > occupancy().free(tier::fast)) break;
            if (!move(s, tier::fast)) break;
            moved += bytes;
        }
        return moved;
    }

    /// Both tiers' counters, added (arena, reserved and used bytes, leases, events).
    odma::stats stats() const {
        odma::stats a = fast_.stats();
        const odma::stats b = slow_.stats();
        a.arena_bytes += b.arena_bytes;
        a.safety_pool_bytes += b.safety_pool_bytes;
        a.reserved_bytes += b.reserved_bytes;
        a.used_bytes += b.used_bytes;
        a.safety_pool_reserved_bytes += b.safety_pool_reserved_bytes;
        a.free_bytes += b.free_bytes;
        a.largest_free_bytes = std::max(a.largest_free_bytes, b.largest_free_bytes);
        // Moves pass through both tiers' admission and release counters; the composition's
        // own view of leases is the table's.
        a.live_leases = live_;
        a.peak_live_leases = peak_live_;
        a.peak_used_bytes = std::max(a.peak_used_bytes, b.peak_used_bytes);
        a.admissions += b.admissions;
        a.resumptions += b.resumptions;
        a.admissions_in_runs += b.admissions_in_runs;
        a.releases += b.releases;
        a.in_place_growths += b.in_place_growths;
        a.appended_runs += b.appended_runs;
        a.migrations += b.migrations;
        a.lending_passes += b.lending_passes;
        a.lent_bytes += b.lent_bytes;
        a.demand_refusals += b.demand_refusals;
        a.migrated_bytes += b.migrated_bytes;
        a.safety_pool_admissions += b.safety_pool_admissions;
        a.safety_pool_migrations += b.safety_pool_migrations;
        a.rejected.invalid_request += b.rejected.invalid_request;
        a.rejected.admit_no_memory += b.rejected.admit_no_memory;
        a.rejected.extend_no_memory += b.rejected.extend_no_memory;
        a.rejected.invalid_lease += b.rejected.invalid_lease;
        return a;
    }

    const tiered_stats& tier_stats() const noexcept { return tier_stats_; }

    /// Token counts of both tiers, as the policy sees them.
    tier_occupancy occupancy() const {
        tier_occupancy o;
        const std::uint64_t per_token = fast_.config().bytes_per_token;
        const odma::stats f = fast_.stats(), s = slow_.stats();
        o.capacity_tokens[0] = f.arena_bytes / per_token;
        o.capacity_tokens[1] = s.arena_bytes / per_token;
        o.held_tokens[0] = held_[0];
        o.held_tokens[1] = held_[1];
        o.free_tokens[0] = f.free_bytes / per_token;
        o.free_tokens[1] = s.free_bytes / per_token;
        return o;
    }

    /// Both tiers' invariants, and the composition's: every live lease is live in its tier and
    /// holds what the composition believes; the tiers hold no lease the composition lost.
    result<void> check() const {
        if (auto r = fast_.check(); !r) return r;
        if (auto r = slow_.check(); !r) return r;
        std::uint64_t held[2] = {0, 0};
        std::size_t live[2] = {0, 0};
        for (const slot& s : table_.all()) {
            if (!s.live) continue;
            const bool in_tier =
                s.where == tier::fast ? fast_.is_live(s.inner) : slow_.is_live(s.inner);
            if (!in_tier) return errc::invariant_violation;
            held[int(s.where)] += s.held;
            ++live[int(s.where)];
        }
        if (held[0] != held_[0] || held[1] != held_[1]) return errc::invariant_violation;
        if (live[0] != fast_.stats().live_leases || live[1] != slow_.stats().live_leases)
            return errc::invariant_violation;
        if (live[0] + live[1] != live_) return errc::invariant_violation;
        return {};
    }

    const odma::config& config() const noexcept { return fast_.config(); }

    /// Offset of token slot `token` of `plane` in the joint address space: tokens below the
    /// fast tier's capacity_tokens() are the fast tier's, the rest the slow tier's.
    std::size_t byte_offset(std::uint32_t plane, std::size_t token) const noexcept requires
        requires(const Fast& f) {
        f.capacity_tokens();
    }
    {
        const std::size_t fast_tokens = fast_.capacity_tokens();
        if (token < fast_tokens) return fast_.byte_offset(plane, token);
        return backings_.slow_base() + slow_.byte_offset(plane, token - fast_tokens);
    }

    backing_type& backing() noexcept { return backings_; }
    const backing_type& backing() const noexcept { return backings_; }
    Fast& fast() noexcept { return fast_; }
    Slow& slow() noexcept { return slow_; }
    Policy& policy() noexcept { return policy_; }
    const Policy& policy() const noexcept { return policy_; }

private:
    struct slot {
        std::uint32_t generation = 1;
        bool live = false;
        std::uint32_t next_free = std::numeric_limits<std::uint32_t>::max();  // slot_table::none
        odma::tier where = odma::tier::fast;
        lease inner;
        request original;
        std::uint32_t held = 0;
        std::uint32_t expected_output = 0;
        std::uint64_t admitted = 0;
    };

    tier_resident resident(const slot& s) const noexcept {
        const std::uint32_t generated =
            s.held > s.original.prompt_tokens ? s.held - s.original.prompt_tokens : 0;
        const std::uint32_t remaining =
            s.expected_output > generated ? s.expected_output - generated : 1;
        return {s.where, s.held, generated, remaining, s.admitted};
    }

    result<lease> place(const request& r, std::uint32_t generated, bool resumed) {
        const std::uint32_t index = table_.reserve();  // may throw: nothing changed yet
        const std::uint32_t expected = policy_.expected_output(r);
        const auto tokens = static_cast<std::uint32_t>(std::min<std::uint64_t>(
            std::uint64_t(r.prompt_tokens) + generated, std::numeric_limits<std::uint32_t>::max()));
        const tier_resident view{tier::fast, tokens, generated,
                                 expected > generated ? expected - generated : 1, admitted_};
        const tier_plan plan = policy_.admission(occupancy(), tokens, view);
        odma::tier where = plan.first;
        auto l = admit_in(where, r, generated, resumed);
        if (!l && l.error() == errc::no_memory && plan.may_spill) {
            where = other(plan.first);
            l = admit_in(where, r, generated, resumed);
            if (l) ++tier_stats_.spills;
        }
        if (!l) return l;
        slot& s = table_.take(index);
        s.where = where;
        s.inner = *l;
        s.original = r;
        s.held = tokens;
        s.expected_output = expected;
        s.admitted = admitted_++;
        held_[int(where)] += tokens;
        ++tier_stats_.admissions[int(where)];
        peak_live_ = std::max(peak_live_, ++live_);
        return table_.handle(index);
    }

    result<lease> admit_in(odma::tier t, const request& r, std::uint32_t generated, bool resumed) {
        if (t == tier::fast) return resumed ? fast_.resume(r, generated) : fast_.admit(r);
        return resumed ? slow_.resume(r, generated) : slow_.admit(r);
    }

    void free_slot(slot& s) noexcept {
        held_[int(s.where)] -= s.held;
        --live_;
        s.inner = lease{};
        table_.release(s);
    }

    // The fast lease the policy demotes first, or null when none may go.
    slot* demotion_victim() {
        slot* best = nullptr;
        double best_priority = 0;
        for (std::uint32_t i = 0; i < table_.size(); ++i) {
            slot& s = table_[i];
            if (!s.live || s.where != tier::fast) continue;
            const double p = policy_.demotion_priority(resident(s));
            if (p > best_priority) best = &s, best_priority = p;
        }
        return best;
    }

    // Re-admits s in tier `to` (resume: the inner allocator keeps the original request), copies
    // each plane's tokens run by run through the link, then abandons the old lease.
    result<void> move(slot& s, odma::tier to) {
        const std::uint32_t generated =
            s.held > s.original.prompt_tokens ? s.held - s.original.prompt_tokens : 0;
        auto target = to == tier::fast ? fast_.resume(s.original, generated)
                                       : slow_.resume(s.original, generated);
        if (!target) {
            ++tier_stats_.failed_moves;
            return target.error();
        }
        try {
            copy_runs(s, *target, to);
        } catch (...) {
            ++tier_stats_.failed_moves;
            (void)(to == tier::fast ? fast_.abandon(*target) : slow_.abandon(*target));
            throw;
        }
        (void)(s.where == tier::fast ? fast_.abandon(s.inner) : slow_.abandon(s.inner));
        held_[int(s.where)] -= s.held;
        held_[int(to)] += s.held;
        s.where = to;
        s.inner = *target;
        const std::uint64_t bytes = std::uint64_t(s.held) * fast_.config().bytes_per_token;
        tier_stats_.moved_bytes += bytes;
        ++(to == tier::fast ? tier_stats_.promotions : tier_stats_.demotions);
        return {};
    }

    // Copies the tokens of s (in its tier) into `target` (in tier `to`), plane by plane: the
    // two leases hold the same tokens in different runs, so the pieces are the overlaps of the
    // two run lists in token order.
    void copy_runs(const slot& s, const lease& target, odma::tier to) {
        for (std::uint32_t p = 0; p < fast_.config().planes; ++p) {
            pieces_.clear();
            auto collect = [&](std::size_t offset, std::size_t bytes) {
                pieces_.push_back({offset, bytes});
            };
            (void)(s.where == tier::fast ? fast_.for_each_run(s.inner, p, collect)
                                         : slow_.for_each_run(s.inner, p, collect));
            std::size_t i = 0, used = 0;  // piece i, bytes of it already copied
            auto copy_into = [&](std::size_t offset, std::size_t bytes) {
                while (bytes > 0 && i < pieces_.size()) {
                    const std::size_t n = std::min(bytes, pieces_[i].second - used);
                    copy_piece(s.where, pieces_[i].first + used, to, offset, n);
                    offset += n;
                    bytes -= n;
                    used += n;
                    if (used == pieces_[i].second) ++i, used = 0;
                }
            };
            (void)(to == tier::fast ? fast_.for_each_run(target, p, copy_into)
                                    : slow_.for_each_run(target, p, copy_into));
        }
    }

    void copy_piece(odma::tier from, std::size_t from_offset, odma::tier to, std::size_t to_offset,
                    std::size_t bytes) {
        if (from == tier::fast && to == tier::slow)
            link_(fast_.backing(), from_offset, slow_.backing(), to_offset, bytes);
        else if (from == tier::slow && to == tier::fast)
            link_(slow_.backing(), from_offset, fast_.backing(), to_offset, bytes);
    }

    Fast& fast_;
    Slow& slow_;
    Policy policy_;
    Link link_;
    backing_type backings_;
    detail::slot_table<slot> table_;
    std::uint64_t held_[2] = {0, 0};
    std::size_t live_ = 0, peak_live_ = 0;
    std::uint64_t admitted_ = 0;
    tiered_stats tier_stats_;
    std::vector<std::pair<double, std::uint32_t>> candidates_;  // rebalance scratch
    std::vector<std::pair<std::size_t, std::size_t>> pieces_;   // copy_runs scratch
};

}  // namespace odma
