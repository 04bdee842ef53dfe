// odma/support/random.hpp - the one pseudo-random generator odma uses.
//
// Support code: shared by several subsystems (training, the cost model's reference streams,
// the tools' workload generators and the tests), depends on nothing but the standard library,
// not part of the documented API.
#pragma once

#include <cstdint>

namespace odma::support {

/// splitmix64 (Steele, Lea and Flood, 2014): a tiny, fixed pseudo-random generator. odma uses it
/// instead of <random> engines and distributions, whose output differs between standard
/// libraries, so that training, calibration streams, workloads and test data are the same on
/// every platform.
class splitmix64 {
public:
    explicit constexpr splitmix64(std::uint64_t seed) noexcept : state_(seed) {}

    /// The next 64 random bits.
    constexpr std::uint64_t operator()() noexcept {
        std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    /// Nearly uniform in [0, n) for n > 0 (modulo bias below n / 2^64).
    constexpr std::uint64_t below(std::uint64_t n) noexcept { return (*this)() % n; }
    /// Uniform in [0, 1).
    constexpr double unit() noexcept { return double((*this)() >> 11) * 0x1.0p-53; }

private:
    std::uint64_t state_;
};

}  // namespace odma::support
