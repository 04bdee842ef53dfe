// odma/backing/host_vmm.hpp - a host arena reserved as address space, backed page by page.
//
// The host twin of cuda_vmm and cndrv_vmm: the same on-demand design on POSIX virtual memory,
// so it runs (and is tested for real) on any Linux machine. Useful by itself for CPU inference
// and as a model of what the device backings do.
#pragma once

#if defined(__unix__) || defined(__APPLE__)

#include <odma/backing/commit_counters.hpp>
#include <odma/backing/detail/granule_map.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#define ODMA_HAS_HOST_VMM 1

namespace odma::backing {

/// A large range of host address space, reserved with mmap(PROT_NONE) at construction, whose
/// granules (pages by default) become readable and writable only while leases hold tokens in
/// them.
///
/// commit makes the granules of a range accessible (mprotect PROT_READ|PROT_WRITE); the kernel
/// supplies zeroed pages on first touch. decommit returns them to the system at once
/// (madvise(MADV_DONTNEED), so the resident set really shrinks) and makes them inaccessible
/// again (mprotect PROT_NONE), so a stale pointer into a released lease faults instead of
/// reading another lease's data. Granules shared by neighbouring leases are counted, see
/// detail::granule_map.
///
/// Limits: every change of protection splits the kernel's mapping; the kernel allows about
/// 65,530 mappings per process (vm.max_map_count). With page granules and many small leases
/// across many planes that limit can be reached, and commit then fails cleanly (the allocator
/// returns errc::no_memory). A larger granule (e.g. 64 KiB or 2 MiB) keeps the count low.
///
/// Move-only; not thread-safe (the allocator that owns it is not either).
class host_vmm {
public:
    using pointer = std::byte*;

    /// Reserves `bytes` bytes of address space, rounded up to whole granules. `granule` is the
    /// unit of commit in bytes: 0 means one page; otherwise a multiple of the page size.
    /// Throws std::invalid_argument for a bad granule, std::system_error when mmap refuses.
    explicit host_vmm(std::size_t bytes, std::size_t granule = 0) {
        const std::size_t page = page_size();
        if (granule == 0) granule = page;
        if (granule % page != 0)
            throw std::invalid_argument(
                "odma::backing::host_vmm: granule of " + std::to_string(granule) +
                " bytes is not a multiple of the page size (" + std::to_string(page) + ")");
        const std::size_t reserved = (bytes + granule - 1) / granule * granule;
        granules_ = detail::granule_map(reserved, granule);
        if (reserved == 0) return;
        void* base = ::mmap(nullptr, reserved, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED)
            throw std::system_error(errno, std::generic_category(),
                                    "odma::backing::host_vmm: reserving " +
                                        std::to_string(reserved) + " bytes of address space");
        base_ = static_cast<std::byte*>(base);
#ifdef MADV_NOHUGEPAGE
        // Transparent huge pages would back a committed page with 2 MiB and make physical use
        // coarser than the granule; keep residency granule-exact.
        if (granule < (std::size_t(2) << 20)) (void)::madvise(base, reserved, MADV_NOHUGEPAGE);
#endif
    }

    host_vmm(host_vmm&& other) noexcept
        : base_(std::exchange(other.base_, nullptr))
        , granules_(std::exchange(other.granules_, detail::granule_map{})) {}
    host_vmm& operator=(host_vmm&& other) noexcept {
        if (this != &other) {
            release();
            base_ = std::exchange(other.base_, nullptr);
            granules_ = std::exchange(other.granules_, detail::granule_map{});
        }
        return *this;
    }
    host_vmm(const host_vmm&) = delete;
    host_vmm& operator=(const host_vmm&) = delete;
    ~host_vmm() {
        release();
    }

    /// Reserved bytes (whole granules). Physical use is counters().mapped_bytes.
    std::size_t capacity() const noexcept {
        return granules_.capacity();
    }
    std::size_t granule_size() const noexcept {
        return granules_.granule();
    }
    pointer address(std::size_t offset) const noexcept {
        return base_ + offset;
    }

    /// Copies between two committed, non-overlapping ranges.
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) noexcept {
        if (bytes) std::memcpy(base_ + dst, base_ + src, bytes);
    }

    /// Makes [offset, offset + bytes) readable and writable. False (nothing changed) when the
    /// kernel refuses: out of memory under strict overcommit, or too many mappings.
    bool commit(std::size_t offset, std::size_t bytes) noexcept {
        return granules_.commit(
            offset, bytes, [this](std::size_t g, std::size_t n) { return map_granules(g, n); },
            [this](std::size_t g, std::size_t n) { return unmap_granules(g, n); });
    }

    /// The range holds no live data: granules no longer used by any committed byte are given
    /// back to the system and made inaccessible.
    void decommit(std::size_t offset, std::size_t bytes) noexcept {
        granules_.decommit(offset, bytes,
                           [this](std::size_t g, std::size_t n) { return unmap_granules(g, n); });
    }

    const commit_counters& counters() const noexcept {
        return granules_.counters();
    }

    /// True when the granule holding `offset` is accessible now.
    bool is_committed(std::size_t offset) const noexcept {
        return offset < capacity() && granules_.is_mapped(offset / granule_size());
    }

    /// Bytes of the reservation physically resident now, asked from the kernel (mincore), in
    /// pages. Touched committed pages count; decommitted pages do not. O(pages); a diagnostic.
    std::size_t resident_bytes() const {
        if (!base_) return 0;
        const std::size_t page = page_size();
        std::vector<unsigned char> present(capacity() / page);
        if (::mincore(base_, capacity(), present.data()) != 0)
            throw std::system_error(errno, std::generic_category(),
                                    "odma::backing::host_vmm: mincore");
        std::size_t pages = 0;
        for (unsigned char p : present)
            pages += p & 1u;
        return pages * page;
    }

    static std::size_t page_size() noexcept {
        static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
        return size;
    }

private:
    std::byte* granule_address(std::size_t g) const noexcept {
        return base_ + g * granule_size();
    }

    // Callbacks of detail::granule_map: how many granules of the run, from its start, were done.
    std::size_t map_granules(std::size_t g, std::size_t n) noexcept {
        return ::mprotect(granule_address(g), n * granule_size(), PROT_READ | PROT_WRITE) == 0 ? n
                                                                                               : 0;
    }
    std::size_t unmap_granules(std::size_t g, std::size_t n) noexcept {
        const std::size_t len = n * granule_size();
        // Give the pages back first (this works whatever the protection), then fence them.
        (void)::madvise(granule_address(g), len, MADV_DONTNEED);
        return ::mprotect(granule_address(g), len, PROT_NONE) == 0 ? n : 0;
    }

    void release() noexcept {
        if (base_) ::munmap(base_, capacity());
        base_ = nullptr;
    }

    std::byte* base_ = nullptr;
    detail::granule_map granules_;
};

}  // namespace odma::backing

#endif  // unix
