// capi/src/offsets_backing.hpp - the Backing of ODMA_BACKING_OFFSETS: an address space whose
// bytes the engine owns, with migrations handed to the engine's copy callback.
#pragma once

#include <odma/errc.hpp>

#include <cstddef>
#include <cstdint>
#include <string>

namespace odma_capi {

/// Like odma::backing::placement_only (addresses are the byte offsets themselves), but
/// copy() asks the engine to move the bytes: the engine owns the memory (a torch tensor,
/// cudaMalloc, cnrtMalloc) and odma only places leases in [0, capacity).
///
/// A non-zero return from the callback throws odma::device_error. allocator::extend rolls the
/// migration back on any exception (the lease keeps its runs and size), and the C boundary
/// turns the exception into ODMA_DEVICE_ERROR.
class offsets_backing {
public:
    using pointer = std::uintptr_t;
    using copy_function = int (*)(void* user, std::size_t dst, std::size_t src, std::size_t bytes);

    offsets_backing(std::size_t bytes, copy_function copy, void* user) noexcept
        : capacity_(bytes), copy_(copy), user_(user) {}

    std::size_t capacity() const noexcept { return capacity_; }
    pointer address(std::size_t offset) const noexcept { return pointer(offset); }

    void copy(std::size_t dst, std::size_t src, std::size_t bytes) {
        if (bytes == 0) return;
        if (const int rc = copy_(user_, dst, src, bytes); rc != 0)
            throw odma::device_error(rc, "copy_fn returned " + std::to_string(rc) + " copying " +
                                             std::to_string(bytes) + " bytes from offset " +
                                             std::to_string(src) + " to offset " +
                                             std::to_string(dst));
    }

private:
    std::size_t capacity_;
    copy_function copy_;
    void* user_;
};

}  // namespace odma_capi
