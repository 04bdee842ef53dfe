// odma/memory/detail/divider.hpp - exact unsigned 64-bit division by a divisor fixed at
// construction, without a hardware divide on the hot path.
//
// The cost model divides every run's offsets by the burst, chunk, granule and stripe sizes and
// by the channel count, all fixed per memory_model. A power of two becomes a shift; any other
// divisor d a multiply-high by m = ceil(2^64 / d), exact for every n <= (2^64 - 1) / d (then
// n x (m d - 2^64) < n d < 2^64, so the error term stays below 1 / d); larger n (never a device
// address) take the plain division. The quotient is always exactly n / d.
#pragma once

#include <bit>
#include <cstdint>

namespace odma::memory::detail {

class divider {
public:
    divider() = default;
    /// d > 0.
    explicit divider(std::uint64_t d) noexcept : d_(d) {
        if (std::has_single_bit(d)) {
            shift_ = std::uint32_t(std::countr_zero(d));
            pow2_ = true;
        } else {
            magic_ = ~std::uint64_t(0) / d + 1;  // ceil(2^64 / d): d does not divide 2^64
            limit_ = ~std::uint64_t(0) / d;
            pow2_ = false;
        }
    }

    std::uint64_t value() const noexcept { return d_; }

    /// n / d, exactly.
    std::uint64_t quotient(std::uint64_t n) const noexcept {
        if (pow2_) return n >> shift_;
#if defined(__SIZEOF_INT128__)
        if (n <= limit_) return std::uint64_t((wide(n) * magic_) >> 64);
#endif
        return n / d_;
    }
    /// n % d, exactly.
    std::uint64_t remainder(std::uint64_t n) const noexcept {
        return n - quotient(n) * d_;
    }

private:
#if defined(__SIZEOF_INT128__)
    __extension__ typedef unsigned __int128 wide;
#endif

    std::uint64_t d_ = 1;
    std::uint64_t magic_ = 0;
    std::uint64_t limit_ = 0;
    std::uint32_t shift_ = 0;
    bool pow2_ = true;
};

}  // namespace odma::memory::detail
