// odma/detail/run_list.hpp - the runs of leases that occupy several (config::max_runs > 1), and
// walking a range of a lease's tokens run by run.
#pragma once

#include <odma/detail/extent_heap.hpp>
#include <odma/errc.hpp>
#include <odma/result.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace odma::detail {

/// One run of a lease: a block of one of the allocator's areas (general area or safety pool).
struct run_ref {
    std::uint8_t area;
    extent_heap::block_id block;
};

/// The runs after the first of every lease, by slot index, in token order. A lease's first run
/// lives in its slot; this table is grown only when a lease first gets a second run, so
/// strictly contiguous configurations never touch it.
class extra_runs {
public:
    /// Makes room for `count` extra runs of lease `index` in a table of `slots` slots. Throws
    /// only std::bad_alloc, before anything visible changes; push() then cannot throw.
    void reserve(std::uint32_t index, std::size_t slots, std::uint32_t count) {
        if (lists_.size() <= index) lists_.resize(slots);
        lists_[index].reserve(count);
    }
    /// Extra runs lease `index` has.
    std::size_t count(std::uint32_t index) const noexcept {
        return index < lists_.size() ? lists_[index].size() : 0;
    }
    /// Extra run `k` (0 = the lease's second run) of lease `index`.
    run_ref at(std::uint32_t index, std::uint32_t k) const noexcept { return lists_[index][k]; }
    /// Adds a run after the last one; reserve() made room for it.
    void push(std::uint32_t index, run_ref r) noexcept { lists_[index].push_back(r); }
    /// Puts run `r` in place of extra run `k` of lease `index` (a run moved elsewhere).
    void replace(std::uint32_t index, std::uint32_t k, run_ref r) noexcept { lists_[index][k] = r; }
    /// Forgets lease `index`'s extra runs (the list keeps its capacity for the next tenant).
    void clear(std::uint32_t index) noexcept { lists_[index].clear(); }

private:
    std::vector<std::vector<run_ref>> lists_;
};

/// Calls f(first unit, units) for the units [from, to) of a lease of `runs` runs, run by run in
/// token order; run_at(k) gives run k and size_of(run) its units. `last_extra` units right
/// after the last run count as part of it: the room an in-place growth is about to take.
template <class RunAt, class SizeOf, class OffsetOf, class F>
void walk_runs(std::uint32_t runs, RunAt&& run_at, SizeOf&& size_of, OffsetOf&& offset_of,
               std::uint32_t from, std::uint32_t to, F&& f, std::uint32_t last_extra = 0) {
    std::uint32_t start = 0;
    for (std::uint32_t k = 0; k < runs && start < to; ++k) {
        const run_ref r = run_at(k);
        const std::uint32_t size = size_of(r) + (k + 1u == runs ? last_extra : 0u);
        const std::uint32_t lo = std::max(from, start);
        const std::uint32_t hi = std::min<std::uint64_t>(to, std::uint64_t(start) + size);
        if (lo < hi) f(std::size_t(offset_of(r)) + (lo - start), hi - lo);
        start += size;
    }
}

/// for_each_run of both allocators, once: checks the plane, then turns each piece of a lease that
/// pieces(g) hands to g(first token slot, tokens), in token order, into f(byte offset, bytes)
/// through byte_offset(plane, token slot). errc::invalid_request for a plane out of range.
template <class Pieces, class ByteOffset, class F>
result<void> visit_runs(std::uint32_t plane, std::uint32_t planes, std::size_t bytes_per_token,
                        Pieces&& pieces, ByteOffset&& byte_offset, F&& f) {
    if (plane >= planes) return errc::invalid_request;
    pieces([&](std::size_t token, std::uint32_t n) {
        f(byte_offset(plane, token), std::size_t(n) * bytes_per_token);
    });
    return {};
}

}  // namespace odma::detail
