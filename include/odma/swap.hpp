// odma/swap.hpp - preemption without recompute: a lease's KV copied to host memory and back.
//
// vLLM's former swap mode, and what eLLM does with CPU memory: when a running request must give
// its KV memory up, its tokens are copied out (swap_out), the lease is abandoned, and when the
// request is admitted again (swap_in, through resume()) the tokens are copied back into
// whatever runs the new lease has. Nothing is prefilled again.
//
// This version is for allocators whose backing hands out host addresses (backing::host,
// backing::host_vmm and wrappers of them): the copy is a memcpy per run and plane. A device
// backing needs a device-to-host copy first, which the backings do not offer yet.
#pragma once

#include <odma/errc.hpp>
#include <odma/kv_allocator.hpp>
#include <odma/lease.hpp>
#include <odma/request.hpp>
#include <odma/result.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

namespace odma {

/// A request's KV while it waits in host memory: what swap_in() needs to bring it back.
struct swapped_lease {
    request original;             ///< the request as first admitted (resume() keeps it)
    std::uint32_t generated = 0;  ///< tokens generated before the swap
    std::uint32_t tokens = 0;     ///< tokens held: prompt + generated
    /// Plane-major copy: plane p's tokens start at p x tokens x bytes_per_plane_token.
    std::vector<std::byte> bytes;
};

/// Allocators whose KV swap_out() and swap_in() can copy with memcpy.
template <class A>
concept HostAddressableKv = KvAllocator<A> && std::is_same_v<typename A::pointer, std::byte*>;

namespace detail {

// Calls f(host address, bytes) for every run of `l` in every plane, plane by plane, in token
// order. False when the lease is not live.
template <class A, class F>
bool each_host_run(A& kv, const lease& l, F&& f) {
    for (std::uint32_t p = 0; p < kv.config().planes; ++p) {
        const auto walked = kv.for_each_run(l, p, [&](std::size_t offset, std::size_t bytes) {
            f(kv.backing().address(offset), bytes);
        });
        if (!walked) return false;
    }
    return true;
}

}  // namespace detail

/// Copies the tokens `l` holds, in every plane, into host memory and abandons `l` (the
/// policies learn nothing, as for any preemption). `original` and `generated` are what
/// resume() will need: the lease must hold exactly original.prompt_tokens + generated tokens.
///
/// errc::invalid_lease when `l` is not live; invalid_request when it does not hold that many
/// tokens. Throws std::bad_alloc if the host copy cannot be allocated; `l` is then untouched.
template <HostAddressableKv A>
result<swapped_lease> swap_out(A& kv, const lease& l, const request& original,
                               std::uint32_t generated) {
    if (!kv.is_live(l)) return errc::invalid_lease;
    std::size_t held = 0;
    if (!detail::each_host_run(kv, l, [&](std::byte*, std::size_t bytes) { held += bytes; }))
        return errc::invalid_lease;
    const std::size_t per_token = kv.config().bytes_per_plane_token() * kv.config().planes;
    const std::uint64_t tokens = std::uint64_t(original.prompt_tokens) + generated;
    if (per_token == 0 || held != tokens * per_token) return errc::invalid_request;

    swapped_lease out{original, generated, static_cast<std::uint32_t>(tokens), {}};
    out.bytes.resize(held);  // may throw: nothing has changed yet
    std::size_t at = 0;
    detail::each_host_run(kv, l, [&](const std::byte* p, std::size_t bytes) {
        std::memcpy(out.bytes.data() + at, p, bytes);
        at += bytes;
    });
    if (auto r = kv.abandon(l); !r) return r.error();
    return out;
}

/// Admits the request again (resume(original, generated)) and copies its tokens back into the
/// new lease's runs. errc::no_memory when there is no room now: `s` is unchanged, try again
/// later. Other errors are resume()'s.
template <HostAddressableKv A>
result<lease> swap_in(A& kv, const swapped_lease& s) {
    auto l = kv.resume(s.original, s.generated);
    if (!l) return l;
    std::size_t at = 0;
    const bool walked = detail::each_host_run(kv, *l, [&](std::byte* p, std::size_t bytes) {
        if (at + bytes <= s.bytes.size()) std::memcpy(p, s.bytes.data() + at, bytes);
        at += bytes;
    });
    if (!walked || at != s.bytes.size()) {  // not the lease swap_out() saw: give it back
        (void)kv.abandon(*l);
        return errc::invalid_request;
    }
    return l;
}

}  // namespace odma
