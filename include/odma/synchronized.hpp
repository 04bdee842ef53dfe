// odma/synchronized.hpp - one allocator shared by several threads.
#pragma once

#include <odma/config.hpp>
#include <odma/growth.hpp>
#include <odma/kv_allocator.hpp>
#include <odma/lease.hpp>
#include <odma/region.hpp>
#include <odma/request.hpp>
#include <odma/resize.hpp>
#include <odma/result.hpp>
#include <odma/stats.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>

namespace odma {

/// An allocator whose leases are single regions with a safety pool beside them
/// (odma::allocator): synchronized forwards region_of() and safety_pool_tokens() only for these.
template <class A>
concept has_regions = requires(const A& a, const lease& l) {
    { a.region_of(l) } -> std::same_as<result<region>>;
    { a.safety_pool_tokens() } -> std::convertible_to<std::uint32_t>;
};

/// An allocator that can grow and shrink its arena (odma::allocator over a ResizableBacking):
/// synchronized forwards resize() only for these.
template <class A>
concept has_resize = requires(A& a, std::size_t bytes) {
    { a.resize(bytes, bytes) } -> std::same_as<resize_result>;
};

/// Wraps a KvAllocator (odma::allocator<P, B, M>, odma::paged<M>, see kv_allocator.hpp) so
/// that several threads may call it: every call holds one std::mutex.
///
/// One mutex, not shards: one mutex sustains tens of millions of calls per second, far more
/// than an engine issues even when several threads admit, and splitting the arena into
/// per-thread shards would split its capacity too, so a long request could find no shard with
/// room while the arena as a whole has it. bench/bench_synchronized.cpp measures the lock's
/// cost and the ceiling an ideal sharded design could reach.
///
/// The calls are the allocator's, with these differences:
///  - stats() returns a copy: a reference would be read while another thread updates it.
///  - The policies and the backing are reached through locked(f), which calls f(allocator&)
///    under the lock. locked() is also how to batch calls, e.g. all extends of one decode step
///    under one lock acquisition.
///  - for_each_live() and for_each_run() run their callback under the lock; the callback must
///    not call back into this object (it would deadlock).
///  - backing() is not offered: reach it through locked().
///  - config(), capacity_tokens(), safety_pool_tokens() and byte_offset() take no lock: they
///    read what the constructor fixed.
///
/// A pointer from data() stays valid until its lease is extended (a migration moves it),
/// moved by a resize() with a copy budget, or freed, by whichever thread does so. Engines
/// should extend and release a lease from one thread at a time, as they use its memory anyway,
/// and resize with a copy budget only where no thread holds such a pointer (or reads lease
/// memory only inside locked()); a resize with budget 0 never moves a lease.
template <KvAllocator Allocator>
class synchronized {
public:
    using allocator_type = Allocator;
    using pointer = typename Allocator::pointer;
    using backing_type = typename Allocator::backing_type;

    /// Builds the wrapped allocator in place from its constructor's arguments.
    template <class... Args>
    requires std::constructible_from<Allocator, Args&&...>
    explicit synchronized(Args&&... args) : inner_(std::forward<Args>(args)...) {}

    synchronized(const synchronized&) = delete;
    synchronized& operator=(const synchronized&) = delete;

    result<lease> admit(const request& r) {
        const std::lock_guard lock(mutex_);
        return inner_.admit(r);
    }
    result<lease> resume(const request& original, std::uint32_t generated) {
        const std::lock_guard lock(mutex_);
        return inner_.resume(original, generated);
    }
    result<growth> extend(const lease& l, std::uint32_t total_tokens) {
        const std::lock_guard lock(mutex_);
        return inner_.extend(l, total_tokens);
    }
    result<void> release(const lease& l, std::uint32_t generated_tokens) {
        const std::lock_guard lock(mutex_);
        return inner_.release(l, generated_tokens);
    }
    result<void> abandon(const lease& l) {
        const std::lock_guard lock(mutex_);
        return inner_.abandon(l);
    }
    /// Only for allocators that can resize (odma::allocator over a ResizableBacking).
    resize_result resize(std::size_t arena_bytes,
                         std::size_t copy_budget_bytes = 0) requires has_resize<Allocator> {
        const std::lock_guard lock(mutex_);
        return inner_.resize(arena_bytes, copy_budget_bytes);
    }
    address<pointer> data(const lease& l, std::uint32_t plane = 0) const {
        const std::lock_guard lock(mutex_);
        return inner_.data(l, plane);
    }
    /// Only for allocators with contiguous regions (odma::allocator).
    result<odma::region> region_of(const lease& l) const requires has_regions<Allocator> {
        const std::lock_guard lock(mutex_);
        return inner_.region_of(l);
    }
    /// Calls f(byte_offset, bytes) for each run of `l` in `plane`, under the lock.
    template <class F>
    result<void> for_each_run(const lease& l, std::uint32_t plane, F&& f) const {
        const std::lock_guard lock(mutex_);
        return inner_.for_each_run(l, plane, std::forward<F>(f));
    }
    bool is_live(const lease& l) const {
        const std::lock_guard lock(mutex_);
        return inner_.is_live(l);
    }
    /// A consistent snapshot of the counters.
    odma::stats stats() const {
        const std::lock_guard lock(mutex_);
        return inner_.stats();
    }
    result<void> check() const {
        const std::lock_guard lock(mutex_);
        return inner_.check();
    }
    /// Calls the wrapped allocator's for_each_live(f) under the lock.
    template <class F>
    void for_each_live(F&& f) const {
        const std::lock_guard lock(mutex_);
        inner_.for_each_live(std::forward<F>(f));
    }

    /// Calls f(allocator&) under the lock and returns what it returns.
    template <class F>
    decltype(auto) locked(F&& f) {
        const std::lock_guard lock(mutex_);
        return std::forward<F>(f)(inner_);
    }
    /// Calls f(const allocator&) under the lock and returns what it returns.
    template <class F>
    decltype(auto) locked(F&& f) const {
        const std::lock_guard lock(mutex_);
        return std::forward<F>(f)(inner_);
    }

    const auto& config() const noexcept { return inner_.config(); }
    std::uint32_t capacity_tokens() const noexcept { return inner_.capacity_tokens(); }
    /// Only for allocators with a safety pool (odma::allocator).
    std::uint32_t safety_pool_tokens() const noexcept requires has_regions<Allocator> {
        return inner_.safety_pool_tokens();
    }
    std::size_t byte_offset(std::uint32_t plane, std::size_t token) const noexcept {
        return inner_.byte_offset(plane, token);
    }

private:
    mutable std::mutex mutex_;
    Allocator inner_;
};

}  // namespace odma
