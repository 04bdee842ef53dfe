// odma/backing/host.hpp - an arena in ordinary host memory.
#pragma once

#include <bit>
#include <cstddef>
#include <cstring>
#include <new>
#include <stdexcept>
#include <utility>

namespace odma::backing {

/// One aligned block of host memory, reserved at construction and freed at destruction.
///
/// The bytes are not touched at construction, so on Linux a large arena costs physical memory
/// only as leases write to it. Move-only: the arena has one owner.
class host {
public:
    using pointer = std::byte*;

    /// Reserves `bytes` bytes aligned to `alignment` (a power of two; default one 4 KiB page).
    /// Throws std::bad_alloc when the system refuses, std::invalid_argument for a bad alignment.
    explicit host(std::size_t bytes, std::size_t alignment = 4096)
        : capacity_(bytes), alignment_(alignment) {
        if (alignment == 0 || !std::has_single_bit(alignment))
            throw std::invalid_argument("odma::backing::host: alignment must be a power of two");
        if (bytes > 0)
            base_ = static_cast<std::byte*>(::operator new (bytes, std::align_val_t{alignment}));
    }

    host(host&& other) noexcept
        : base_(std::exchange(other.base_, nullptr))
        , capacity_(std::exchange(other.capacity_, 0))
        , alignment_(other.alignment_) {}
    host& operator=(host&& other) noexcept {
        if (this != &other) {
            release();
            base_ = std::exchange(other.base_, nullptr);
            capacity_ = std::exchange(other.capacity_, 0);
            alignment_ = other.alignment_;
        }
        return *this;
    }
    host(const host&) = delete;
    host& operator=(const host&) = delete;
    ~host() { release(); }

    std::size_t capacity() const noexcept { return capacity_; }
    std::size_t alignment() const noexcept { return alignment_; }
    pointer address(std::size_t offset) const noexcept { return base_ + offset; }

    /// Copies `bytes` bytes from offset `src` to offset `dst`; the ranges must not overlap.
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) noexcept {
        if (bytes) std::memcpy(base_ + dst, base_ + src, bytes);
    }

    /// Access accounting (odma::AccountingBacking) for code written against a cost model, e.g.
    /// a kernel loop that reports each run it reads. Host memory has no cost model: both are
    /// empty inline functions that compile to nothing, so the same code runs at full speed on
    /// a plain arena and is accounted on backing::lpddr_emulated.
    void read(std::size_t /*offset*/, std::size_t /*bytes*/) const noexcept {}
    void write(std::size_t /*offset*/, std::size_t /*bytes*/) const noexcept {}

private:
    void release() noexcept {
        if (base_) ::operator delete (base_, std::align_val_t{alignment_});
        base_ = nullptr;
    }

    std::byte* base_ = nullptr;
    std::size_t capacity_ = 0;
    std::size_t alignment_ = 4096;
};

}  // namespace odma::backing
