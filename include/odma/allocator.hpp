// odma/allocator.hpp - the composed KV-cache allocator.
//
// Vocabulary (one screen to learn the library):
//   arena        - the memory one Backing provides, split into `planes` equal sub-arenas.
//   run          - a contiguous range of token slots, the same range in every plane; a lease
//                  owns one run (config::max_runs = 1, the ODMA mode) or up to max_runs, in
//                  token order; bytes = tokens x bytes_per_token over all planes.
//   general area - the low part of the token space, where admissions are placed; its end is
//                  the arena's elastic end (resize() moves it on on-demand backings).
//   safety pool  - the top of the token space, config::safety_pool_fraction of the arena at
//                  construction, kept for leases that outgrow their bucket and cannot grow in
//                  place, and for largest-bucket admissions when the general area is full.
//   bucket       - a size class; a lease is admitted with the capacity of the bucket that
//                  holds prompt + predicted generated tokens.
//   lease        - the caller's handle to a region (see lease.hpp).
#pragma once

#include <odma/concepts.hpp>
#include <odma/config.hpp>
#include <odma/detail/extent_heap.hpp>
#include <odma/detail/occupancy.hpp>
#include <odma/detail/plane_layout.hpp>
#include <odma/detail/request_checks.hpp>
#include <odma/detail/run_list.hpp>
#include <odma/detail/slot_table.hpp>
#include <odma/errc.hpp>
#include <odma/growth.hpp>
#include <odma/lease.hpp>
#include <odma/prediction.hpp>
#include <odma/region.hpp>
#include <odma/request.hpp>
#include <odma/resize.hpp>
#include <odma/result.hpp>
#include <odma/stats.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace odma {

/// A KV-cache allocator composed from a Predictor, a BucketPolicy and a Backing.
///
/// admit() predicts a request's length, picks the bucket that holds it and places one
/// contiguous region (under pressure, with max_runs > 1, a smaller one or a few runs, within
/// config::demand_limit); extend() grows a lease as tokens are generated (in place when the
/// space after its last run is free, else by another run while it has fewer than max_runs,
/// else by migrating the live tokens into one run); release() frees it and teaches the
/// predictor and bucket policy the true length.
///
/// Cost: admit, extend and release are O(1) in the number of live leases (TLSF placement, a
/// slot table for handles); no call allocates heap memory in steady state. Policies are stored
/// by value with [[no_unique_address]] and called directly.
///
/// Errors are returned as odma::errc (see errc.hpp); a stale or foreign lease is always
/// detected. Exceptions come only from construction (config_error), from std::bad_alloc while
/// bookkeeping grows, and from the policies themselves; in every case the allocator is left
/// valid and a lease that was live stays live at its old size.
///
/// On an on-demand backing (ResizableBacking) resize() grows or shrinks the arena at run time,
/// moving leases out of the part it cuts when the caller's copy budget allows.
///
/// Not thread-safe; wrap it in odma::synchronized to share it between threads. Not copyable or
/// movable: leases refer to it by identity.
template <Predictor P, BucketPolicy B, Backing M>
class allocator {
public:
    using predictor_type = P;
    using bucket_policy_type = B;
    using backing_type = M;
    using pointer = typename M::pointer;

    /// Validates `cfg` against the policies and the backing, then splits the arena: token
    /// slots [0, general) are the general area and the top slots the safety pool, where the
    /// slots are every whole token the backing holds (capacity_tokens(), the plane stride) and
    /// the arena is all of them or config::arena_bytes' worth.
    /// Throws config_error naming the field that cannot work.
    allocator(const odma::config& cfg, P predictor, B buckets, M backing)
        : cfg_(cfg)
        , predictor_(std::move(predictor))
        , buckets_(std::move(buckets))
        , backing_(std::move(backing)) {
        detail::validate_fields(cfg_);
        if (buckets_.max_tokens() != cfg_.max_tokens)
            throw config_error("max_tokens", "the bucket policy's largest bucket is " +
                                                 std::to_string(buckets_.max_tokens()) +
                                                 " tokens but max_tokens is " +
                                                 std::to_string(cfg_.max_tokens));
        const std::uint32_t slots = align_down(static_cast<std::uint32_t>(
            std::min<std::size_t>(backing_.capacity() / cfg_.bytes_per_token,
                                  std::numeric_limits<std::uint32_t>::max())));
        if (cfg_.arena_bytes > backing_.capacity())
            throw config_error("arena_bytes", "is " + std::to_string(cfg_.arena_bytes) +
                                                  " bytes, more than the backing's " +
                                                  std::to_string(backing_.capacity()));
        const std::uint32_t tokens =
            cfg_.arena_bytes == 0 ? slots
                                  : align_down(static_cast<std::uint32_t>(std::min<std::size_t>(
                                        cfg_.arena_bytes / cfg_.bytes_per_token, slots)));
        if (tokens < align_up(cfg_.max_tokens))
            throw config_error(
                cfg_.arena_bytes == 0 ? "backing" : "arena_bytes",
                "the arena of " +
                    std::to_string(cfg_.arena_bytes == 0 ? backing_.capacity() : cfg_.arena_bytes) +
                    " bytes holds " + std::to_string(tokens) +
                    " tokens, less than one max bucket (" + std::to_string(cfg_.max_tokens) +
                    " tokens)");
        const auto safety =
            align_down(static_cast<std::uint32_t>(double(tokens) * cfg_.safety_pool_fraction));
        const auto general = static_cast<std::uint32_t>(tokens - safety);
        if (general < align_up(cfg_.max_tokens))
            throw config_error("safety_pool_fraction",
                               "leaves a general area of " + std::to_string(general) +
                                   " tokens, less than one max bucket (" +
                                   std::to_string(cfg_.max_tokens) + " tokens)");
        layout_ = {cfg_.planes, slots, cfg_.bytes_per_plane_token()};
        occupancy_ = detail::occupancy(cfg_.bytes_per_token);
        areas_[general_area] = detail::extent_heap(0, general);
        areas_[safety_area] = detail::extent_heap(slots - safety, safety);
        stats_.arena_bytes = bytes(tokens);
        stats_.max_arena_bytes = bytes(slots);
        stats_.safety_pool_bytes = bytes(safety);
    }

    allocator(const allocator&) = delete;
    allocator& operator=(const allocator&) = delete;

    /// Reserves a contiguous region for `r`: prompt + the predictor's (1 - overflow_risk)
    /// quantile of generated tokens, rounded up to its bucket and capped at the request's own
    /// limit (prompt + max_new_tokens, at most max_tokens), then to config::run_alignment. The
    /// region holds prompt_tokens tokens on return.
    ///
    /// With max_runs > 1, when no extent holds that reservation: refused if the live leases'
    /// predicted lengths plus this one's would exceed config::demand_limit arenas; otherwise the
    /// largest free extent that holds the prompt and one more token, or, when none does, up to
    /// max_runs runs holding exactly that (stats::admissions_in_runs).
    ///
    /// errc::invalid_request: prompt_tokens or max_new_tokens is 0, or prompt_tokens >=
    ///                        max_tokens (no room left to generate).
    /// errc::no_memory:       no room right now (or, with demand_limit, no predicted room).
    result<lease> admit(const request& r) { return place(r, r); }

    /// Admits again a request that was preempted (its lease abandoned) after generating
    /// `generated` tokens: the new lease holds prompt + generated tokens on return, and is
    /// reserved as admit() reserves for a request whose prompt is that long and which may
    /// generate max_new_tokens - generated more.
    ///
    /// The allocator remembers `original`, so that release(l, total), where `total` counts every
    /// token the request generated before and after the preemption, teaches the predictor
    /// observe(original, total) and the bucket policy the request's peak demand: a preempted
    /// request teaches exactly what it would have taught had it never been preempted. Engines
    /// need no bookkeeping of their own beyond the count of generated tokens.
    ///
    /// errc::invalid_request: as admit() for `original`, or generated >= max_new_tokens
    ///                        (nothing left to generate), or prompt + generated >= max_tokens.
    /// errc::no_memory:       no free extent is large enough right now.
    result<lease> resume(const request& original, std::uint32_t generated) {
        if (!detail::resumable(original, generated, cfg_.max_tokens)) return refuse_request();
        request resumed = original;
        resumed.prompt_tokens += generated;
        resumed.max_new_tokens -= generated;
        return place(resumed, original, true);
    }

    /// Makes `l` hold `total_tokens` tokens (prompt + generated so far).
    ///
    /// Within the reservation nothing moves (growth::unchanged; shrinking is allowed). Beyond
    /// it the last run first tries to grow into the free space right after it (in_place, no
    /// address changes); then, while the lease has fewer than config::max_runs runs, a new run
    /// takes the rest elsewhere (appended: nothing is copied); otherwise the tokens it holds are
    /// copied through the backing into one new run in the general area or, failing that, the
    /// safety pool (migrated: call data() again). The capacity grows to the bucket of
    /// total_tokens, capped at the request's limit.
    ///
    /// Errors: invalid_lease when `l` is not live here; invalid_request when total_tokens is 0
    /// or above max_tokens; no_memory when there is no room anywhere, and then `l` keeps its
    /// runs, size and contents.
    result<growth> extend(const lease& l, std::uint32_t total_tokens) {
        slot* s = find(l);
        if (!s) return reject_lease();
        if (!detail::valid_total(total_tokens, cfg_.max_tokens)) return refuse_request();
        if (total_tokens <= s->capacity) {
            if (!commit_through(*s, total_tokens)) return extend_no_memory();
            set_used(*s, total_tokens);
            return growth::unchanged;
        }
        const std::uint32_t target = align_up(
            std::max(total_tokens, std::min(bucket_for(total_tokens), request_limit(s->req))));
        if (auto g = grow_without_copy(*s, total_tokens, target)) return g;
        // Under pressure, borrow the room other leases reserved but do not use before copying.
        if (cfg_.lend_reserved && lend_tails(s) > 0)
            if (auto g = grow_without_copy(*s, total_tokens, target)) return g;
        if (auto g = migrate(*s, total_tokens, target)) return g;
        return extend_no_memory();
    }

    /// Frees `l` and teaches the predictor and bucket policy that the request generated
    /// `generated_tokens` tokens in all (for a resumed lease, before and after its preemption:
    /// see resume()). Every copy of `l` is stale afterwards.
    ///
    /// errc::invalid_lease: `l` is not live in this allocator (released twice, foreign, ...).
    result<void> release(const lease& l, std::uint32_t generated_tokens) {
        slot* s = find(l);
        if (!s) return reject_lease();
        const request finished = s->req;
        const std::uint32_t asked = s->asked;
        free_slot(*s);
        // The lease is gone before the policies run: if they throw, the allocator is valid.
        const auto total = static_cast<std::uint32_t>(std::min<std::uint64_t>(
            cfg_.max_tokens, std::uint64_t(finished.prompt_tokens) + generated_tokens));
        predictor_.observe(finished, generated_tokens);
        // The bucket policy learns the peak demand: the size this request's reservation was
        // rounded up from (what admit() asked for, or what it grew to if it outgrew that).
        buckets_.observe(std::max(total, asked));
        return {};
    }

    /// Frees `l` without teaching the policies anything: for requests that were preempted (and
    /// may come back through resume()) or cancelled, whose final length is unknown.
    result<void> abandon(const lease& l) {
        slot* s = find(l);
        if (!s) return reject_lease();
        free_slot(*s);
        return {};
    }

    /// Makes the arena `arena_bytes` bytes over all planes (rounded down to whole tokens, then
    /// to config::run_alignment): general area + safety pool, as stats().arena_bytes reports
    /// it. Only the end of the general area moves; the planes, the safety pool and every lease
    /// that lies below the new end stay where they are. Growing takes effect at once and costs
    /// nothing until leases commit the new tokens. Shrinking cuts free space at the end; live
    /// runs in the part cut are moved below the new end (their used tokens copied through the
    /// backing, plane by plane, as a migration copies; call data() again for those leases)
    /// when the bytes to copy fit in `copy_budget_bytes` and free extents below the new end
    /// hold them. No tokens beyond the new end stay committed.
    ///
    /// Errors, with nothing changed and every lease where it was:
    ///   invalid_request: more than capacity_tokens() tokens, or a general area smaller than
    ///                    one max bucket (the constructor's floor).
    ///   no_memory:       live runs are in the way and moving them would copy more than the
    ///                    budget or finds no room, or the backing could not commit their new
    ///                    place; freeable_bytes() says how far the arena can shrink now with
    ///                    the same budget.
    /// An exception from the backing's copy or commit (or std::bad_alloc) leaves the allocator
    /// as it was (strong guarantee). Cost without moves: O(blocks of the general area) to find
    /// its end, no system call.
    resize_result resize(std::size_t arena_bytes,
                         std::size_t copy_budget_bytes = 0) requires ResizableBacking<M> {
        auto& general = areas_[general_area];
        const std::uint32_t pool = areas_[safety_area].length();
        const std::uint32_t now = general.length();
        const std::size_t wanted = arena_bytes / cfg_.bytes_per_token;
        if (wanted > layout_.plane_tokens || align_down(std::uint32_t(wanted)) < pool ||
            align_down(std::uint32_t(wanted)) - pool < align_up(cfg_.max_tokens))
            return resize_result::refused(errc::invalid_request, stats_.arena_bytes, 0);
        const std::uint32_t end = align_down(std::uint32_t(wanted)) - pool;
        if (end == now) return resize_result::done(stats_.arena_bytes, 0);
        if (end < now && general.free_at_end() < now - end) {
            std::vector<run_move> moves;
            std::size_t copy = 0;
            if (!plan_shrink(end, moves, copy) || copy > copy_budget_bytes)
                return refuse_shrink(freeable_tokens(copy_budget_bytes));
            if (!move_runs(moves)) return refuse_shrink(general.free_at_end());
            stats_.resize_copied_bytes += copy;
            set_general_end(end);
            return resize_result::done(stats_.arena_bytes, copy);
        }
        set_general_end(end);  // may throw std::bad_alloc growing, before any change
        return resize_result::done(stats_.arena_bytes, 0);
    }

    /// Base address of `l`'s region in `plane` (0 when planes == 1). Token i of the lease is at
    /// `data(l, p) + i * config().bytes_per_plane_token()`. Converts to a null pointer with
    /// error() == errc::invalid_lease for a lease that is not live, invalid_request for a plane
    /// out of range.
    address<pointer> data(const lease& l, std::uint32_t plane = 0) const {
        const slot* s = find(l);
        if (!s) return reject_lease();
        if (plane >= cfg_.planes) return errc::invalid_request;
        return backing_.address(byte_offset(plane, areas_[s->area].offset(s->block)));
    }

    /// Where `l` lies and how full it is.
    result<odma::region> region_of(const lease& l) const {
        const slot* s = find(l);
        if (!s) return reject_lease();
        return region_of(*s);
    }

    /// True when `l` is a live lease of this allocator.
    bool is_live(const lease& l) const noexcept { return find(l) != nullptr; }

    /// Calls f(const lease&, const odma::region&) for every live lease, in slot order.
    template <class F>
    void for_each_live(F&& f) const {
        for (std::uint32_t i = 0; i < slots_.size(); ++i) {
            const slot& s = slots_[i];
            if (!s.live) continue;
            f(slots_.handle(i), region_of(s));
        }
    }

    /// Calls f(byte_offset, bytes) for the runs of `l`'s used tokens in `plane`, in token order:
    /// one run for a contiguous lease, at most config::max_runs (the same walk odma::paged gives
    /// block by block, so a cost model or a kernel launcher can treat both alike).
    ///
    /// errc::invalid_lease for a lease that is not live, invalid_request for a plane out of range.
    template <class F>
    result<void> for_each_run(const lease& l, std::uint32_t plane, F&& f) const {
        const slot* s = find(l);
        if (!s) return reject_lease();
        return detail::visit_runs(
            plane, cfg_.planes, cfg_.bytes_per_plane_token(),
            [&](auto&& piece) { walk(*s, 0, s->used, piece); },
            [this](std::uint32_t p, std::size_t token) { return byte_offset(p, token); }, f);
    }

    /// The block table of `l` for a paged attention kernel whose blocks hold
    /// `kernel_block_tokens` tokens: block b is tokens [b x K, (b + 1) x K) of every plane (byte
    /// offset byte_offset(plane, b x K)). Ids are consecutive inside each run, so a kernel that
    /// reads block tables reads a lease unchanged, and one that reads runs sees a few long
    /// ones. Writes the ids of the blocks that hold `l`'s used tokens, in token order, into
    /// `out` (at most out.size() of them) and returns how many there are.
    ///
    /// errc::invalid_lease for a lease that is not live; invalid_request unless K divides
    /// config::run_alignment (runs must start and end on block boundaries).
    result<std::size_t> block_table(const lease& l, std::uint32_t kernel_block_tokens,
                                    std::span<std::uint32_t> out) const {
        const slot* s = find(l);
        if (!s) return reject_lease();
        const std::uint32_t k = kernel_block_tokens;
        if (k == 0 || cfg_.run_alignment % k != 0) return refuse_request();
        std::size_t n = 0;
        walk(*s, 0, s->used, [&](std::size_t token, std::uint32_t count) {
            const auto first = static_cast<std::uint32_t>(token / k);
            const auto last = static_cast<std::uint32_t>((token + count - 1) / k);
            for (std::uint32_t b = first; b <= last; ++b, ++n)
                if (n < out.size()) out[n] = b;
        });
        return n;
    }

    /// Counters and current occupancy. Refreshes the derived figures (free space,
    /// fragmentation), which walks one TLSF bin: cheap, but not meant for every token.
    const odma::stats& stats() const {
        occupancy_.report(stats_);
        stats_.safety_pool_reserved_bytes = bytes(safety_reserved_tokens_);
        stats_.free_bytes = stats_.arena_bytes - stats_.reserved_bytes;
        const auto& general = areas_[general_area];
        const std::uint32_t largest = general.largest_free();
        stats_.largest_free_bytes = bytes(largest);
        stats_.external_fragmentation =
            general.free_units() ? 1.0 - double(largest) / double(general.free_units()) : 0.0;
        return stats_;
    }

    /// Verifies every invariant by walking the arena and the lease table: blocks tile both
    /// areas, free neighbours are coalesced, the general area starts at slot 0 and ends at or
    /// below the safety pool, which ends at the last slot, each run of a live lease is an
    /// allocated block inside its area (nothing beyond the arena's end), the runs tile their
    /// lease and no two overlap, and free + live == arena. O(n log n); for tests and debugging.
    /// errc::invariant_violation on the first breach.
    result<void> check() const {
        for (const auto& heap : areas_)
            if (auto r = heap.check(); !r) return r;
        const auto& general = areas_[general_area];
        const auto& pool = areas_[safety_area];
        if (general.begin() != 0 || general.length() > pool.begin() ||
            std::uint64_t(pool.begin()) + pool.length() != layout_.plane_tokens ||
            bytes(arena_tokens()) != stats_.arena_bytes)
            return errc::invariant_violation;

        struct extent {
            std::uint64_t begin, end;
        };
        std::vector<extent> extents;
        extents.reserve(occupancy_.live());
        std::uint64_t reserved = 0, used = 0, safety_reserved = 0;
        std::uint64_t area_reserved[2] = {0, 0};
        std::size_t live = 0;
        for (const slot& s : slots_.all()) {
            if (!s.live) continue;
            // The runs tile the lease: their sizes add up to its capacity, none is empty, and
            // the run list beside the slot holds exactly the runs after the first.
            const std::uint32_t index = slots_.index_of(s);
            const std::size_t extra = extra_runs_.count(index);
            if (s.runs == 0 || s.runs > cfg_.max_runs || extra != s.runs - 1u)
                return errc::invariant_violation;
            std::uint64_t capacity = 0;
            for (std::uint32_t k = 0; k < s.runs; ++k) {
                const run_ref r = run_at(s, k);
                if (r.area > safety_area) return errc::invariant_violation;
                const std::uint64_t begin = run_offset(r), size = run_size(r);
                const auto& area = areas_[r.area];
                if (size == 0 || begin < area.begin() ||
                    begin + size > area.begin() + area.length())
                    return errc::invariant_violation;
                extents.push_back({begin, begin + size});
                capacity += size;
                area_reserved[r.area] += size;
                if (r.area == safety_area) safety_reserved += size;
            }
            if (s.used > s.capacity || capacity != s.capacity ||
                (CommittingBacking<M> && std::uint32_t(s.committed) < s.used))
                return errc::invariant_violation;
            reserved += s.capacity;
            used += s.used;
            ++live;
        }
        // Independent of the heaps' own links: sort the runs and look for overlap.
        std::sort(extents.begin(), extents.end(),
                  [](const extent& a, const extent& b) { return a.begin < b.begin; });
        for (std::size_t i = 0; i < extents.size(); ++i) {
            if (extents[i].end > layout_.plane_tokens) return errc::invariant_violation;
            if (i && extents[i].begin < extents[i - 1].end) return errc::invariant_violation;
        }
        // Allocated blocks are exactly the live leases: nothing leaked, nothing double-counted.
        for (int a = 0; a < 2; ++a) {
            std::uint64_t allocated = 0;
            areas_[a].for_each_block([&](std::uint32_t, std::uint32_t size, bool is_free) {
                if (!is_free) allocated += size;
            });
            if (allocated != area_reserved[a] ||
                areas_[a].free_units() + area_reserved[a] != areas_[a].length())
                return errc::invariant_violation;
        }
        if (reserved != occupancy_.reserved_tokens() || used != occupancy_.used_tokens() ||
            safety_reserved != safety_reserved_tokens_ || live != occupancy_.live())
            return errc::invariant_violation;
        return {};
    }

    const odma::config& config() const noexcept { return cfg_; }
    P& predictor() noexcept { return predictor_; }
    const P& predictor() const noexcept { return predictor_; }
    B& bucket_policy() noexcept { return buckets_; }
    const B& bucket_policy() const noexcept { return buckets_; }
    M& backing() noexcept { return backing_; }
    const M& backing() const noexcept { return backing_; }

    /// Token slots per plane, fixed at construction: every whole token the backing holds. They
    /// are the plane stride (byte_offset()) and the most resize() can grow the arena to; the
    /// arena uses all of them unless config::arena_bytes or resize() made it smaller
    /// (stats().arena_bytes says how much it uses).
    std::uint32_t capacity_tokens() const noexcept { return layout_.plane_tokens; }
    /// Token slots of the safety pool: the top ones, [capacity_tokens() - safety_pool_tokens(),
    /// capacity_tokens()), after the general area (right after it while the arena is whole).
    std::uint32_t safety_pool_tokens() const noexcept { return areas_[safety_area].length(); }
    /// Byte offset in the backing of token `token` of plane `plane`.
    std::size_t byte_offset(std::uint32_t plane, std::size_t token) const noexcept {
        return layout_.byte_offset(plane, token);
    }

private:
    // Admits `r` (what the predictor and placement see) and stores `stored` with the lease (what
    // release() teaches the policies): the same request for admit(), the original one for
    // resume(), which also counts it as a resumption. `stored` has the same limit
    // (prompt + max_new_tokens) as `r`.
    result<lease> place(const request& r, const request& stored, bool resumed = false) {
        if (!detail::admissible(r, cfg_.max_tokens)) return refuse_request();
        const std::uint32_t limit = request_limit(r);
        const prediction pred = predictor_.predict(r);
        const std::uint32_t want_new =
            std::clamp<std::uint32_t>(pred.quantile(1.0 - cfg_.overflow_risk), 1, r.max_new_tokens);
        const std::uint32_t need = std::min<std::uint32_t>(limit, r.prompt_tokens + want_new);
        const std::uint32_t bucket = bucket_for(need);
        std::uint32_t capacity = align_up(std::max(need, std::min(bucket, limit)));

        const std::uint32_t index = slots_.reserve();  // may throw; nothing changed yet
        placement at = allocate(capacity, bucket >= buckets_.max_tokens());
        if (at.block == no_block && cfg_.max_runs > 1 && !demand_allows(need)) {
            ++stats_.rejected.admit_no_memory;
            ++stats_.demand_refusals;
            return errc::no_memory;
        }
        if (at.block == no_block && cfg_.max_runs > 1) {
            // Under pressure a lease that may grow by runs starts smaller: the largest free
            // extent, if it holds the prompt and one more token. It packs like a paged
            // allocator, which admits whenever the prompt fits, and grows by another run later.
            at = allocate_largest(general_area, r.prompt_tokens + 1u, capacity);
            if (at.block != no_block) capacity = areas_[general_area].size(at.block);
        }
        if (at.block == no_block && cfg_.max_runs > 1)
            return place_in_runs(index, r, stored, need, resumed);
        // Plain variables, not a structured binding: clang before 16 cannot capture those.
        const std::uint8_t area = at.area;
        const auto block = at.block;
        if (block == no_block) {
            ++stats_.rejected.admit_no_memory;
            return errc::no_memory;
        }
        const std::uint32_t offset = areas_[area].offset(block);
        if (!commit_or_free(area, block, offset, r.prompt_tokens)) {
            ++stats_.rejected.admit_no_memory;
            return errc::no_memory;
        }

        slot& s = slots_.take(index);
        s.req = stored;
        s.block = block;
        s.capacity = capacity;
        s.asked = need;
        s.used = r.prompt_tokens;
        s.committed = r.prompt_tokens;
        s.area = area;
        return admitted(s, resumed);
    }

    static constexpr std::uint8_t general_area = 0;
    static constexpr std::uint8_t safety_area = 1;
    static constexpr auto no_block = detail::extent_heap::no_block;
    static constexpr std::uint32_t no_slot = std::numeric_limits<std::uint32_t>::max();

    // Tokens committed in the backing. Only a CommittingBacking needs the count; for other
    // backings it is an empty stand-in that reads as 0 and ignores writes, so the slot stays
    // one 64-byte cache line.
    struct no_commit_count {
        constexpr operator std::uint32_t() const noexcept { return 0; }
        constexpr no_commit_count& operator=(std::uint32_t) noexcept { return *this; }
    };
    using commit_count = std::conditional_t<CommittingBacking<M>, std::uint32_t, no_commit_count>;

    // What every call reads comes first, so that find() and extend() usually touch one
    // cache line; the request, read only on release and on growth, comes last.
    struct slot {
        std::uint32_t generation = 1;  // 0 is never a live generation
        bool live = false;
        std::uint8_t area = general_area;  // of run 0
        std::uint8_t runs = 1;             // contiguous runs, at most config::max_runs
        detail::extent_heap::block_id block = no_block;  // run 0
        std::uint32_t capacity = 0;                      // tokens reserved
        std::uint32_t used = 0;                          // tokens held
        // A free slot links to the next free one; a live slot remembers the tokens admit()
        // asked for, before bucket rounding. One field serves both, so the slot stays 64 bytes.
        union {
            std::uint32_t next_free = no_slot;
            std::uint32_t asked;
        };
        [[no_unique_address]] commit_count committed{};
        request req{};
    };

    // config::demand_limit: may an admission under pressure that predicts `need` tokens go on?
    bool demand_allows(std::uint32_t need) const noexcept {
        if (cfg_.demand_limit <= 0.0) return true;
        return double(predicted_demand_ + need) <= cfg_.demand_limit * double(arena_tokens());
    }

    // Token slots the arena uses now: general area + safety pool.
    std::uint32_t arena_tokens() const noexcept {
        return areas_[general_area].length() + areas_[safety_area].length();
    }

    // Counts a lease placed by place() or place_in_runs() and hands out its handle.
    lease admitted(slot& s, bool resumed) {
        predicted_demand_ += s.asked;
        occupancy_.add_lease(s.capacity, s.used);
        ++stats_.admissions;
        stats_.resumptions += resumed;
        if (s.area == safety_area) {
            ++stats_.safety_pool_admissions;
            safety_reserved_tokens_ += s.capacity;
        }
        occupancy_.note_peaks(stats_);
        return slots_.handle(slots_.index_of(s));
    }

    // Admission when no extent of the general area holds the prompt: up to max_runs runs, the
    // largest extents first, holding the prompt and one more token (as a paged allocator
    // admits whenever the prompt fits anywhere). All or nothing.
    result<lease> place_in_runs(std::uint32_t index, const request& r, const request& stored,
                                std::uint32_t need, bool resumed) {
        extra_runs_.reserve(index, slots_.size(), cfg_.max_runs - 1u);  // may throw
        std::array<run_ref, max_lease_runs> runs{};
        std::uint32_t count = 0, capacity = 0;
        const std::uint32_t want = align_up(r.prompt_tokens + 1u);
        auto& heap = areas_[general_area];
        const auto undo = [&] {
            for (std::uint32_t k = 0; k < count; ++k)
                heap.free(runs[k].block);
        };
        try {
            while (capacity < want && count < cfg_.max_runs) {
                const std::uint32_t room =
                    std::min(align_down(heap.largest_free()), want - capacity);
                if (room == 0) break;
                const auto block = heap.allocate(room);
                if (block == no_block) break;
                runs[count++] = {general_area, block};
                capacity += room;
            }
        } catch (...) {
            undo();
            throw;
        }
        if (capacity < want) {
            undo();
            ++stats_.rejected.admit_no_memory;
            return errc::no_memory;
        }
        slot& s = slots_.take(index);
        s.req = stored;
        s.area = general_area;
        s.block = runs[0].block;
        s.runs = std::uint8_t(count);
        for (std::uint32_t k = 1; k < count; ++k)
            extra_runs_.push(index, runs[k]);
        s.capacity = capacity;
        s.asked = need;
        s.used = r.prompt_tokens;
        s.committed = 0;
        bool ok = false;
        try {
            ok = commit_through(s, r.prompt_tokens);
        } catch (...) {
            ok = false;
        }
        if (!ok) {
            discard_slot(s);
            ++stats_.rejected.admit_no_memory;
            return errc::no_memory;
        }
        ++stats_.admissions_in_runs;
        return admitted(s, resumed);
    }

    std::uint32_t request_limit(const request& r) const noexcept {
        return static_cast<std::uint32_t>(std::min<std::uint64_t>(
            cfg_.max_tokens, std::uint64_t(r.prompt_tokens) + r.max_new_tokens));
    }

    // A policy returning less than asked, or more than max_tokens, cannot break placement.
    std::uint32_t bucket_for(std::uint32_t tokens) const {
        return std::clamp<std::uint32_t>(buckets_.capacity_for(tokens), tokens, cfg_.max_tokens);
    }

    // Token counts rounded to config::run_alignment (no-ops at the default of 1). align_up
    // saturates at the largest aligned uint32_t.
    std::uint32_t align_up(std::uint32_t tokens) const noexcept {
        const std::uint32_t a = cfg_.run_alignment;
        if (a == 1) return tokens;
        const std::uint64_t up = (std::uint64_t(tokens) + a - 1) / a * a;
        return static_cast<std::uint32_t>(
            std::min<std::uint64_t>(up, std::numeric_limits<std::uint32_t>::max() / a * a));
    }
    std::uint32_t align_down(std::uint32_t tokens) const noexcept {
        const std::uint32_t a = cfg_.run_alignment;
        return a == 1 ? tokens : tokens / a * a;
    }

    std::size_t bytes(std::uint64_t tokens) const noexcept {
        return std::size_t(tokens) * cfg_.bytes_per_token;
    }

    slot* find(const lease& l) noexcept { return slots_.find(l); }
    const slot* find(const lease& l) const noexcept { return slots_.find(l); }

    // Run k of a lease: run 0 lives in the slot, the others in extra_runs_.
    using run_ref = detail::run_ref;
    run_ref run_at(const slot& s, std::uint32_t k) const noexcept {
        return k == 0 ? run_ref{s.area, s.block} : extra_runs_.at(slots_.index_of(s), k - 1);
    }
    std::uint32_t run_offset(run_ref r) const noexcept { return areas_[r.area].offset(r.block); }
    std::uint32_t run_size(run_ref r) const noexcept { return areas_[r.area].size(r.block); }

    // Calls f(arena token, count) for the lease's tokens [from, to), run by run in token order
    // (detail::walk_runs; `last_extra` as there).
    template <class F>
    void walk(const slot& s, std::uint32_t from, std::uint32_t to, F&& f,
              std::uint32_t last_extra = 0) const {
        detail::walk_runs(
            s.runs, [&](std::uint32_t k) { return run_at(s, k); },
            [&](run_ref r) { return run_size(r); }, [&](run_ref r) { return run_offset(r); }, from,
            to, std::forward<F>(f), last_extra);
    }

    odma::region region_of(const slot& s) const noexcept {
        return odma::region{areas_[s.area].offset(s.block), s.capacity, s.used,
                            s.area == safety_area, s.runs};
    }

    errc refuse_request() const noexcept { return detail::refused_request(stats_); }
    errc reject_lease() const noexcept { return detail::refused_lease(stats_); }
    errc extend_no_memory() noexcept {
        ++stats_.rejected.extend_no_memory;
        return errc::no_memory;
    }

    // Decommits and frees every run of `s` (its slot fields are the caller's to reset).
    void free_runs(slot& s) noexcept {
        decommit_lease(s);
        for (std::uint32_t k = 0; k < s.runs; ++k) {
            const run_ref r = run_at(s, k);
            if (r.area == safety_area) safety_reserved_tokens_ -= run_size(r);
            areas_[r.area].free(r.block);
        }
        if (s.runs > 1) extra_runs_.clear(slots_.index_of(s));
    }

    // Frees a live lease's memory and slot, and counts the release (release() and abandon()).
    void free_slot(slot& s) noexcept {
        ++stats_.releases;
        predicted_demand_ -= s.asked;
        occupancy_.remove_lease(s.capacity, s.used);
        discard_slot(s);
    }

    // Frees every run of `s`, clears its fields and hands the slot back to the table: the end
    // of a lease, and the undo of an admission that could not commit its prompt.
    void discard_slot(slot& s) noexcept {
        free_runs(s);
        s.req = request{};
        s.block = no_block;
        s.runs = 1;
        s.capacity = s.used = s.committed = 0;
        slots_.release(s);
    }

    // Where a new region goes: the general area when it has room, else the safety pool when
    // `may_use_pool`. Admissions may use the pool only for largest-bucket requests (the pool is
    // for requests that outgrow their prediction, and a request that asks for the largest
    // bucket cannot be under-predicted); a growing lease always may, since outgrowing its
    // bucket is what the pool is for. Returns the area and block, or no_block.
    struct placement {
        std::uint8_t area;
        detail::extent_heap::block_id block;
    };
    placement allocate(std::uint32_t tokens, bool may_use_pool) {
        const auto block = areas_[general_area].allocate(tokens);
        if (block != no_block || !may_use_pool) return {general_area, block};
        return {safety_area, areas_[safety_area].allocate(tokens)};
    }

    // The largest free extent of `area`, cut to at most `cap` tokens (whole alignment units),
    // if that holds at least `need` tokens; no_block otherwise. Admissions under pressure take
    // it in the general area, growing leases in either (allocate_between).
    placement allocate_largest(std::uint8_t area, std::uint32_t need, std::uint32_t cap) {
        const std::uint32_t room = align_down(std::min(areas_[area].largest_free(), cap));
        if (room < need || room == 0) return {area, no_block};
        return {area, areas_[area].allocate(room)};
    }

    // A run for a growing lease: `want` tokens when an extent holds them, else the largest
    // extent that holds at least `need` (a run just large enough would only bring the next
    // growth sooner); the general area first, then the safety pool. no_block when neither has
    // `need` contiguous tokens.
    placement allocate_between(std::uint32_t need, std::uint32_t want) {
        need = align_up(need);
        placement at = allocate(want, true);
        for (const std::uint8_t a : {general_area, safety_area}) {
            if (at.block != no_block) break;
            at = allocate_largest(a, need, want);
        }
        return at;
    }

    // Soft reservations (config::lend_reserved): every live lease but `except` hands the unused
    // tail of its last run back to that run's heap, where it merges with free space after it.
    // O(live leases); only calls that found no room come here. Returns the tokens handed back.
    std::uint64_t lend_tails(const slot* except) {
        std::uint64_t lent = 0;
        for (slot& s : slots_.all()) {
            if (!s.live || &s == except || s.used >= s.capacity) continue;
            const run_ref last = run_at(s, s.runs - 1u);
            const std::uint32_t size = run_size(last);
            // Whole alignment units only, and the run keeps at least one.
            const std::uint32_t tail =
                align_down(std::min(s.capacity - s.used, size - cfg_.run_alignment));
            if (tail == 0) continue;
            const std::uint32_t kept = s.capacity - tail;
            if constexpr (CommittingBacking<M>) {
                if (s.committed > kept) {
                    walk(s, kept, s.committed, [&](std::size_t at, std::uint32_t n) {
                        decommit_tokens(std::uint32_t(at), n);
                    });
                    s.committed = kept;
                }
            }
            areas_[last.area].shrink(last.block, size - tail);  // may throw before any change
            occupancy_.add_reserved(-std::int64_t(tail));
            if (last.area == safety_area) safety_reserved_tokens_ -= tail;
            s.capacity = kept;
            lent += tail;
        }
        ++stats_.lending_passes;
        stats_.lent_bytes += lent * cfg_.bytes_per_token;
        return lent;
    }

    // In place, then (while the lease has fewer than max_runs runs) by another run: the two
    // ways to grow that copy nothing. no_memory when neither has room.
    result<growth> grow_without_copy(slot& s, std::uint32_t total_tokens, std::uint32_t target) {
        // In place: the last run takes the free space after it, up to the target capacity.
        const run_ref last = run_at(s, s.runs - 1u);
        detail::extent_heap& heap = areas_[last.area];
        const std::uint32_t room = heap.room_after(last.block);
        if (std::uint64_t(s.capacity) + room >= total_tokens) {
            const std::uint32_t grown =
                std::min<std::uint64_t>(target, std::uint64_t(s.capacity) + room);
            if (!commit_through(s, total_tokens, grown - s.capacity)) return errc::no_memory;
            heap.grow(last.block, heap.size(last.block) + (grown - s.capacity));
            add_capacity(last.area, grown - s.capacity);
            s.capacity = grown;
            set_used(s, total_tokens);
            ++stats_.in_place_growths;
            return growth::in_place;
        }
        // Another run after the last one, while the lease has fewer than max_runs: no copy.
        if (s.runs < cfg_.max_runs) return append_run(s, total_tokens, target);
        return errc::no_memory;
    }

    // Grows `s` by a new run after its last one, for the tokens beyond its capacity up to
    // `target` (or, when no extent is that large, at least up to `total_tokens`). Nothing is
    // copied. Returns growth::appended, or no_memory with the lease unchanged.
    result<growth> append_run(slot& s, std::uint32_t total_tokens, std::uint32_t target) {
        const std::uint32_t index = slots_.index_of(s);
        extra_runs_.reserve(index, slots_.size(), cfg_.max_runs - 1u);  // may throw
        const placement at = allocate_between(total_tokens - s.capacity, target - s.capacity);
        // Plain variables, not a structured binding: clang before 16 cannot capture those.
        const std::uint8_t area = at.area;
        const auto block = at.block;
        if (block == no_block) return errc::no_memory;
        // The existing runs are committed to their end, then the new run's first tokens: all
        // or nothing, so a failure leaves the lease exactly as it was.
        const std::uint32_t committed_before = s.committed;
        const auto undo = [&] {
            areas_[area].free(block);
            if constexpr (CommittingBacking<M>) {
                walk(s, committed_before, s.committed,
                     [&](std::size_t t, std::uint32_t n) { decommit_tokens(std::uint32_t(t), n); });
                s.committed = committed_before;
            }
        };
        bool ok = false;
        try {
            ok = commit_through(s, s.capacity) &&
                 commit_tokens(areas_[area].offset(block), 0, total_tokens - s.capacity);
        } catch (...) {
            undo();
            throw;
        }
        if (!ok) {
            undo();
            return errc::no_memory;
        }
        extra_runs_.push(index, {area, block});
        ++s.runs;
        const std::uint32_t size = areas_[area].size(block);
        add_capacity(area, size);
        s.capacity += size;
        s.committed = total_tokens;
        set_used(s, total_tokens);
        ++stats_.appended_runs;
        if (area == safety_area) ++stats_.safety_pool_migrations;
        return growth::appended;
    }

    // Moves every run of `s` into one new run of `target` tokens (copying the tokens it holds,
    // run by run and plane by plane) and frees the old runs: the lease is contiguous again.
    result<growth> migrate(slot& s, std::uint32_t total_tokens, std::uint32_t target) {
        const placement at = allocate_between(total_tokens, target);
        const std::uint8_t area = at.area;
        const auto block = at.block;
        if (block == no_block) return errc::no_memory;
        target = areas_[area].size(block);
        const std::uint32_t to = areas_[area].offset(block);
        if (!commit_or_free(area, block, to, total_tokens)) return errc::no_memory;
        try {
            const std::size_t bpt = cfg_.bytes_per_plane_token();
            std::size_t at = to;
            walk(s, 0, s.used, [&](std::size_t from, std::uint32_t n) {
                for (std::uint32_t p = 0; p < cfg_.planes; ++p)
                    backing_.copy(byte_offset(p, at), byte_offset(p, from), std::size_t(n) * bpt);
                at += n;
            });
        } catch (...) {
            decommit_tokens(to, total_tokens);
            areas_[area].free(block);
            throw;
        }
        free_runs(s);

        stats_.migrated_bytes += std::uint64_t(s.used) * cfg_.bytes_per_token;
        ++stats_.migrations;
        if (area == safety_area) ++stats_.safety_pool_migrations;
        occupancy_.add_reserved(std::int64_t(target) - std::int64_t(s.capacity));
        if (area == safety_area) safety_reserved_tokens_ += target;
        s.block = block;
        s.area = area;
        s.runs = 1;
        s.capacity = target;
        s.committed = total_tokens;
        set_used(s, total_tokens);
        return growth::migrated;
    }

    // --- resize ---------------------------------------------------------------------------

    // One run of a live lease that a shrink moves below the new end: where it is, where the
    // plan puts it, and the lease's tokens in it that are committed and that hold data.
    struct run_move {
        slot* owner;
        std::uint32_t run;  // index of the run in its lease
        detail::extent_heap::block_id from;
        std::uint32_t from_offset, size;
        std::uint32_t to_offset = 0;
        detail::extent_heap::block_id to = no_block;
        std::uint32_t committed, held;
    };

    // Plans moving every live run that reaches past `end` (tokens of the general area) into
    // free extents below it, largest runs first, each into the smallest extent that holds it.
    // Fills `moves` and `copy` (the bytes the moves copy); false when some run finds no room.
    // Changes nothing else; O(live runs x free extents + blocks).
    bool plan_shrink(std::uint32_t end, std::vector<run_move>& moves, std::size_t& copy) {
        moves.clear();
        copy = 0;
        for (slot& s : slots_.all()) {
            if (!s.live) continue;
            std::uint32_t start = 0;  // the lease's first token in run k
            for (std::uint32_t k = 0; k < s.runs; ++k) {
                const run_ref r = run_at(s, k);
                const std::uint32_t offset = run_offset(r), size = run_size(r);
                const auto part = [&](std::uint32_t tokens) {
                    return std::min(size, tokens > start ? tokens - start : 0u);
                };
                if (r.area == general_area && offset + size > end)
                    moves.push_back({&s, k, r.block, offset, size, 0, no_block,
                                     part(std::uint32_t(s.committed)), part(s.used)});
                start += size;
            }
        }
        // Free extents below the new end as (size, offset), ascending: best fit is a binary
        // search. A vector, not a multiset: resize is rare and <set> would weigh on every
        // includer of the umbrella header.
        std::vector<std::pair<std::uint32_t, std::uint32_t>> room;
        areas_[general_area].for_each_block(
            [&](std::uint32_t offset, std::uint32_t size, bool is_free) {
                if (is_free && offset < end)
                    room.emplace_back(std::min(size, end - offset), offset);
            });
        std::sort(room.begin(), room.end());
        std::sort(moves.begin(), moves.end(), [](const run_move& a, const run_move& b) {
            return a.size != b.size ? a.size > b.size : a.from_offset < b.from_offset;
        });
        for (run_move& m : moves) {
            const auto fit = std::lower_bound(room.begin(), room.end(),
                                              std::pair<std::uint32_t, std::uint32_t>{m.size, 0});
            if (fit == room.end()) return false;
            m.to_offset = fit->second;
            const std::pair<std::uint32_t, std::uint32_t> rest{fit->first - m.size,
                                                               fit->second + m.size};
            room.erase(fit);
            if (rest.first > 0) room.insert(std::lower_bound(room.begin(), room.end(), rest), rest);
            copy += bytes(m.held);
        }
        return true;
    }

    // Carries out a plan: every run gets its new place, committed and filled, while the old
    // places stay untouched; only then do the leases switch over and the old places go. All or
    // nothing: false (a commit refused) or an exception leaves every lease where it was.
    bool move_runs(std::vector<run_move>& moves) {
        auto& heap = areas_[general_area];
        std::size_t ready = 0;  // moves whose new place is allocated and committed
        const auto undo = [&] {
            for (std::size_t i = 0; i < ready; ++i) {
                decommit_tokens(moves[i].to_offset, moves[i].committed);
                heap.free(moves[i].to);
            }
        };
        try {
            const std::size_t bpt = cfg_.bytes_per_plane_token();
            for (run_move& m : moves) {
                m.to = heap.allocate_at(m.to_offset, m.size);
                if (m.to == no_block ||
                    !commit_or_free(general_area, m.to, m.to_offset, m.committed)) {
                    undo();
                    return false;
                }
                ++ready;
                for (std::uint32_t p = 0; p < cfg_.planes; ++p)
                    backing_.copy(byte_offset(p, m.to_offset), byte_offset(p, m.from_offset),
                                  std::size_t(m.held) * bpt);
            }
        } catch (...) {
            undo();
            throw;
        }
        for (const run_move& m : moves) {
            slot& s = *m.owner;
            if (m.run == 0)
                s.block = m.to;
            else
                extra_runs_.replace(slots_.index_of(s), m.run - 1u, run_ref{general_area, m.to});
            decommit_tokens(m.from_offset, m.committed);
            heap.free(m.from);
        }
        return true;
    }

    // The general area ends at `end` from now on (growing may throw std::bad_alloc first).
    void set_general_end(std::uint32_t end) {
        if (!areas_[general_area].set_length(end)) return;  // unreachable: the caller freed it
        stats_.arena_bytes = bytes(arena_tokens());
        ++stats_.resizes;
    }

    // The most the general area can shrink now, in tokens, by a resize within `budget`: a
    // binary search over new ends for the lowest one whose moves fit the budget.
    std::uint32_t freeable_tokens(std::size_t budget) {
        const std::uint32_t now = areas_[general_area].length();
        std::vector<run_move> moves;
        const auto fits = [&](std::uint32_t end) {
            if (now - end <= areas_[general_area].free_at_end()) return true;
            std::size_t copy = 0;
            return plan_shrink(end, moves, copy) && copy <= budget;
        };
        std::uint32_t lo = align_up(cfg_.max_tokens), ok = now;  // fits(ok) holds
        if (fits(lo)) return now - lo;
        while (ok - lo > cfg_.run_alignment) {  // !fits(lo)
            const std::uint32_t mid = align_down(lo + (ok - lo) / 2);
            (fits(mid) ? ok : lo) = mid;
        }
        return now - ok;
    }

    // no_memory, with `freeable` tokens (at most down to the constructor's floor) to report.
    resize_result refuse_shrink(std::uint32_t freeable) const noexcept {
        const std::uint32_t room = areas_[general_area].length() - align_up(cfg_.max_tokens);
        return resize_result::refused(errc::no_memory, stats_.arena_bytes,
                                      bytes(align_down(std::min(freeable, room))));
    }

    void add_capacity(std::uint8_t area, std::uint32_t extra) noexcept {
        occupancy_.add_reserved(extra);
        if (area == safety_area) safety_reserved_tokens_ += extra;
    }

    void set_used(slot& s, std::uint32_t tokens) noexcept {
        occupancy_.set_used(s.used, tokens);
        s.used = tokens;
        occupancy_.note_peaks(stats_);
    }

    // Commits tokens [from, to) of the region at `offset` in every plane, or none of them.
    bool commit_tokens(std::uint32_t offset, std::uint32_t from, std::uint32_t to) {
        if (to <= from) return true;
        return detail::plane_commit<M>::commit(backing_, layout_, std::size_t(offset) + from,
                                               to - from);
    }

    // Makes the first `tokens` tokens of live slot `s` committed and records it; `last_extra`
    // as in walk(). All or nothing: a commit that fails (false) or throws undoes the pieces
    // committed before it. Plain backings skip even the bookkeeping: extend() on them does only
    // what placement needs.
    bool commit_through(slot& s, std::uint32_t tokens, std::uint32_t last_extra = 0) {
        if constexpr (CommittingBacking<M>) {
            const std::uint32_t from = s.committed;
            if (tokens <= from) return true;
            if (s.runs == 1) {
                if (!commit_tokens(areas_[s.area].offset(s.block), from, tokens)) return false;
            } else if (!detail::plane_commit<M>::commit_all(backing_, layout_, [&](auto&& f) {
                           walk(s, from, tokens, f, last_extra);
                       })) {
                return false;
            }
            s.committed = tokens;
        } else {
            (void)s, (void)tokens, (void)last_extra;
        }
        return true;
    }

    // Commits the first `tokens` tokens of a block just allocated in `area`; if that fails or
    // throws, the block goes back to the heap, so nothing leaks.
    bool commit_or_free(std::uint8_t area, detail::extent_heap::block_id block,
                        std::uint32_t offset, std::uint32_t tokens) {
        bool ok = false;
        try {
            ok = commit_tokens(offset, 0, tokens);
        } catch (...) {
            areas_[area].free(block);
            throw;
        }
        if (!ok) areas_[area].free(block);
        return ok;
    }

    void decommit_tokens(std::uint32_t offset, std::uint32_t tokens) noexcept {
        detail::plane_commit<M>::decommit(backing_, layout_, offset, tokens);
    }

    // Decommits every committed token of `s`, run by run.
    void decommit_lease(const slot& s) noexcept {
        if constexpr (CommittingBacking<M>) {
            if (s.runs == 1) return decommit_tokens(areas_[s.area].offset(s.block), s.committed);
            walk(s, 0, s.committed,
                 [&](std::size_t at, std::uint32_t n) { decommit_tokens(std::uint32_t(at), n); });
        } else {
            (void)s;
        }
    }

    odma::config cfg_;
    [[no_unique_address]] P predictor_;
    [[no_unique_address]] B buckets_;
    [[no_unique_address]] M backing_;
    detail::plane_layout layout_;
    detail::extent_heap areas_[2];
    detail::slot_table<slot> slots_;
    detail::occupancy occupancy_;
    std::uint64_t safety_reserved_tokens_ = 0;
    std::uint64_t predicted_demand_ = 0;  // sum of slot::asked over live leases
    detail::extra_runs extra_runs_;
    mutable odma::stats stats_;
};

}  // namespace odma
