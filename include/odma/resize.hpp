// odma/resize.hpp - what allocator::resize() did, or how much it could have done.
#pragma once

#include <odma/errc.hpp>

#include <cstddef>

namespace odma {

/// The outcome of allocator::resize(arena_bytes, copy_budget_bytes). Read like a result<void>
/// (has_value(), error(), explicit bool), with the figures beside the code: a refused shrink
/// has something to report that an errc alone cannot carry, namely how far the arena could
/// shrink right now.
class [[nodiscard]] resize_result {
public:
    /// The arena is now `arena_bytes`; `copied_bytes` were copied to move leases out of the
    /// part that was cut.
    static constexpr resize_result done(std::size_t arena_bytes,
                                        std::size_t copied_bytes) noexcept {
        return resize_result(errc{}, arena_bytes, copied_bytes, 0);
    }
    /// Nothing changed (the arena is still `arena_bytes`) because of `e`. For no_memory,
    /// `freeable_bytes` is how much a resize with the same copy budget could release now.
    static constexpr resize_result refused(errc e, std::size_t arena_bytes,
                                           std::size_t freeable_bytes) noexcept {
        return resize_result(e == errc{} ? errc::invariant_violation : e, arena_bytes, 0,
                             freeable_bytes);
    }

    constexpr bool has_value() const noexcept { return error_ == errc{}; }
    constexpr explicit operator bool() const noexcept { return has_value(); }
    /// errc{} on success; invalid_request for a size the arena can never have; no_memory when
    /// live leases are in the way and moving them would exceed the copy budget, find no room
    /// below the new end, or (on a device) find no memory to commit.
    constexpr errc error() const noexcept { return error_; }

    /// The arena after the call, in bytes over all planes (unchanged when refused).
    constexpr std::size_t arena_bytes() const noexcept { return arena_bytes_; }
    /// Bytes copied to move leases below the new end (0 when nothing had to move).
    constexpr std::size_t copied_bytes() const noexcept { return copied_bytes_; }
    /// After no_memory: how many bytes a resize with the same copy budget can release now, the
    /// most a search over new ends found: resize(arena_bytes() - freeable_bytes(), budget)
    /// succeeds as long as nothing else changes in between. 0 otherwise.
    constexpr std::size_t freeable_bytes() const noexcept { return freeable_bytes_; }

private:
    constexpr resize_result(errc e, std::size_t arena, std::size_t copied,
                            std::size_t freeable) noexcept
        : error_(e), arena_bytes_(arena), copied_bytes_(copied), freeable_bytes_(freeable) {}

    errc error_{};
    std::size_t arena_bytes_ = 0;
    std::size_t copied_bytes_ = 0;
    std::size_t freeable_bytes_ = 0;
};

}  // namespace odma
