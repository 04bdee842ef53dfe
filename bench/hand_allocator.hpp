// The baseline of the zero-overhead benchmark: what odma::allocator<predict::constant,
// bucket::fixed, backing::host> does, written by hand as one class with no policy objects.
//
// Same placement engine (odma::detail::extent_heap used directly), same general area / safety
// pool split, same handles (owner, slot, generation) with the same validation, same counters.
// What is inlined by hand: the constant predictor (reserve prompt + max_new_tokens; no
// prediction object, no quantile), the fixed buckets (a sorted array searched in place), the
// host arena (a pointer and memcpy). What is left out because this composition never needs
// it: commit/decommit and the accounting hooks. The benchmark checks that both allocators
// place every region at the same offset, so the comparison is like for like.
#pragma once

#include <odma/config.hpp>
#include <odma/detail/extent_heap.hpp>
#include <odma/detail/lease_access.hpp>
#include <odma/errc.hpp>
#include <odma/lease.hpp>
#include <odma/request.hpp>
#include <odma/result.hpp>
#include <odma/stats.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>
#include <vector>

namespace odma_bench {

class hand_allocator {
public:
    hand_allocator(const odma::config& cfg, std::vector<std::uint32_t> buckets,
                   std::size_t arena_bytes)
        : cfg_(cfg), buckets_(std::move(buckets)), owner_(odma::detail::next_owner_id()) {
        odma::detail::validate_fields(cfg_);
        base_ = static_cast<std::byte*>(::operator new (arena_bytes, std::align_val_t{4096}));
        arena_bytes_ = arena_bytes;
        const std::size_t tokens = std::min<std::size_t>(arena_bytes / cfg_.bytes_per_token,
                                                         std::numeric_limits<std::uint32_t>::max());
        const auto safety = static_cast<std::uint32_t>(double(tokens) * cfg_.safety_pool_fraction);
        plane_tokens_ = static_cast<std::uint32_t>(tokens);
        general_ = odma::detail::extent_heap(0, plane_tokens_ - safety);
        safety_ = odma::detail::extent_heap(plane_tokens_ - safety, safety);
        stats_.arena_bytes = tokens * cfg_.bytes_per_token;
        stats_.safety_pool_bytes = std::size_t(safety) * cfg_.bytes_per_token;
    }
    hand_allocator(const hand_allocator&) = delete;
    hand_allocator& operator=(const hand_allocator&) = delete;
    ~hand_allocator() { ::operator delete (base_, std::align_val_t{4096}); }

    odma::result<odma::lease> admit(const odma::request& r) {
        if (r.prompt_tokens == 0 || r.max_new_tokens == 0 || r.prompt_tokens >= cfg_.max_tokens) {
            ++stats_.rejected.invalid_request;
            return odma::errc::invalid_request;
        }
        // Static reservation: the whole request, prompt + max_new_tokens, up to max_tokens. The
        // bucket only decides whether the safety pool may take it.
        const std::uint32_t capacity = limit(r);
        const std::uint32_t bucket = bucket_for(capacity);

        if (free_slot_ == no_slot) {
            slots_.emplace_back();
            free_slot_ = static_cast<std::uint32_t>(slots_.size() - 1);
        }
        const std::uint32_t index = free_slot_;
        bool in_pool = false;
        auto block = general_.allocate(capacity);
        if (block == no_block && bucket >= buckets_.back()) {
            in_pool = true;
            block = safety_.allocate(capacity);
        }
        if (block == no_block) {
            ++stats_.rejected.admit_no_memory;
            return odma::errc::no_memory;
        }
        slot& s = slots_[index];
        free_slot_ = s.next_free;
        s.req = r;
        s.block = block;
        s.capacity = capacity;
        s.used = r.prompt_tokens;
        s.in_pool = in_pool;
        s.live = true;
        s.next_free = no_slot;
        reserved_tokens_ += capacity;
        used_tokens_ += s.used;
        ++live_;
        ++stats_.admissions;
        if (in_pool) {
            ++stats_.safety_pool_admissions;
            safety_reserved_tokens_ += capacity;
        }
        note_peaks();
        return odma::detail::lease_access::make(owner_, index, s.generation);
    }

    odma::result<odma::growth> extend(const odma::lease& l, std::uint32_t total) {
        slot* s = find(l);
        if (!s) {
            ++stats_.rejected.invalid_lease;
            return odma::errc::invalid_lease;
        }
        if (total == 0 || total > cfg_.max_tokens) {
            ++stats_.rejected.invalid_request;
            return odma::errc::invalid_request;
        }
        if (total <= s->capacity) {
            set_used(*s, total);
            return odma::growth::unchanged;
        }
        const std::uint32_t target = std::max(total, std::min(bucket_for(total), limit(s->req)));
        odma::detail::extent_heap& heap = s->in_pool ? safety_ : general_;
        const std::uint32_t room = heap.room_after(s->block);
        if (std::uint64_t(s->capacity) + room >= total) {
            const auto grown =
                static_cast<std::uint32_t>(std::min<std::uint64_t>(target, s->capacity + room));
            heap.grow(s->block, grown);
            reserved_tokens_ += grown - s->capacity;
            if (s->in_pool) safety_reserved_tokens_ += grown - s->capacity;
            s->capacity = grown;
            set_used(*s, total);
            ++stats_.in_place_growths;
            return odma::growth::in_place;
        }
        bool to_pool = false;
        auto block = general_.allocate(target);
        if (block == no_block) {
            to_pool = true;
            block = safety_.allocate(target);
        }
        if (block == no_block) {
            ++stats_.rejected.extend_no_memory;
            return odma::errc::no_memory;
        }
        odma::detail::extent_heap& to_heap = to_pool ? safety_ : general_;
        const std::uint32_t from = heap.offset(s->block), to = to_heap.offset(block);
        const std::size_t live_bytes = std::size_t(s->used) * cfg_.bytes_per_plane_token();
        for (std::uint32_t p = 0; p < cfg_.planes; ++p)
            if (live_bytes)
                std::memcpy(base_ + byte_offset(p, to), base_ + byte_offset(p, from), live_bytes);
        heap.free(s->block);
        stats_.migrated_bytes += std::uint64_t(s->used) * cfg_.bytes_per_token;
        ++stats_.migrations;
        if (to_pool) ++stats_.safety_pool_migrations;
        reserved_tokens_ += target - s->capacity;
        if (s->in_pool) safety_reserved_tokens_ -= s->capacity;
        if (to_pool) safety_reserved_tokens_ += target;
        s->block = block;
        s->in_pool = to_pool;
        s->capacity = target;
        set_used(*s, total);
        note_peaks();
        return odma::growth::migrated;
    }

    odma::result<void> release(const odma::lease& l, std::uint32_t) {
        slot* s = find(l);
        if (!s) {
            ++stats_.rejected.invalid_lease;
            return odma::errc::invalid_lease;
        }
        (s->in_pool ? safety_ : general_).free(s->block);
        reserved_tokens_ -= s->capacity;
        used_tokens_ -= s->used;
        if (s->in_pool) safety_reserved_tokens_ -= s->capacity;
        --live_;
        s->live = false;
        s->req = odma::request{};
        s->block = no_block;
        s->capacity = s->used = 0;
        if (++s->generation == 0) s->generation = 1;
        s->next_free = free_slot_;
        free_slot_ = static_cast<std::uint32_t>(s - slots_.data());
        ++stats_.releases;
        return {};
    }

    std::byte* data(const odma::lease& l) const {
        const slot* s = find(l);
        return s ? base_ + byte_offset(0, (s->in_pool ? safety_ : general_).offset(s->block))
                 : nullptr;
    }
    std::size_t offset_of(const odma::lease& l) const {
        const slot* s = find(l);
        return (s->in_pool ? safety_ : general_).offset(s->block);
    }

private:
    static constexpr auto no_block = odma::detail::extent_heap::no_block;
    static constexpr std::uint32_t no_slot = std::numeric_limits<std::uint32_t>::max();

    // The same layout as odma's slot (hot fields first, 64 bytes).
    struct slot {
        std::uint32_t generation = 1;
        bool live = false;
        bool in_pool = false;
        odma::detail::extent_heap::block_id block = no_block;
        std::uint32_t capacity = 0;
        std::uint32_t used = 0;
        std::uint32_t next_free = no_slot;
        odma::request req{};
    };
    static_assert(sizeof(slot) == 64);

    std::uint32_t limit(const odma::request& r) const noexcept {
        return static_cast<std::uint32_t>(std::min<std::uint64_t>(
            cfg_.max_tokens, std::uint64_t(r.prompt_tokens) + r.max_new_tokens));
    }
    std::uint32_t bucket_for(std::uint32_t tokens) const noexcept {
        // The last bucket is max_tokens and tokens <= max_tokens: the search always lands.
        return *std::lower_bound(buckets_.begin(), buckets_.end(), tokens);
    }
    std::size_t byte_offset(std::uint32_t plane, std::size_t token) const noexcept {
        return (std::size_t(plane) * plane_tokens_ + token) * cfg_.bytes_per_plane_token();
    }
    slot* find(const odma::lease& l) noexcept {
        return const_cast<slot*>(static_cast<const hand_allocator&>(*this).find(l));
    }
    const slot* find(const odma::lease& l) const noexcept {
        if (odma::detail::lease_access::owner(l) != owner_) return nullptr;
        const std::uint32_t i = odma::detail::lease_access::slot(l);
        if (i >= slots_.size()) return nullptr;
        const slot& s = slots_[i];
        return (s.live && s.generation == odma::detail::lease_access::generation(l)) ? &s : nullptr;
    }
    void set_used(slot& s, std::uint32_t tokens) noexcept {
        used_tokens_ = used_tokens_ - s.used + tokens;
        s.used = tokens;
        note_peaks();
    }
    void note_peaks() noexcept {
        stats_.peak_live_leases = std::max(stats_.peak_live_leases, live_);
        stats_.peak_used_bytes =
            std::max(stats_.peak_used_bytes, std::size_t(used_tokens_) * cfg_.bytes_per_token);
    }

    odma::config cfg_;
    std::vector<std::uint32_t> buckets_;
    std::byte* base_ = nullptr;
    std::size_t arena_bytes_ = 0;
    std::uint64_t owner_;
    std::uint32_t plane_tokens_ = 0;
    odma::detail::extent_heap general_, safety_;
    std::vector<slot> slots_;
    std::uint32_t free_slot_ = no_slot;
    std::uint64_t reserved_tokens_ = 0;
    std::uint64_t used_tokens_ = 0;
    std::uint64_t safety_reserved_tokens_ = 0;
    std::size_t live_ = 0;
    odma::stats stats_;
};

}  // namespace odma_bench
