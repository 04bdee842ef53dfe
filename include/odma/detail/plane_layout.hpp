// odma/detail/plane_layout.hpp - where a token of a plane lies in the backing, and committing
// token ranges in every plane at once.
#pragma once

#include <odma/concepts.hpp>

#include <cstddef>
#include <cstdint>

namespace odma::detail {

/// The arena as both allocators lay it out: `planes` equal sub-arenas of `plane_tokens` token
/// slots, each slot bytes_per_plane_token bytes. A lease owns the same token slots in every
/// plane.
struct plane_layout {
    std::uint32_t planes = 1;
    std::uint32_t plane_tokens = 0;
    std::size_t bytes_per_plane_token = 0;

    /// Byte offset in the backing of token slot `token` of plane `plane`.
    constexpr std::size_t byte_offset(std::uint32_t plane, std::size_t token) const noexcept {
        return (std::size_t(plane) * plane_tokens + token) * bytes_per_plane_token;
    }
};

/// Commits and decommits token ranges in every plane of a CommittingBacking, with rollback: a
/// range is committed in all planes or in none. For other backings every call is a no-op that
/// compiles to nothing.
template <Backing M>
struct plane_commit {
    /// Commits token slots [first, first + tokens) in every plane. When a plane's commit()
    /// returns false or throws, the planes already committed are decommitted again, then it
    /// returns false or rethrows.
    static bool commit(M& backing, const plane_layout& layout, std::size_t first,
                       std::size_t tokens) {
        if constexpr (CommittingBacking<M>) {
            if (tokens == 0) return true;
            const std::size_t len = tokens * layout.bytes_per_plane_token;
            std::uint32_t p = 0;
            auto undo = [&] {
                for (std::uint32_t q = 0; q < p; ++q)
                    backing.decommit(layout.byte_offset(q, first), len);
            };
            try {
                for (; p < layout.planes; ++p)
                    if (!backing.commit(layout.byte_offset(p, first), len)) {
                        undo();
                        return false;
                    }
            } catch (...) {
                undo();
                throw;
            }
        } else {
            (void)backing, (void)layout, (void)first, (void)tokens;
        }
        return true;
    }

    /// Commits, in every plane, each piece that pieces(f) hands to f(first token slot, tokens),
    /// in order: all or nothing. When one fails or throws, the pieces before it are decommitted
    /// again (pieces() is called a second time for that), then it returns false or rethrows.
    template <class Pieces>
    static bool commit_all(M& backing, const plane_layout& layout, Pieces&& pieces) {
        std::size_t done = 0;
        bool ok = true;
        auto undo = [&] {
            std::size_t i = 0;
            pieces([&](std::size_t first, std::size_t tokens) {
                if (i++ < done) decommit(backing, layout, first, tokens);
            });
        };
        try {
            pieces([&](std::size_t first, std::size_t tokens) {
                if (ok && commit(backing, layout, first, tokens))
                    ++done;
                else
                    ok = false;
            });
        } catch (...) {
            undo();
            throw;
        }
        if (!ok) undo();
        return ok;
    }

    /// Decommits token slots [first, first + tokens) in every plane. Never throws: it runs on
    /// release and rollback paths.
    static void decommit(M& backing, const plane_layout& layout, std::size_t first,
                         std::size_t tokens) noexcept {
        if constexpr (CommittingBacking<M>) {
            if (tokens == 0) return;
            const std::size_t len = tokens * layout.bytes_per_plane_token;
            for (std::uint32_t p = 0; p < layout.planes; ++p)
                backing.decommit(layout.byte_offset(p, first), len);
        } else {
            (void)backing, (void)layout, (void)first, (void)tokens;
        }
    }
};

}  // namespace odma::detail
