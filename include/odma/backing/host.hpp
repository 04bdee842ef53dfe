// odma/backing/host.hpp - an arena in ordinary host memory.
#pragma once

#include <odma/backing/detail/owned_block.hpp>

#include <bit>
#include <cstddef>
#include <cstring>
#include <new>
#include <stdexcept>

namespace odma::backing {

/// One aligned block of host memory, reserved at construction and freed at destruction.
///
/// The bytes are not touched at construction, so on Linux a large arena costs physical memory
/// only as leases write to it. Move-only: the arena has one owner (detail::owned_block, shared
/// with the device arenas; all inline, so address() is a pointer add as before).
class host {
public:
    using pointer = std::byte*;

    /// Reserves `bytes` bytes aligned to `alignment` (a power of two; default one 4 KiB page).
    /// Throws std::bad_alloc when the system refuses, std::invalid_argument for a bad alignment.
    explicit host(std::size_t bytes, std::size_t alignment = 4096)
        : block_(allocate(bytes, alignment), bytes, aligned_free{alignment}) {}

    std::size_t capacity() const noexcept { return block_.size(); }
    std::size_t alignment() const noexcept { return block_.releaser().alignment; }
    pointer address(std::size_t offset) const noexcept { return block_.get() + offset; }

    /// Copies `bytes` bytes from offset `src` to offset `dst`; the ranges must not overlap.
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) noexcept {
        if (bytes) std::memcpy(block_.get() + dst, block_.get() + src, bytes);
    }

    /// Access accounting (odma::AccountingBacking) for code written against a cost model, e.g.
    /// a kernel loop that reports each run it reads. Host memory has no cost model: both are
    /// empty inline functions that compile to nothing, so the same code runs at full speed on
    /// a plain arena and is accounted on backing::accounted.
    void read(std::size_t /*offset*/, std::size_t /*bytes*/) const noexcept {}
    void write(std::size_t /*offset*/, std::size_t /*bytes*/) const noexcept {}

private:
    // Frees with the alignment the block was allocated with, as aligned delete requires.
    struct aligned_free {
        std::size_t alignment = 4096;
        void operator()(std::byte* p) const noexcept {
            ::operator delete (p, std::align_val_t{alignment});
        }
    };

    static std::byte* allocate(std::size_t bytes, std::size_t alignment) {
        if (alignment == 0 || !std::has_single_bit(alignment))
            throw std::invalid_argument("odma::backing::host: alignment must be a power of two");
        if (bytes == 0) return nullptr;
        return static_cast<std::byte*>(::operator new (bytes, std::align_val_t{alignment}));
    }

    detail::owned_block<aligned_free> block_;
};

}  // namespace odma::backing
