// odma/detail/slot_table.hpp - the lease table behind odma::allocator and odma::paged.
#pragma once

#include <odma/detail/lease_access.hpp>
#include <odma/lease.hpp>

#include <atomic>
#include <cstdint>
#include <limits>
#include <span>
#include <utility>
#include <vector>

namespace odma::detail {

/// A process-wide unique, never-zero id per lease table, so leases cannot cross allocators
/// (of either kind).
inline std::uint64_t next_owner_id() noexcept {
    static std::atomic<std::uint64_t> counter{0};
    return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

/// Slots addressed by lease handles. A freed slot goes on an intrusive free list and is reused;
/// its generation bumps on every free, so a handle kept past release() is recognised as stale
/// instead of reaching the slot's next tenant. find() is O(1) and rejects empty, foreign,
/// out-of-range and stale handles alike.
///
/// `Slot` provides `std::uint32_t generation` (starting at 1), `bool live` and
/// `std::uint32_t next_free` (read only while the slot is free, so a live slot may reuse its
/// storage, e.g. through a union). The owner of the table resets a slot's own fields before
/// release().
template <class Slot>
class slot_table {
public:
    static constexpr std::uint32_t none = std::numeric_limits<std::uint32_t>::max();

    slot_table() : owner_(next_owner_id()) {}

    /// Index of the slot the next take() will hand out, growing the table if none is free.
    /// Strong guarantee: if it throws (std::bad_alloc), nothing changed. Until take(), the
    /// slot stays free, so an admission can still give up without undoing anything.
    std::uint32_t reserve() {
        if (free_ == none) {
            slots_.emplace_back();
            free_ = static_cast<std::uint32_t>(slots_.size() - 1);
        }
        return free_;
    }

    /// Marks the slot returned by the last reserve() live and unlinks it from the free list.
    Slot& take(std::uint32_t index) noexcept {
        Slot& s = slots_[index];
        free_ = s.next_free;
        s.live = true;
        return s;
    }

    /// Marks a live slot free: its handles go stale, and it is reused first.
    void release(Slot& s) noexcept {
        s.live = false;
        if (++s.generation == 0) s.generation = 1;  // 0 is never a live generation
        s.next_free = free_;
        free_ = index_of(s);
    }

    /// The live slot `l` refers to, or null.
    Slot* find(const lease& l) noexcept { return const_cast<Slot*>(std::as_const(*this).find(l)); }
    const Slot* find(const lease& l) const noexcept {
        if (lease_access::owner(l) != owner_) return nullptr;
        const std::uint32_t i = lease_access::slot(l);
        if (i >= slots_.size()) return nullptr;
        const Slot& s = slots_[i];
        return (s.live && s.generation == lease_access::generation(l)) ? &s : nullptr;
    }

    /// The handle of live slot `index`.
    lease handle(std::uint32_t index) const noexcept {
        return lease_access::make(owner_, index, slots_[index].generation);
    }

    std::uint32_t index_of(const Slot& s) const noexcept {
        return static_cast<std::uint32_t>(&s - slots_.data());
    }

    /// Every slot, live and free, in index order (for walks in check() and for_each_live()).
    std::span<const Slot> all() const noexcept { return slots_; }
    std::span<Slot> all() noexcept { return slots_; }
    std::uint32_t size() const noexcept { return static_cast<std::uint32_t>(slots_.size()); }
    Slot& operator[](std::uint32_t index) noexcept { return slots_[index]; }
    const Slot& operator[](std::uint32_t index) const noexcept { return slots_[index]; }

private:
    std::uint64_t owner_;
    std::vector<Slot> slots_;
    std::uint32_t free_ = none;
};

}  // namespace odma::detail
