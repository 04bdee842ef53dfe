// tests/support/kv_stamp.hpp - a byte pattern written into a lease's KV and checked later, for
// tests that move KV (swaps, tier moves) and must prove that no byte was lost or mixed up.
#pragma once

#include <odma/lease.hpp>

#include <cstddef>
#include <cstdint>

namespace odma_test {

/// The byte at index i (in token order) of plane `plane` of request `id`.
inline std::byte kv_pattern(std::uint64_t id, std::uint32_t plane, std::size_t i) {
    return std::byte((id * 131 + plane * 17 + i * 7 + (i >> 9)) & 0xff);
}

/// Writes (write = true) or checks the pattern of request `id` over every byte `l` holds,
/// plane by plane through its runs, on an allocator whose backing hands out host addresses
/// (`kv.backing().address(offset)`). True when the lease is live and, when checking, every
/// byte matches: a lost, shifted or swapped byte fails.
template <class Kv>
bool stamp(Kv& kv, const odma::lease& l, std::uint64_t id, bool write) {
    bool ok = true;
    for (std::uint32_t p = 0; p < kv.config().planes; ++p) {
        std::size_t i = 0;
        const auto walked = kv.for_each_run(l, p, [&](std::size_t offset, std::size_t bytes) {
            std::byte* at = kv.backing().address(offset);
            for (std::size_t k = 0; k < bytes; ++k, ++i) {
                if (write)
                    at[k] = kv_pattern(id, p, i);
                else
                    ok = ok && at[k] == kv_pattern(id, p, i);
            }
        });
        ok = ok && walked.has_value();
    }
    return ok;
}

}  // namespace odma_test
