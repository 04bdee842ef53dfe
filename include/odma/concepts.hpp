// odma/concepts.hpp - what a Predictor, a BucketPolicy and a Backing must provide.
//
// odma::allocator<Predictor, BucketPolicy, Backing> is checked against these concepts, so a
// policy that lacks a member fails at the point of use with the name of the concept, and every
// call into a policy is a direct (usually inlined) call: no virtual dispatch.
//
// Optional capabilities follow the rule of D's allocator building blocks: a policy that cannot
// do something simply lacks the member, and the allocator asks at compile time
// (`if constexpr (CommittingBacking<B>)`) instead of calling a stub.
#pragma once

#include <odma/prediction.hpp>
#include <odma/request.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>

namespace odma {

/// Predicts how many tokens a request will generate, and learns from what it really generated.
///
///   p.predict(req)          -> prediction   quantiles of the generated length (not the prompt)
///   p.observe(req, actual)                  the request finished after `actual` new tokens
///
/// predict is called once per admission and must be cheap (microseconds); observe once per
/// release.
template <class P>
concept Predictor = std::move_constructible<P> &&
    requires(P& p, const request& r, std::uint32_t actual) {
    { p.predict(r) } -> std::convertible_to<prediction>;
    p.observe(r, actual);
};

/// Maps a token count to a bucket capacity (size class), and may learn the boundaries.
///
///   b.capacity_for(tokens)  -> uint32      smallest bucket capacity >= tokens, for
///                                          1 <= tokens <= max_tokens()
///   b.max_tokens()          -> uint32      the largest bucket; the allocator requires it to
///                                          equal config::max_tokens
///   b.boundaries()          -> span<const uint32>   bucket capacities, ascending
///   b.observe(tokens)                      a request finished; `tokens` is its peak demand:
///                                          the larger of what admit() asked to reserve
///                                          (prompt + predicted quantile, before rounding up
///                                          to a bucket) and what it held at the end
///                                          (prompt + generated)
///
/// Why the peak demand and not the final length: the allocator rounds up the *asked* size,
/// and a request that outgrew it ends in the bucket of its final length, so the reservation
/// it holds when it finishes is exactly capacity_for(peak demand). Boundaries fitted to that
/// histogram minimise what is really reserved (docs/predictors.md measures the difference
/// against boundaries fitted to final lengths on the bundled traces).
///
/// Changing boundaries never moves live leases; new boundaries apply to later admissions.
template <class B>
concept BucketPolicy = std::move_constructible<B> &&
    requires(B& b, const B& cb, std::uint32_t tokens) {
    { cb.capacity_for(tokens) } -> std::convertible_to<std::uint32_t>;
    { cb.max_tokens() } -> std::convertible_to<std::uint32_t>;
    { cb.boundaries() } -> std::convertible_to<std::span<const std::uint32_t>>;
    b.observe(tokens);
};

/// One arena of memory the allocator places regions in. Backings are thin: placement lives in
/// the allocator, a backing only owns bytes and moves them.
///
///   typename B::pointer                    an address in the arena (device pointer for devices)
///   b.capacity()            -> size_t      arena size in bytes
///   b.address(offset)       -> pointer     the address `offset` bytes into the arena
///   b.copy(dst, src, bytes)                copy between two non-overlapping byte ranges of the
///                                          arena (used to migrate a lease)
template <class B>
concept Backing = std::move_constructible<B> &&
    requires(B& b, const B& cb, std::size_t offset, std::size_t bytes) {
    typename B::pointer;
    { cb.capacity() } -> std::convertible_to<std::size_t>;
    { cb.address(offset) } -> std::same_as<typename B::pointer>;
    b.copy(offset, offset, bytes);
};

/// Optional Backing capability: memory is reserved up front but backed on demand.
///
///   b.commit(offset, bytes)   -> bool      make the range usable; false if out of memory
///   b.decommit(offset, bytes)              the range no longer holds live data; must not
///                                          throw (it runs on release and rollback paths)
///
/// The allocator commits the tokens a lease really holds as it grows, and decommits on release
/// and after a migration, so physical use follows used tokens rather than reservations.
/// Ranges of neighbouring leases may share a backing granule; the backing counts them.
template <class B>
concept CommittingBacking = Backing<B> && requires(B& b, std::size_t offset, std::size_t bytes) {
    { b.commit(offset, bytes) } -> std::convertible_to<bool>;
    b.decommit(offset, bytes);
};

/// Optional Backing capability: capacity() is reserved address space, backed by physical
/// memory granule by granule only while committed (host_vmm, cuda_vmm, cndrv_vmm).
///
///   b.granule_size()          -> size_t    the unit of physical backing, in bytes
///
/// On such a backing the allocator may use less than the whole capacity at no cost, and
/// allocator::resize() can grow and shrink the arena at run time: the tokens beyond its end
/// are never committed, so shrinking bounds the physical memory the allocator can take, and
/// growing needs nothing from the backing until leases commit the new tokens. Backings that
/// own their whole capacity as memory (host, cuda, cnrt) or none (placement_only) lack it.
template <class B>
concept ResizableBacking = CommittingBacking<B> && requires(const B& cb) {
    { cb.granule_size() } -> std::convertible_to<std::size_t>;
};

/// Optional Backing capability: the backing accounts reads and writes for a cost model.
///
///   b.read(offset, bytes)  /  b.write(offset, bytes)
template <class B>
concept AccountingBacking = Backing<B> && requires(B& b, std::size_t offset, std::size_t bytes) {
    b.read(offset, bytes);
    b.write(offset, bytes);
};

}  // namespace odma
