// odma/support/hash.hpp - the fixed, platform-independent hashes odma uses everywhere.
//
// std::hash differs between standard libraries and runs; these do not, so a trained model, a
// train/test split or a request tag is the same on every platform. Support code: shared by
// several subsystems, depends on nothing but the standard library, not part of the documented
// API.
#pragma once

#include <cstdint>
#include <string_view>

namespace odma::support {

/// 64-bit FNV-1a offset basis and prime.
inline constexpr std::uint64_t fnv_basis = 0xcbf29ce484222325ull;
inline constexpr std::uint64_t fnv_prime = 0x100000001b3ull;

/// FNV-1a of `bytes`, continuing from `h`.
constexpr std::uint64_t fnv1a(std::string_view bytes, std::uint64_t h = fnv_basis) noexcept {
    for (const char c : bytes)
        h = (h ^ static_cast<unsigned char>(c)) * fnv_prime;
    return h;
}

/// The finaliser of MurmurHash3: spreads every input bit over the output.
constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

}  // namespace odma::support
