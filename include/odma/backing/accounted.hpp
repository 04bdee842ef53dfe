// odma/backing/accounted.hpp - a Backing that costs every access on the DRAM cost model
// (odma/memory/).
#pragma once

#include <odma/backing/host.hpp>
#include <odma/backing/memory_model.hpp>  // the cost model's names in odma::backing
#include <odma/backing/placement_only.hpp>
#include <odma/concepts.hpp>
#include <odma/memory/access_report.hpp>
#include <odma/memory/accountant.hpp>
#include <odma/memory/memory_model.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace odma::backing {

/// Wraps a backing (the bytes live in `Inner`) and accounts every access that goes through it
/// on a memory::memory_model: what the same access stream would cost on the modelled device
/// (LPDDR5, LPDDR5X, HBM3 or any other model). It is how an allocator's layout gets a price
/// without the device: the allocator sees a Backing, the caller reads the report.
///
///   read(offset, bytes)  / write(offset, bytes)   one contiguous run each
///   copy(dst, src, bytes)                         forwarded to Inner, accounted as a migration
///   report()                                      bytes, runs, bursts, row hits, activations,
///                                                 modelled time per access kind
///   reset_report()                                starts a new stream
///
/// The runs recorded between two reset_report() calls form one stream, issued back to back
/// the way a decode kernel issues its loads: channels and banks overlap them as the model
/// allows, and report().all().total_ns() is the modelled time to serve the whole stream.
/// Accounting one run costs O(1) whatever its length (see odma/memory/detail/dram_cost.hpp);
/// the first run of each access kind calibrates the model once per process (tens of
/// milliseconds).
///
/// Models Backing and AccountingBacking. Not thread-safe (like the allocator it serves).
template <Backing Inner = host>
class accounted {
public:
    using pointer = typename Inner::pointer;

    /// Throws std::invalid_argument for an inconsistent model, or an arena larger than the
    /// modelled device (arena offsets are device addresses).
    accounted(Inner inner, memory::memory_model model)
        : inner_(std::move(inner)), accountant_(checked(std::move(model), inner_.capacity())) {}

    std::size_t capacity() const noexcept { return inner_.capacity(); }
    pointer address(std::size_t offset) const { return inner_.address(offset); }

    /// Copies through Inner, then accounts the copy (reads of src, writes of dst) as one
    /// migration. If Inner's copy throws, nothing is accounted.
    void copy(std::size_t dst, std::size_t src, std::size_t bytes) {
        if (bytes == 0) return;
        check(dst, bytes, "copy");
        check(src, bytes, "copy");
        inner_.copy(dst, src, bytes);
        accountant_.copy(dst, src, bytes);
    }

    /// Accounts a read of [offset, offset + bytes) as one run. Throws std::out_of_range beyond
    /// the arena; a zero-byte read is no run.
    void read(std::size_t offset, std::size_t bytes) {
        if (bytes == 0) return;
        check(offset, bytes, "read");
        accountant_.access(memory::access_kind::read, offset, bytes);
    }
    /// Accounts a write of [offset, offset + bytes) as one run.
    void write(std::size_t offset, std::size_t bytes) {
        if (bytes == 0) return;
        check(offset, bytes, "write");
        accountant_.access(memory::access_kind::write, offset, bytes);
    }

    /// The stream since construction or the last reset_report().
    const memory::access_report& report() const noexcept { return accountant_.report(); }
    void reset_report() noexcept { accountant_.reset(); }

    /// On-demand backings stay on-demand when accounted: commit, decommit and granule_size
    /// are forwarded (not costed: mapping is not a DRAM access).
    bool commit(std::size_t offset, std::size_t bytes) requires CommittingBacking<Inner> {
        return inner_.commit(offset, bytes);
    }
    void decommit(std::size_t offset,
                  std::size_t bytes) noexcept requires CommittingBacking<Inner> {
        inner_.decommit(offset, bytes);
    }
    std::size_t granule_size() const noexcept requires requires(const Inner& i) {
        i.granule_size();
    }
    { return inner_.granule_size(); }

    const memory::memory_model& model() const noexcept { return accountant_.model(); }
    Inner& inner() noexcept { return inner_; }
    const Inner& inner() const noexcept { return inner_; }

private:
    static memory::memory_model checked(memory::memory_model m, std::size_t arena) {
        m.validate();
        if (arena > m.capacity_bytes)
            throw std::invalid_argument("odma::backing::accounted: the arena (" +
                                        std::to_string(arena) + " B) exceeds the modelled '" +
                                        m.name + "' device (" + std::to_string(m.capacity_bytes) +
                                        " B)");
        return m;
    }
    void check(std::size_t offset, std::size_t bytes, const char* what) const {
        if (bytes > capacity() || offset > capacity() - bytes)
            throw std::out_of_range(std::string("odma::backing::accounted::") + what +
                                    ": range beyond the arena");
    }

    Inner inner_;
    memory::accountant accountant_;
};

/// A modelled device with no bytes behind it: accounted over a placement_only arena of the
/// model's full capacity. What a simulator wants: placement and cost, no memory.
inline accounted<placement_only> make_placement_device(memory::memory_model model) {
    const std::size_t bytes = std::size_t(model.capacity_bytes);
    return accounted<placement_only>(placement_only(bytes), std::move(model));
}

}  // namespace odma::backing
