// odma/detail/request_checks.hpp - the size rules both allocators apply to requests, one each,
// and how both count a refusal.
#pragma once

#include <odma/errc.hpp>
#include <odma/request.hpp>
#include <odma/stats.hpp>

#include <cstdint>

namespace odma::detail {

/// A request can be admitted: a prompt, room to generate, and a prompt shorter than the
/// longest sequence (else there is no room left to generate).
constexpr bool admissible(const request& r, std::uint32_t max_tokens) noexcept {
    return r.prompt_tokens > 0 && r.max_new_tokens > 0 && r.prompt_tokens < max_tokens;
}

/// A request preempted after `generated` tokens can be resumed: admissible, something left to
/// generate, and prompt + generated still shorter than the longest sequence.
constexpr bool resumable(const request& r, std::uint32_t generated,
                         std::uint32_t max_tokens) noexcept {
    return admissible(r, max_tokens) && generated < r.max_new_tokens &&
           std::uint64_t(r.prompt_tokens) + generated < max_tokens;
}

/// A lease may be extended to hold `total` tokens.
constexpr bool valid_total(std::uint32_t total, std::uint32_t max_tokens) noexcept {
    return total > 0 && total <= max_tokens;
}

/// Counts a call refused for an impossible size in `s`, and returns the error to answer with.
inline errc refused_request(odma::stats& s) noexcept {
    ++s.rejected.invalid_request;
    return errc::invalid_request;
}

/// Counts a call refused for a lease that is not live in `s`, and returns the error.
inline errc refused_lease(odma::stats& s) noexcept {
    ++s.rejected.invalid_lease;
    return errc::invalid_lease;
}

}  // namespace odma::detail
