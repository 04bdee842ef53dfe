// odma/kv_allocator.hpp - the interface every odma KV-cache allocator offers.
#pragma once

#include <odma/config.hpp>
#include <odma/growth.hpp>
#include <odma/lease.hpp>
#include <odma/request.hpp>
#include <odma/result.hpp>
#include <odma/stats.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>

namespace odma {

namespace detail {
/// A callable for for_each_run, to check that an allocator accepts one.
struct run_visitor {
    void operator()(std::size_t /*byte_offset*/, std::size_t /*bytes*/) const noexcept {}
};
}  // namespace detail

/// What a serving engine, a simulator or a test may call on any odma KV-cache allocator:
/// odma::allocator (contiguous, predicted reservations) and odma::paged (fixed blocks) both
/// satisfy it (checked with static_assert in their tests), and odma::synchronized forwards it.
///
///   a.admit(req)                 -> result<lease>   KV for the prompt, placed as the allocator
///                                                   decides
///   a.resume(req, generated)     -> result<lease>   KV for a preempted request coming back
///                                                   with `generated` tokens already produced
///   a.extend(l, total_tokens)    -> result<growth>  make the lease hold total_tokens tokens
///   a.release(l, generated)      -> result<void>    finished: free, and let the policies learn
///   a.abandon(l)                 -> result<void>    preempted or cancelled: free, learn nothing
///   a.data(l, plane)             -> address<pointer>  first token of the lease in `plane`
///   a.for_each_run(l, plane, f)  -> result<void>    f(byte_offset, bytes) for each contiguous
///                                                   run of the lease's tokens, in token order
///   a.is_live(l)                 -> bool
///   a.stats()                    -> stats           counters and occupancy
///   a.check()                    -> result<void>    every invariant, or invariant_violation
///   a.config().bytes_per_plane_token(), a.byte_offset(plane, token), a.backing()
///
/// Errors follow one contract (errc.hpp): invalid_request for impossible sizes, no_memory when
/// there is no room (an extending lease keeps its size and contents), invalid_lease for a
/// handle that is not live in this allocator.
template <class A>
concept KvAllocator = requires(A& a, const A& ca, const request& r, const lease& l,
                               std::uint32_t tokens, std::uint32_t plane, std::size_t token) {
    typename A::pointer;
    typename A::backing_type;
    { a.admit(r) } -> std::same_as<result<lease>>;
    { a.resume(r, tokens) } -> std::same_as<result<lease>>;
    { a.extend(l, tokens) } -> std::same_as<result<growth>>;
    { a.release(l, tokens) } -> std::same_as<result<void>>;
    { a.abandon(l) } -> std::same_as<result<void>>;
    { ca.data(l, plane) } -> std::same_as<address<typename A::pointer>>;
    { ca.for_each_run(l, plane, detail::run_visitor{}) } -> std::same_as<result<void>>;
    { ca.is_live(l) } -> std::convertible_to<bool>;
    { ca.stats() } -> std::convertible_to<stats>;
    { ca.check() } -> std::same_as<result<void>>;
    { ca.config().bytes_per_plane_token() } -> std::convertible_to<std::size_t>;
    { ca.byte_offset(plane, token) } -> std::convertible_to<std::size_t>;
    a.backing();
};

}  // namespace odma
