// odma/paged.hpp - a vLLM-style paged KV-cache allocator: the baseline odma is measured against.
//
// Vocabulary:
//   block        - a fixed number of token slots (block_tokens, 16 by default as in vLLM); the
//                  unit of allocation. Block b owns token slots [b x block_tokens, (b + 1) x
//                  block_tokens) in every plane.
//   block table  - a lease's list of blocks in token order; token i of a lease lives in block
//                  table[i / block_tokens] at slot i % block_tokens.
//   free list    - the blocks nobody holds, handed out in a fixed order (see free_order).
//
// Paging wastes at most one partly filled block per request and never needs a contiguous
// extent, so it admits as many requests as the arena holds tokens. The price is that a
// request's KV is scattered: an attention kernel reads it block by block, one run of
// block_tokens x bytes_per_plane_token bytes per block and plane (16 KiB for
// DeepSeek-R1-Distill-Qwen-7B with planes = 2 x layers), which costs bandwidth on memories that
// dislike discontinuities (LPDDR). for_each_run() lists exactly those runs for a cost model.
#pragma once

#include <odma/concepts.hpp>
#include <odma/config.hpp>
#include <odma/detail/occupancy.hpp>
#include <odma/detail/plane_layout.hpp>
#include <odma/detail/request_checks.hpp>
#include <odma/detail/run_list.hpp>
#include <odma/detail/slot_table.hpp>
#include <odma/errc.hpp>
#include <odma/growth.hpp>
#include <odma/lease.hpp>
#include <odma/request.hpp>
#include <odma/result.hpp>
#include <odma/stats.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace odma {

/// Order in which freed blocks are handed out again. After some churn it decides how scattered
/// a new request's blocks are.
enum class free_order : std::uint8_t {
    /// First in, first out: allocation takes the block freed longest ago; a finished request's
    /// blocks go to the back, last block first. This is vLLM v1's free block queue (a finished
    /// request's blocks are queued in reverse so its tail is reused first). The default.
    fifo,
    /// Last in, first out: the block freed most recently is reused first (vLLM v0's plain
    /// block allocator popped from and pushed to the end of one list).
    lifo,
};

/// Sizing of a paged allocator. The fields shared with odma::config mean the same thing.
struct paged_config {
    /// KV bytes of one token over all planes (57,344 for DeepSeek-R1-Distill-Qwen-7B).
    std::size_t bytes_per_token = 0;
    /// Longest sequence (prompt + generated) a lease may hold.
    std::uint32_t max_tokens = 0;
    /// Planes each token's bytes are split into; a block owns the same slots in every plane,
    /// as vLLM's per-layer K and V caches share one block id. Must divide bytes_per_token.
    std::uint32_t planes = 1;
    /// Tokens per block (vLLM's block_size). Must be > 0.
    std::uint32_t block_tokens = 16;
    /// Share of all blocks admit() keeps free, in [0, 1): an admission fails when it would leave
    /// fewer free blocks, so that running requests can still grow (vLLM v0 used 0.01).
    /// extend() may use every block.
    double watermark = 0.0;
    /// Which free block is reused first.
    free_order order = free_order::fifo;

    constexpr std::size_t bytes_per_plane_token() const noexcept {
        return planes == 0 ? 0 : bytes_per_token / planes;
    }
};

/// A paged KV-cache allocator over a Backing, with the allocator's admit / extend / release /
/// abandon / stats / check surface so a simulator can swap it in.
///
/// admit() takes enough blocks for the prompt, extend() appends blocks as tokens arrive,
/// release() and abandon() return a lease's blocks to the free list. Nothing is ever copied:
/// growth never migrates. The error contract is odma::allocator's (errc::invalid_request,
/// no_memory, invalid_lease; config_error at construction).
///
/// Cost: admit and release are O(blocks of the lease), extend O(blocks added); no heap
/// allocation once block tables have reached their sizes. Not thread-safe, not copyable.
template <Backing M>
class paged {
public:
    using backing_type = M;
    using pointer = typename M::pointer;
    using block_id = std::uint32_t;

    /// Validates `cfg` and cuts the backing into blocks. Throws config_error naming the field
    /// that cannot work (the arena must hold at least one max_tokens sequence).
    paged(const paged_config& cfg, M backing) : cfg_(cfg), backing_(std::move(backing)) {
        if (cfg_.bytes_per_token == 0)
            throw config_error("bytes_per_token", "must be greater than zero");
        if (cfg_.max_tokens == 0) throw config_error("max_tokens", "must be greater than zero");
        if (cfg_.max_tokens > (1u << 30))
            throw config_error("max_tokens", "must be at most 2^30 tokens");
        if (cfg_.planes == 0 || cfg_.bytes_per_token % cfg_.planes != 0)
            throw config_error("planes", "must be greater than zero and divide bytes_per_token");
        if (cfg_.block_tokens == 0 || cfg_.block_tokens > (1u << 20))
            throw config_error("block_tokens", "must be in [1, 2^20]");
        if (!(cfg_.watermark >= 0.0 && cfg_.watermark < 1.0))
            throw config_error("watermark",
                               "must be in [0, 1), got " + std::to_string(cfg_.watermark));
        const std::size_t block_bytes = std::size_t(cfg_.block_tokens) * cfg_.bytes_per_token;
        const std::size_t blocks =
            std::min<std::size_t>(backing_.capacity() / block_bytes,
                                  std::numeric_limits<std::uint32_t>::max() / cfg_.block_tokens);
        if (blocks < blocks_for(cfg_.max_tokens))
            throw config_error("backing", "the arena of " + std::to_string(backing_.capacity()) +
                                              " bytes holds " + std::to_string(blocks) +
                                              " blocks, less than one max_tokens sequence (" +
                                              std::to_string(blocks_for(cfg_.max_tokens)) + ")");
        blocks_ = static_cast<std::uint32_t>(blocks);
        layout_ = {cfg_.planes, blocks_ * cfg_.block_tokens, cfg_.bytes_per_plane_token()};
        occupancy_ = detail::occupancy(cfg_.bytes_per_token);
        watermark_blocks_ = static_cast<std::uint32_t>(double(blocks_) * cfg_.watermark);
        free_.reset(blocks_);
        stats_.arena_bytes = blocks * block_bytes;
    }

    paged(const paged&) = delete;
    paged& operator=(const paged&) = delete;

    /// Takes ceil(prompt_tokens / block_tokens) blocks for `r`. The lease holds prompt_tokens
    /// tokens on return.
    ///
    /// errc::invalid_request: prompt_tokens or max_new_tokens is 0, or prompt_tokens >=
    ///                        max_tokens.
    /// errc::no_memory:       fewer free blocks than the prompt needs plus the watermark.
    result<lease> admit(const request& r) {
        if (!detail::admissible(r, cfg_.max_tokens)) return refuse_request();
        return place(r.prompt_tokens);
    }

    /// Admits again a request that was preempted after generating `generated` tokens: takes
    /// the blocks for prompt + generated tokens. A paged allocator learns nothing, so `original`
    /// is only checked; the call exists so that engines drive both allocators alike (see
    /// allocator::resume).
    ///
    /// errc::invalid_request: as admit() for `original`, or generated >= max_new_tokens, or
    ///                        prompt + generated >= max_tokens.
    /// errc::no_memory:       fewer free blocks than that needs plus the watermark.
    result<lease> resume(const request& original, std::uint32_t generated) {
        if (!detail::resumable(original, generated, cfg_.max_tokens)) return refuse_request();
        return place(original.prompt_tokens + generated, true);
    }

    /// Makes `l` hold `total_tokens` tokens. growth::unchanged when its blocks already have
    /// room (shrinking keeps the blocks), growth::in_place when blocks were appended (nothing
    /// moves; the table is longer). Never migrated.
    ///
    /// errc::invalid_lease:   `l` is not live in this allocator.
    /// errc::invalid_request: total_tokens is 0 or above max_tokens.
    /// errc::no_memory:       not enough free blocks; `l` keeps its blocks and size.
    result<growth> extend(const lease& l, std::uint32_t total_tokens) {
        slot* s = find(l);
        if (!s) return reject_lease();
        if (!detail::valid_total(total_tokens, cfg_.max_tokens)) return refuse_request();
        const std::uint32_t need = blocks_for(total_tokens);
        const auto have = static_cast<std::uint32_t>(s->table.size());
        if (need <= have) {
            set_used(*s, total_tokens);
            return growth::unchanged;
        }
        if (need - have > free_.size()) {
            ++stats_.rejected.extend_no_memory;
            return errc::no_memory;
        }
        s->table.reserve(need);  // may throw before anything changed
        if (!take_blocks(s->table, need - have)) {
            ++stats_.rejected.extend_no_memory;
            return errc::no_memory;
        }
        occupancy_.add_reserved(std::int64_t(need - have) * cfg_.block_tokens);
        set_used(*s, total_tokens);
        ++stats_.in_place_growths;
        return growth::in_place;
    }

    /// Frees `l`'s blocks. `generated_tokens` is accepted for symmetry with odma::allocator (a
    /// paged allocator learns nothing).
    ///
    /// errc::invalid_lease: `l` is not live in this allocator.
    result<void> release(const lease& l, std::uint32_t generated_tokens) {
        (void)generated_tokens;
        return abandon(l);
    }

    /// Frees `l`'s blocks (preempted or cancelled requests).
    result<void> abandon(const lease& l) {
        slot* s = find(l);
        if (!s) return reject_lease();
        free_slot(*s);
        return {};
    }

    /// `l`'s block table: block ids in token order.
    result<std::span<const block_id>> blocks(const lease& l) const {
        const slot* s = find(l);
        if (!s) return reject_lease();
        return std::span<const block_id>(s->table);
    }

    /// Tokens `l` holds.
    result<std::uint32_t> used_tokens(const lease& l) const {
        const slot* s = find(l);
        if (!s) return reject_lease();
        return s->used;
    }

    /// Address of token `token` of `l` in `plane`. Tokens are contiguous only within a block.
    /// Null with error() == invalid_lease for a lease that is not live, invalid_request for a
    /// plane out of range or a token beyond the lease's blocks.
    address<pointer> data(const lease& l, std::uint32_t plane = 0, std::uint32_t token = 0) const {
        const slot* s = find(l);
        if (!s) return reject_lease();
        if (plane >= cfg_.planes || token / cfg_.block_tokens >= s->table.size())
            return errc::invalid_request;
        return backing_.address(byte_offset(plane, slot_of(*s, token)));
    }

    /// Calls f(byte_offset, bytes) for every run of `l`'s used tokens in `plane`, in token
    /// order: one run per block (the last one possibly partial), which is how a paged attention
    /// kernel walks the block table. Runs are reported per block even when two blocks happen to
    /// be adjacent, since the kernel fetches each block on its own.
    template <class F>
    result<void> for_each_run(const lease& l, std::uint32_t plane, F&& f) const {
        const slot* s = find(l);
        if (!s) return reject_lease();
        const auto blocks = [&](auto&& piece) {  // one piece per block, the last one partial
            std::uint32_t left = s->used;
            for (const block_id b : s->table) {
                if (left == 0) break;
                const std::uint32_t n = std::min(left, cfg_.block_tokens);
                piece(first_slot(b), n);
                left -= n;
            }
        };
        return detail::visit_runs(
            plane, cfg_.planes, cfg_.bytes_per_plane_token(), blocks,
            [this](std::uint32_t p, std::size_t token) { return byte_offset(p, token); }, f);
    }

    /// True when `l` is a live lease of this allocator.
    bool is_live(const lease& l) const noexcept { return find(l) != nullptr; }

    /// Calls f(const lease&, std::span<const block_id> table, std::uint32_t used_tokens) for
    /// every live lease, in slot order.
    template <class F>
    void for_each_live(F&& f) const {
        for (std::uint32_t i = 0; i < slots_.size(); ++i) {
            const slot& s = slots_[i];
            if (s.live) f(slots_.handle(i), std::span<const block_id>(s.table), s.used);
        }
    }

    /// Counters and occupancy, in the allocator's terms: reserved = held blocks, used = held
    /// tokens. A paged arena has no safety pool and no external fragmentation (any free block
    /// serves any request), so those fields are 0 and largest_free_bytes equals free_bytes.
    const odma::stats& stats() const {
        occupancy_.report(stats_);
        stats_.free_bytes = stats_.arena_bytes - stats_.reserved_bytes;
        stats_.largest_free_bytes = stats_.free_bytes;
        return stats_;
    }

    /// Verifies every invariant: each block is either on the free list exactly once or in
    /// exactly one live lease's table; each live lease has enough blocks for its tokens; the
    /// counters match a recount. O(blocks + leases); for tests. errc::invariant_violation.
    result<void> check() const {
        constexpr std::uint32_t unseen = std::numeric_limits<std::uint32_t>::max();
        constexpr std::uint32_t on_free_list = unseen - 1;
        std::vector<std::uint32_t> owner(blocks_, unseen);
        if (free_.size() > blocks_) return errc::invariant_violation;
        for (std::uint32_t i = 0; i < free_.size(); ++i) {
            const block_id b = free_.at(i);
            if (b >= blocks_ || owner[b] != unseen) return errc::invariant_violation;
            owner[b] = on_free_list;
        }
        std::uint64_t allocated = 0, used = 0;
        std::size_t live = 0;
        for (std::uint32_t i = 0; i < slots_.size(); ++i) {
            const slot& s = slots_[i];
            if (!s.live) {
                if (!s.table.empty()) return errc::invariant_violation;
                continue;
            }
            if (s.used == 0 || s.used > cfg_.max_tokens || s.table.size() < blocks_for(s.used))
                return errc::invariant_violation;
            for (const block_id b : s.table) {
                if (b >= blocks_ || owner[b] != unseen) return errc::invariant_violation;
                owner[b] = i;
            }
            allocated += s.table.size();
            used += s.used;
            ++live;
        }
        if (std::count(owner.begin(), owner.end(), unseen) != 0) return errc::invariant_violation;
        if (allocated * cfg_.block_tokens != occupancy_.reserved_tokens() ||
            used != occupancy_.used_tokens() || live != occupancy_.live() ||
            allocated + free_.size() != blocks_)
            return errc::invariant_violation;
        return {};
    }

    const paged_config& config() const noexcept { return cfg_; }
    M& backing() noexcept { return backing_; }
    const M& backing() const noexcept { return backing_; }

    /// Blocks in the arena, and how many are free now.
    std::uint32_t capacity_blocks() const noexcept { return blocks_; }
    std::uint32_t free_blocks() const noexcept { return free_.size(); }
    /// Token slots per plane (capacity_blocks() x block_tokens).
    std::uint32_t capacity_tokens() const noexcept { return layout_.plane_tokens; }
    /// Byte offset in the backing of token slot `token` (block x block_tokens + i) of `plane`.
    std::size_t byte_offset(std::uint32_t plane, std::size_t token) const noexcept {
        return layout_.byte_offset(plane, token);
    }

private:
    static constexpr std::uint32_t no_slot = std::numeric_limits<std::uint32_t>::max();

    struct slot {
        std::vector<block_id> table;  // keeps its capacity across reuse of the slot
        std::uint32_t used = 0;
        std::uint32_t generation = 1;  // 0 is never a live generation
        std::uint32_t next_free = no_slot;
        bool live = false;
    };

    /// The free blocks as a ring buffer, so FIFO and LIFO are both O(1) with no allocation.
    class free_list {
    public:
        void reset(std::uint32_t blocks) {
            ring_.resize(blocks);
            for (std::uint32_t b = 0; b < blocks; ++b)
                ring_[b] = b;
            head_ = 0;
            size_ = blocks;
        }
        std::uint32_t size() const noexcept { return size_; }
        block_id at(std::uint32_t i) const noexcept { return ring_[wrap(head_ + i)]; }
        block_id take(free_order order) noexcept {  // requires size() > 0
            --size_;
            if (order == free_order::lifo) return ring_[wrap(head_ + size_)];
            const block_id b = ring_[head_];
            head_ = wrap(head_ + 1);
            return b;
        }
        void give(block_id b) noexcept {  // never more than the ring holds
            ring_[wrap(head_ + size_)] = b;
            ++size_;
        }
        /// Undoes take(order): `b` becomes again the block the next take(order) returns.
        void give_front(block_id b, free_order order) noexcept {
            if (order == free_order::fifo) head_ = wrap(head_ + ring_.size() - 1);
            ring_[order == free_order::fifo ? head_ : wrap(head_ + size_)] = b;
            ++size_;
        }

    private:
        std::uint32_t wrap(std::uint64_t i) const noexcept {
            return static_cast<std::uint32_t>(i % ring_.size());
        }
        std::vector<block_id> ring_;
        std::uint32_t head_ = 0;
        std::uint32_t size_ = 0;
    };

    std::uint32_t blocks_for(std::uint32_t tokens) const noexcept {
        return static_cast<std::uint32_t>((std::uint64_t(tokens) + cfg_.block_tokens - 1) /
                                          cfg_.block_tokens);
    }

    // Takes the blocks for a new lease's first `tokens` tokens and makes the lease; `resumed`
    // counts it as a resumption too.
    result<lease> place(std::uint32_t tokens, bool resumed = false) {
        const std::uint32_t need = blocks_for(tokens);
        if (std::uint64_t(need) + watermark_blocks_ > free_.size()) {
            ++stats_.rejected.admit_no_memory;
            return errc::no_memory;
        }
        const std::uint32_t index = slots_.reserve();  // may throw; nothing changed yet
        slots_[index].table.reserve(need);             // may throw; still nothing changed
        if (!take_blocks(slots_[index].table, need)) {
            ++stats_.rejected.admit_no_memory;
            return errc::no_memory;
        }
        slot& s = slots_.take(index);
        s.used = tokens;
        occupancy_.add_lease(std::uint64_t(need) * cfg_.block_tokens, s.used);
        ++stats_.admissions;
        stats_.resumptions += resumed;
        occupancy_.note_peaks(stats_);
        return slots_.handle(index);
    }

    // Appends `count` free blocks to `table` (which has the capacity) and commits them in every
    // plane on a CommittingBacking. All or nothing: when a commit fails (false) the blocks taken
    // so far go back to the free list and it returns false; when it throws, the same, then it
    // rethrows.
    bool take_blocks(std::vector<block_id>& table, std::uint32_t count) {
        const std::size_t first = table.size();
        auto give_back = [&] {
            while (table.size() > first) {
                const block_id b = table.back();
                table.pop_back();
                detail::plane_commit<M>::decommit(backing_, layout_, first_slot(b),
                                                  cfg_.block_tokens);
                free_.give_front(b, cfg_.order);
            }
        };
        for (std::uint32_t i = 0; i < count; ++i) {
            const block_id b = free_.take(cfg_.order);
            bool ok = false;
            try {
                ok = detail::plane_commit<M>::commit(backing_, layout_, first_slot(b),
                                                     cfg_.block_tokens);
            } catch (...) {
                free_.give_front(b, cfg_.order);
                give_back();
                throw;
            }
            if (!ok) {
                free_.give_front(b, cfg_.order);
                give_back();
                return false;
            }
            table.push_back(b);
        }
        return true;
    }

    std::size_t first_slot(block_id b) const noexcept { return std::size_t(b) * cfg_.block_tokens; }
    std::size_t slot_of(const slot& s, std::uint32_t token) const noexcept {
        return std::size_t(s.table[token / cfg_.block_tokens]) * cfg_.block_tokens +
               token % cfg_.block_tokens;
    }

    slot* find(const lease& l) noexcept { return slots_.find(l); }
    const slot* find(const lease& l) const noexcept { return slots_.find(l); }
    errc refuse_request() const noexcept { return detail::refused_request(stats_); }
    errc reject_lease() const noexcept { return detail::refused_lease(stats_); }

    // Frees a live lease's memory and slot, and counts the release (release() and abandon()).
    void free_slot(slot& s) noexcept {
        ++stats_.releases;
        // Tail first, as vLLM v1 queues a finished request's blocks.
        for (auto it = s.table.rbegin(); it != s.table.rend(); ++it) {
            detail::plane_commit<M>::decommit(backing_, layout_, first_slot(*it),
                                              cfg_.block_tokens);
            free_.give(*it);
        }
        occupancy_.remove_lease(std::uint64_t(s.table.size()) * cfg_.block_tokens, s.used);
        s.table.clear();
        s.used = 0;
        slots_.release(s);
    }

    void set_used(slot& s, std::uint32_t tokens) noexcept {
        occupancy_.set_used(s.used, tokens);
        s.used = tokens;
        occupancy_.note_peaks(stats_);
    }

    paged_config cfg_;
    [[no_unique_address]] M backing_;
    std::uint32_t blocks_ = 0;
    detail::plane_layout layout_;
    std::uint32_t watermark_blocks_ = 0;
    free_list free_;
    detail::slot_table<slot> slots_;
    detail::occupancy occupancy_;
    mutable odma::stats stats_;
};

}  // namespace odma
