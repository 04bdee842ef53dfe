// odma/detail/extent_heap.hpp - O(1) placement of contiguous extents in a range of units.
//
// A two-level segregated-fit heap (TLSF: Masmano et al., ECRTS 2004) whose block headers live
// outside the managed range. The range is abstract units (the allocator uses tokens), so the
// same code places regions in host RAM, device memory or a virtual reservation, and never
// touches the memory itself.
//
// Vocabulary:
//   block  - a maximal run of units that is either wholly free or wholly allocated; blocks tile
//            the range in address order (prev/next "physical" links).
//   bin    - a free list of blocks whose sizes share a (first level, second level) class:
//            the first level is the power of two, the second level splits it in 16.
//
// Invariants (checked by check()): blocks tile [begin, begin+length) without gap or overlap;
// no two free blocks are neighbours (frees coalesce); every free block is in exactly the bin
// of its size; a bin's bitmap bit is set iff the bin is non-empty.
#pragma once

#include <odma/errc.hpp>
#include <odma/result.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace odma::detail {

class extent_heap {
public:
    using unit = std::uint32_t;
    using block_id = std::uint32_t;
    static constexpr block_id no_block = std::numeric_limits<block_id>::max();

    extent_heap() = default;

    /// Manages units [begin, begin + length). length may be 0 (an empty heap).
    extent_heap(unit begin, unit length) : begin_(begin), length_(length) {
        free_bitmap_.fill(0);
        for (auto& row : bins_)
            row.fill(no_block);
        if (length_ > 0) {
            const block_id b = new_node();
            nodes_[b] = node{begin_, length_, no_block, no_block, no_block, no_block, true, true};
            insert_free(b);
            free_units_ = length_;
        }
    }

    unit begin() const noexcept { return begin_; }
    unit length() const noexcept { return length_; }
    unit free_units() const noexcept { return free_units_; }
    unit offset(block_id b) const noexcept { return nodes_[b].offset; }
    unit size(block_id b) const noexcept { return nodes_[b].size; }

    /// Finds a free extent of at least `n` units, carves `n` from its low end and returns the
    /// allocated block, or no_block when no free extent has n units. O(1) except when the
    /// heap is nearly full (see find_fit).
    /// Throws only std::bad_alloc (from bookkeeping growth), before changing any state.
    block_id allocate(unit n) {
        if (n == 0 || n > free_units_) return no_block;
        reserve_nodes(1);
        block_id b = find_fit(n);
        if (b == no_block) return no_block;
        remove_free(b);
        split(b, n);
        nodes_[b].free = false;
        free_units_ -= n;
        return b;
    }

    /// Grows allocated block `b` to `n` units by taking the free block right after it.
    /// Returns false, changing nothing, when that neighbour is missing or too small.
    bool grow(block_id b, unit n) {
        node& cur = nodes_[b];
        if (n <= cur.size) return true;
        const block_id nx = cur.next;
        if (nx == no_block || !nodes_[nx].free) return false;
        const unit need = n - cur.size;
        if (nodes_[nx].size < need) return false;
        remove_free(nx);
        if (nodes_[nx].size == need) {
            cur.next = nodes_[nx].next;
            if (cur.next != no_block) nodes_[cur.next].prev = b;
            release_node(nx);
        } else {
            nodes_[nx].offset += need;
            nodes_[nx].size -= need;
            insert_free(nx);
        }
        cur.size = n;
        free_units_ -= need;
        return true;
    }

    /// Shrinks allocated block `b` to `n` units (0 < n <= size): the units after them become
    /// free, merged with a free block right after `b`. Throws only std::bad_alloc (from
    /// bookkeeping growth), before changing any state.
    void shrink(block_id b, unit n) {
        if (n == 0 || n >= nodes_[b].size) return;
        reserve_nodes(1);
        const unit cut = nodes_[b].size - n;
        const block_id nx = nodes_[b].next;
        if (nx != no_block && nodes_[nx].free) {
            remove_free(nx);
            nodes_[nx].offset -= cut;
            nodes_[nx].size += cut;
            insert_free(nx);
            nodes_[b].size = n;
        } else {
            split(b, n);  // the cut becomes a free block after b
        }
        free_units_ += cut;
    }

    /// Allocates exactly units [offset, offset + n), which must lie inside one free block;
    /// returns no_block, changing nothing, when they do not. O(blocks): for placements planned
    /// ahead (allocator::resize() moving runs below a new end), not for the hot path.
    /// Throws only std::bad_alloc (from bookkeeping growth), before changing any state.
    block_id allocate_at(unit offset, unit n) {
        if (n == 0) return no_block;
        const block_id b = free_block_holding(offset);
        if (b == no_block || nodes_[b].offset + nodes_[b].size - offset < n) return no_block;
        reserve_nodes(2);
        remove_free(b);
        block_id at = b;
        if (const unit head = offset - nodes_[b].offset; head > 0) {
            split(b, head);  // [b.offset, offset) stays free
            insert_free(b);
            at = nodes_[b].next;
            remove_free(at);
        }
        split(at, n);
        nodes_[at].free = false;
        free_units_ -= n;
        return at;
    }

    /// Free units at the high end of the range: what set_length() can cut without anything
    /// being freed first. O(blocks).
    unit free_at_end() const noexcept {
        const block_id b = last_block();
        return b != no_block && nodes_[b].free ? nodes_[b].size : 0;
    }

    /// Moves the high end of the range so that it holds `length` units. Growing adds free
    /// units (merged with a free block at the old end) and always succeeds; shrinking succeeds
    /// only when the units cut are free, and otherwise returns false and changes nothing.
    /// Throws only std::bad_alloc (growing past an allocated last block), before changing any
    /// state; shrinking never throws.
    bool set_length(unit length) {
        if (length == length_) return true;
        const block_id last = last_block();
        const bool last_free = last != no_block && nodes_[last].free;
        if (length > length_) {
            const unit extra = length - length_;
            if (last_free) {
                remove_free(last);
                nodes_[last].size += extra;
                insert_free(last);
            } else {
                reserve_nodes(1);
                const block_id b = new_node();
                nodes_[b] =
                    node{begin_ + length_, extra, last, no_block, no_block, no_block, true, true};
                if (last != no_block) nodes_[last].next = b;
                insert_free(b);
            }
            free_units_ += extra;
        } else {
            const unit cut = length_ - length;
            if (!last_free || nodes_[last].size < cut) return false;
            remove_free(last);
            if (nodes_[last].size == cut) {
                if (nodes_[last].prev != no_block) nodes_[nodes_[last].prev].next = no_block;
                release_node(last);
            } else {
                nodes_[last].size -= cut;
                insert_free(last);
            }
            free_units_ -= cut;
        }
        length_ = length;
        return true;
    }

    /// Units of free space directly after allocated block `b` (what grow() could take).
    unit room_after(block_id b) const noexcept {
        const block_id nx = nodes_[b].next;
        return (nx != no_block && nodes_[nx].free) ? nodes_[nx].size : 0;
    }

    /// Returns allocated block `b` to the heap, merging it with free neighbours.
    void free(block_id b) noexcept {
        free_units_ += nodes_[b].size;
        nodes_[b].free = true;
        const block_id pv = nodes_[b].prev;
        if (pv != no_block && nodes_[pv].free) {
            remove_free(pv);
            absorb_next(pv);  // pv swallows b
            b = pv;
        }
        const block_id nx = nodes_[b].next;
        if (nx != no_block && nodes_[nx].free) {
            remove_free(nx);
            absorb_next(b);
        }
        insert_free(b);
    }

    /// Size of the largest free extent. O(entries of the largest non-empty bin).
    unit largest_free() const noexcept {
        for (int fl = first_levels - 1; fl >= 0; --fl) {
            std::uint32_t bits = free_bitmap_[fl];
            if (bits == 0) continue;
            const int sl = 31 - std::countl_zero(bits);
            unit best = 0;
            for (block_id b = bins_[fl][sl]; b != no_block; b = nodes_[b].next_free)
                if (nodes_[b].size > best) best = nodes_[b].size;
            return best;
        }
        return 0;
    }

    /// Walks every block and bin; errc::invariant_violation if any invariant is broken.
    result<void> check() const {
        // Find the first block (the one with no predecessor) among live nodes.
        unit expect = begin_;
        unit free_seen = 0;
        std::size_t blocks = 0;
        std::size_t free_blocks = 0;
        block_id first = no_block;
        for (block_id i = 0; i < nodes_.size(); ++i)
            if (nodes_[i].in_use && nodes_[i].prev == no_block) {
                if (first != no_block) return errc::invariant_violation;  // two chain heads
                first = i;
            }
        if (length_ == 0) return first == no_block ? result<void>{} : errc::invariant_violation;
        bool prev_free = false;
        for (block_id b = first, pv = no_block; b != no_block; pv = b, b = nodes_[b].next) {
            const node& n = nodes_[b];
            if (!n.in_use || n.prev != pv || n.offset != expect || n.size == 0)
                return errc::invariant_violation;
            if (n.free) {
                if (prev_free) return errc::invariant_violation;  // missed coalescing
                free_seen += n.size;
                ++free_blocks;
            }
            prev_free = n.free;
            expect += n.size;
            if (++blocks > nodes_.size()) return errc::invariant_violation;  // cycle
        }
        if (expect != begin_ + length_ || free_seen != free_units_)
            return errc::invariant_violation;
        std::size_t live = 0;
        for (const node& n : nodes_)
            live += n.in_use ? 1 : 0;
        if (live != blocks) return errc::invariant_violation;  // a node fell off the chain
        // Every bin entry is a free block of the bin's class, and the bins hold exactly as many
        // entries as the chain has free blocks: so each free block is binned exactly once.
        std::size_t binned = 0;
        for (int fl = 0; fl < first_levels; ++fl) {
            if (((top_bitmap_ >> fl) & 1u) != (free_bitmap_[fl] != 0))
                return errc::invariant_violation;
            for (int sl = 0; sl < second_levels; ++sl) {
                const bool bit = (free_bitmap_[fl] >> sl) & 1u;
                if (bit != (bins_[fl][sl] != no_block)) return errc::invariant_violation;
                for (block_id b = bins_[fl][sl], pv = no_block; b != no_block;
                     pv = b, b = nodes_[b].next_free) {
                    const auto [f, s] = mapping(nodes_[b].size);
                    if (!nodes_[b].in_use || !nodes_[b].free || f != fl || s != sl ||
                        nodes_[b].prev_free != pv)
                        return errc::invariant_violation;
                    if (++binned > free_blocks) return errc::invariant_violation;
                }
            }
        }
        if (binned != free_blocks) return errc::invariant_violation;
        return {};
    }

    /// Calls f(offset, size, is_free) for every block in address order.
    template <class F>
    void for_each_block(F&& f) const {
        for (block_id i = 0; i < nodes_.size(); ++i)
            if (nodes_[i].in_use && nodes_[i].prev == no_block) {
                for (block_id b = i; b != no_block; b = nodes_[b].next)
                    f(nodes_[b].offset, nodes_[b].size, nodes_[b].free);
                return;
            }
    }

private:
    // 16 second-level bins per power of two bound the internal rounding of a search to 1/16.
    static constexpr int sl_bits = 4;
    static constexpr int second_levels = 1 << sl_bits;
    static constexpr int first_levels = 32 - sl_bits + 1;
    // Entries of the exact bin tried before looking for a guaranteed fit in a larger class.
    static constexpr int exact_probe = 8;

    struct node {
        unit offset = 0;
        unit size = 0;
        block_id prev = no_block;  // physical neighbours
        block_id next = no_block;
        block_id prev_free = no_block;  // bin links (free blocks), or node free list
        block_id next_free = no_block;
        bool free = false;
        bool in_use = false;  // node slot holds a block (false: on the node free list)
    };

    struct bin_index {
        int fl;
        int sl;
    };

    // Class of size n: below 16 one bin per size; above, 16 bins per power of two.
    static bin_index mapping(unit n) noexcept {
        if (n < unit(second_levels)) return {0, int(n)};
        const int msb = 31 - std::countl_zero(n);
        return {msb - sl_bits + 1, int((n >> (msb - sl_bits)) & (second_levels - 1))};
    }

    // Smallest class whose every block holds at least n units.
    static bin_index mapping_round_up(unit n) noexcept {
        if (n < unit(second_levels)) return {0, int(n)};
        const int msb = 31 - std::countl_zero(n);
        const std::uint64_t rounded =
            std::uint64_t(n) + ((std::uint64_t(1) << (msb - sl_bits)) - 1);
        if (rounded > std::numeric_limits<unit>::max()) return {first_levels, 0};
        return mapping(unit(rounded));
    }

    // Three steps, cheapest first: a few entries of the exact class (regions come in a few
    // bucket sizes, so an exact-size block is usually first in line); then the bitmaps, for the
    // first class whose every block fits; and last, when that finds nothing, the whole exact
    // class, so that allocation fails only when no free block is large enough.
    block_id find_fit(unit n) const noexcept {
        const auto exact = mapping(n);
        int probes = 0;
        block_id b = bins_[exact.fl][exact.sl];
        for (; b != no_block && probes < exact_probe; b = nodes_[b].next_free, ++probes)
            if (nodes_[b].size >= n) return b;
        if (const block_id fit = find_larger_class(n); fit != no_block) return fit;
        for (; b != no_block; b = nodes_[b].next_free)
            if (nodes_[b].size >= n) return b;
        return no_block;
    }

    block_id find_larger_class(unit n) const noexcept {
        auto [fl, sl] = mapping_round_up(n);
        if (fl >= first_levels) return no_block;
        std::uint32_t bits = free_bitmap_[fl] & (~0u << sl);
        if (bits == 0) {
            const std::uint32_t above = top_bitmap_ & (~0u << (fl + 1));  // fl + 1 <= 29
            if (above == 0) return no_block;
            fl = std::countr_zero(above);
            bits = free_bitmap_[fl];
        }
        return bins_[fl][std::countr_zero(bits)];
    }

    void insert_free(block_id b) noexcept {
        const auto [fl, sl] = mapping(nodes_[b].size);
        node& n = nodes_[b];
        n.prev_free = no_block;
        n.next_free = bins_[fl][sl];
        if (n.next_free != no_block) nodes_[n.next_free].prev_free = b;
        bins_[fl][sl] = b;
        free_bitmap_[fl] |= 1u << sl;
        top_bitmap_ |= 1u << fl;
    }

    void remove_free(block_id b) noexcept {
        const auto [fl, sl] = mapping(nodes_[b].size);
        node& n = nodes_[b];
        if (n.prev_free != no_block)
            nodes_[n.prev_free].next_free = n.next_free;
        else
            bins_[fl][sl] = n.next_free;
        if (n.next_free != no_block) nodes_[n.next_free].prev_free = n.prev_free;
        n.prev_free = n.next_free = no_block;
        if (bins_[fl][sl] == no_block) {
            free_bitmap_[fl] &= ~(1u << sl);
            if (free_bitmap_[fl] == 0) top_bitmap_ &= ~(1u << fl);
        }
    }

    // Cuts free block b (already out of its bin) to n units; the rest becomes a free block.
    void split(block_id b, unit n) noexcept {
        if (nodes_[b].size == n) return;
        const block_id r = new_node();  // capacity reserved by the caller: cannot throw
        node& cur = nodes_[b];
        nodes_[r] = node{cur.offset + n, cur.size - n, b, cur.next, no_block, no_block, true, true};
        if (cur.next != no_block) nodes_[cur.next].prev = r;
        cur.next = r;
        cur.size = n;
        insert_free(r);
    }

    // b takes over its next physical neighbour, which must already be out of any bin.
    void absorb_next(block_id b) noexcept {
        const block_id nx = nodes_[b].next;
        nodes_[b].size += nodes_[nx].size;
        nodes_[b].next = nodes_[nx].next;
        if (nodes_[b].next != no_block) nodes_[nodes_[b].next].prev = b;
        release_node(nx);
    }

    // The block that ends the range, or no_block for an empty range. O(blocks).
    block_id last_block() const noexcept {
        for (block_id i = 0; i < nodes_.size(); ++i)
            if (nodes_[i].in_use && nodes_[i].next == no_block) return i;
        return no_block;
    }

    // The free block whose units include `u`, or no_block. O(blocks).
    block_id free_block_holding(unit u) const noexcept {
        for (block_id i = 0; i < nodes_.size(); ++i) {
            const node& n = nodes_[i];
            if (n.in_use && n.free && u >= n.offset && u - n.offset < n.size) return i;
        }
        return no_block;
    }

    // Makes sure `extra` new_node() calls cannot allocate (and so cannot throw).
    void reserve_nodes(std::size_t extra) {
        if (spare_nodes_ >= extra || nodes_.capacity() - nodes_.size() >= extra) return;
        nodes_.reserve(std::max({nodes_.capacity() * 2, nodes_.size() + extra, std::size_t{16}}));
    }

    block_id new_node() {
        block_id id;
        if (node_free_list_ != no_block) {
            id = node_free_list_;
            node_free_list_ = nodes_[id].next_free;
            --spare_nodes_;
        } else {
            id = block_id(nodes_.size());
            nodes_.emplace_back();
        }
        nodes_[id] = node{};
        nodes_[id].in_use = true;
        return id;
    }

    void release_node(block_id id) noexcept {
        nodes_[id] = node{};
        nodes_[id].next_free = node_free_list_;
        node_free_list_ = id;
        ++spare_nodes_;
    }

    unit begin_ = 0;
    unit length_ = 0;
    unit free_units_ = 0;
    std::vector<node> nodes_;
    block_id node_free_list_ = no_block;
    std::size_t spare_nodes_ = 0;
    std::uint32_t top_bitmap_ = 0;  // bit fl: some bin of first level fl is non-empty
    std::array<std::uint32_t, first_levels> free_bitmap_{};
    std::array<std::array<block_id, second_levels>, first_levels> bins_{};
};

}  // namespace odma::detail
