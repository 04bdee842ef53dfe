// odma/backing/detail/granule_map.hpp - which granules of a reserved range are physically
// backed.
//
// Shared by every on-demand backing (host_vmm, cuda_vmm, cndrv_vmm): they differ only in how a
// run of granules is mapped and unmapped (mprotect, cuMemMap, cnMemMap). Private to the
// backings, which is why it lives under backing/ and may use backing/commit_counters.hpp.
// The namespace stays odma::detail: an odma::backing::detail would hide odma::detail from
// every unqualified detail:: name inside namespace odma::backing.
#pragma once

#include <odma/backing/commit_counters.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

namespace odma::detail {

/// Bookkeeping that turns the allocator's byte-range commits into whole-granule maps.
///
/// The allocator commits byte ranges (the tokens one lease holds in one plane) and can only be
/// backed in whole granules (a page, a 2 MiB CUDA chunk, a 32 MiB MLU chunk). Neighbouring
/// leases and plane boundaries share granules, and a growing lease commits its last granule
/// piece by piece. So each granule counts how many of its *bytes* are committed: it is mapped
/// when the count leaves zero and unmapped when it returns to zero. The allocator never commits
/// a byte twice, so the count is exact in any call order; counting calls instead would break
/// as soon as one lease's two commits touch the same granule.
///
/// Each granule also remembers whether it is mapped, separately from its count, so that a
/// granule the driver refused to unmap stays known as mapped and is reused, not mapped twice.
///
/// Cost: O(granules a range touches) - one or two for the common grow-by-one-token commit.
/// Memory: 8 bytes per granule of the reservation.
class granule_map {
public:
    granule_map() = default;

    /// Tracks `capacity` bytes (a multiple of `granule`) in granules of `granule` bytes.
    /// Throws std::invalid_argument for a zero granule, one of 4 GiB or more, or a capacity
    /// that is not a multiple of it.
    granule_map(std::size_t capacity, std::size_t granule) : capacity_(capacity) {
        if (granule == 0 || granule > std::numeric_limits<std::uint32_t>::max())
            throw std::invalid_argument("odma: granule size must be in [1, 4 GiB)");
        if (capacity % granule != 0)
            throw std::invalid_argument("odma: reservation must be a multiple of the granule");
        granule_ = granule;
        counters_.granule_bytes = granule;
        granules_.resize(capacity / granule);
    }

    std::size_t capacity() const noexcept { return capacity_; }
    std::size_t granule() const noexcept { return granule_; }
    std::size_t granule_count() const noexcept { return granules_.size(); }
    const backing::commit_counters& counters() const noexcept { return counters_; }

    /// True when granule `g` is mapped; bytes of it committed now.
    bool is_mapped(std::size_t g) const noexcept { return granules_[g].mapped; }
    std::uint32_t committed_in(std::size_t g) const noexcept { return granules_[g].committed; }

    /// Commits [offset, offset + bytes). Runs of granules that are not mapped yet are handed
    /// to `map(first, count)`, which returns how many granules of the run, from its start, it
    /// mapped. If one run comes up short, everything this call mapped is handed back to
    /// `unmap`, no count changes, and commit returns false. Neither callback may throw.
    template <class Map, class Unmap>
    bool commit(std::size_t offset, std::size_t bytes, Map&& map, Unmap&& unmap) {
        ++counters_.commits;
        if (bytes == 0) return true;
        if (!in_range(offset, bytes)) {
            ++counters_.contract_violations;
            ++counters_.failed_commits;
            return false;
        }
        const std::size_t first = offset / granule_;
        const std::size_t last = (offset + bytes - 1) / granule_;
        for (std::size_t g = first; g <= last;) {
            if (granules_[g].mapped) {
                ++g;
                continue;
            }
            std::size_t end = g + 1;
            while (end <= last && !granules_[end].mapped)
                ++end;
            const std::size_t done = std::min<std::size_t>(map(g, end - g), end - g);
            mark_mapped(g, done);
            if (done != end - g) {
                // Undo: the granules this call mapped are the unmapped-before ones, now mapped
                // with no committed byte (granules mapped with a zero count from an earlier
                // failed unmap are unmapped too: one more retry).
                unmap_idle(first, g + done, unmap);
                ++counters_.failed_commits;
                return false;
            }
            g = end;
        }
        for (std::size_t g = first; g <= last; ++g)
            granules_[g].committed += static_cast<std::uint32_t>(overlap(g, offset, bytes));
        counters_.committed_bytes += bytes;
        return true;
    }

    /// Decommits [offset, offset + bytes): granules whose committed count drops to zero are
    /// handed, in runs, to `unmap(first, count)`, which returns how many granules of the run,
    /// from its start, it unmapped; a granule it could not unmap stays mapped and is retried
    /// later. Bytes that were not committed are counted as a contract violation and ignored.
    template <class Unmap>
    void decommit(std::size_t offset, std::size_t bytes, Unmap&& unmap) noexcept {
        ++counters_.decommits;
        if (bytes == 0) return;
        if (!in_range(offset, bytes)) {
            ++counters_.contract_violations;
            return;
        }
        const std::size_t first = offset / granule_;
        const std::size_t last = (offset + bytes - 1) / granule_;
        for (std::size_t g = first; g <= last; ++g) {
            const auto part = static_cast<std::uint32_t>(overlap(g, offset, bytes));
            slot& s = granules_[g];
            if (s.committed < part) {
                ++counters_.contract_violations;
                counters_.committed_bytes -= s.committed;
                s.committed = 0;
            } else {
                s.committed -= part;
                counters_.committed_bytes -= part;
            }
        }
        unmap_idle(first, last + 1, unmap);
    }

    /// Unmaps every mapped granule, whatever its count (for destructors). Returns false when a
    /// granule could not be unmapped.
    template <class Unmap>
    bool unmap_all(Unmap&& unmap) noexcept {
        for (auto& s : granules_)
            s.committed = 0;
        counters_.committed_bytes = 0;
        const auto failures = counters_.unmap_failures;
        unmap_idle(0, granules_.size(), unmap);
        return counters_.unmap_failures == failures;
    }

private:
    struct slot {
        std::uint32_t committed = 0;  // committed bytes of this granule
        bool mapped = false;
    };

    bool in_range(std::size_t offset, std::size_t bytes) const noexcept {
        return offset <= capacity_ && bytes <= capacity_ - offset;
    }

    // Bytes of [offset, offset + bytes) that fall in granule g.
    std::size_t overlap(std::size_t g, std::size_t offset, std::size_t bytes) const noexcept {
        const std::size_t begin = std::max(g * granule_, offset);
        const std::size_t end = std::min((g + 1) * granule_, offset + bytes);
        return end - begin;
    }

    void mark_mapped(std::size_t g, std::size_t n) noexcept {
        for (std::size_t i = g; i < g + n; ++i)
            granules_[i].mapped = true;
        counters_.maps += n;
        counters_.mapped_bytes += n * granule_;
        counters_.peak_mapped_bytes = std::max(counters_.peak_mapped_bytes, counters_.mapped_bytes);
    }

    // Unmaps, in runs, the granules of [first, end) that are mapped but hold no committed byte.
    template <class Unmap>
    void unmap_idle(std::size_t first, std::size_t end, Unmap& unmap) noexcept {
        auto idle = [&](std::size_t g) {
            return granules_[g].mapped && granules_[g].committed == 0;
        };
        for (std::size_t g = first; g < end;) {
            if (!idle(g)) {
                ++g;
                continue;
            }
            std::size_t run_end = g + 1;
            while (run_end < end && idle(run_end))
                ++run_end;
            while (g < run_end) {
                const std::size_t done = std::min<std::size_t>(unmap(g, run_end - g), run_end - g);
                for (std::size_t i = g; i < g + done; ++i)
                    granules_[i].mapped = false;
                counters_.unmaps += done;
                counters_.mapped_bytes -= done * granule_;
                g += done;
                if (g < run_end) {  // granule g refused: it stays mapped; go on after it
                    ++counters_.unmap_failures;
                    ++g;
                }
            }
        }
    }

    std::size_t capacity_ = 0;
    std::size_t granule_ = 1;
    std::vector<slot> granules_;
    backing::commit_counters counters_;
};

/// The counters of a backing that had to back its whole capacity at once (a device without
/// virtual memory management): commits always succeed, mapped_bytes is the whole capacity,
/// and committed_bytes still follows the allocator, so the two modes report alike.
class fully_backed {
public:
    fully_backed() = default;
    explicit fully_backed(std::size_t capacity) : capacity_(capacity) {
        counters_.granule_bytes = capacity;
        counters_.mapped_bytes = counters_.peak_mapped_bytes = capacity;
    }

    std::size_t capacity() const noexcept { return capacity_; }
    const backing::commit_counters& counters() const noexcept { return counters_; }

    bool commit(std::size_t offset, std::size_t bytes) noexcept {
        ++counters_.commits;
        if (!in_range(offset, bytes)) {
            ++counters_.failed_commits;
            return false;
        }
        counters_.committed_bytes += bytes;
        return true;
    }
    void decommit(std::size_t offset, std::size_t bytes) noexcept {
        ++counters_.decommits;
        if (!in_range(offset, bytes)) return;
        if (bytes > counters_.committed_bytes) {  // more than was ever committed
            ++counters_.contract_violations;
            bytes = counters_.committed_bytes;
        }
        counters_.committed_bytes -= bytes;
    }

private:
    bool in_range(std::size_t offset, std::size_t bytes) noexcept {
        if (offset <= capacity_ && bytes <= capacity_ - offset) return true;
        ++counters_.contract_violations;
        return false;
    }

    std::size_t capacity_ = 0;
    backing::commit_counters counters_;
};

}  // namespace odma::detail
