// odma/detail/occupancy.hpp - live leases and the tokens they reserve and hold.
#pragma once

#include <odma/stats.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace odma::detail {

/// The occupancy counters both allocators keep: live leases, tokens reserved (a contiguous
/// lease's capacity, a paged lease's whole blocks) and tokens held, with the peaks that
/// odma::stats reports. One class so that allocator and paged count the same way; every call is
/// a few additions, inlined.
class occupancy {
public:
    explicit occupancy(std::size_t bytes_per_token = 0) noexcept
        : bytes_per_token_(bytes_per_token) {}

    /// A lease appeared holding `used` of its `reserved` tokens.
    void add_lease(std::uint64_t reserved, std::uint64_t used) noexcept {
        ++live_;
        reserved_ += reserved;
        used_ += used;
    }
    /// A lease holding `used` of its `reserved` tokens went away.
    void remove_lease(std::uint64_t reserved, std::uint64_t used) noexcept {
        --live_;
        reserved_ -= reserved;
        used_ -= used;
    }
    /// A lease's reservation grew (or, with a negative change, shrank) by `tokens`.
    void add_reserved(std::int64_t tokens) noexcept { reserved_ += std::uint64_t(tokens); }
    /// A lease now holds `to` tokens instead of `from`.
    void set_used(std::uint32_t from, std::uint32_t to) noexcept { used_ = used_ - from + to; }

    /// Raises the peaks in `s` to the current figures.
    void note_peaks(odma::stats& s) const noexcept {
        s.peak_live_leases = std::max(s.peak_live_leases, live_);
        s.peak_used_bytes = std::max(s.peak_used_bytes, bytes(used_));
    }
    /// Writes the current figures into `s` (reserved, used, live).
    void report(odma::stats& s) const noexcept {
        s.reserved_bytes = bytes(reserved_);
        s.used_bytes = bytes(used_);
        s.live_leases = live_;
    }

    std::size_t live() const noexcept { return live_; }
    std::uint64_t reserved_tokens() const noexcept { return reserved_; }
    std::uint64_t used_tokens() const noexcept { return used_; }
    std::size_t bytes(std::uint64_t tokens) const noexcept {
        return std::size_t(tokens) * bytes_per_token_;
    }

private:
    std::size_t bytes_per_token_;
    std::uint64_t reserved_ = 0;
    std::uint64_t used_ = 0;
    std::size_t live_ = 0;
};

}  // namespace odma::detail
