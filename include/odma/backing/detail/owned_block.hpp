// odma/backing/detail/owned_block.hpp - the one-owner block of memory under the plain backings
// (host, cuda, cnrt).
//
// Every plain backing is "one allocation, freed once, moved never copied"; only how the block
// is freed differs (aligned operator delete, cudaFree on the right device, cnrtFree). Keeping
// that ownership here means the move rules are written, and tested, once. Vendor-free and fully
// inline: backing::host over it costs exactly what a raw pointer and a size cost.
#pragma once

#include <cstddef>
#include <utility>

namespace odma::detail {

/// A block of `size()` bytes at `get()`, owned alone and released by `Free` (a callable
/// `void(std::byte*) noexcept`, kept by value: it carries what freeing needs, e.g. the
/// alignment or the device). Null with size 0 when empty. Move-only; a moved-from block is
/// empty but keeps its Free, as a backing's moved-from alignment or device stays readable.
template <class Free>
class owned_block {
public:
    owned_block() = default;
    /// Takes ownership of [base, base + size); base may be null (then nothing is freed).
    owned_block(std::byte* base, std::size_t size, Free free) noexcept
        : base_(base), size_(size), free_(std::move(free)) {}

    owned_block(owned_block&& other) noexcept
        : base_(std::exchange(other.base_, nullptr))
        , size_(std::exchange(other.size_, 0))
        , free_(other.free_) {}
    owned_block& operator=(owned_block&& other) noexcept {
        if (this != &other) {
            reset();
            base_ = std::exchange(other.base_, nullptr);
            size_ = std::exchange(other.size_, 0);
            free_ = other.free_;
        }
        return *this;
    }
    owned_block(const owned_block&) = delete;
    owned_block& operator=(const owned_block&) = delete;
    ~owned_block() { reset(); }

    std::byte* get() const noexcept { return base_; }
    std::size_t size() const noexcept { return size_; }
    const Free& releaser() const noexcept { return free_; }

    /// Frees the block now (if any) and leaves this empty.
    void reset() noexcept {
        if (base_) free_(base_);
        base_ = nullptr;
        size_ = 0;
    }

private:
    std::byte* base_ = nullptr;
    std::size_t size_ = 0;
    Free free_{};
};

}  // namespace odma::detail
