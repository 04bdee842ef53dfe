// odma/backing/lpddr_emulated.hpp - a Backing that accounts every access on a DRAM cost model.
#pragma once

#include <odma/backing/host.hpp>
#include <odma/backing/memory_model.hpp>
#include <odma/backing/simulated.hpp>
#include <odma/concepts.hpp>
#include <odma/detail/dram_cost.hpp>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace odma::backing {

/// Wraps a backing (the bytes live in `Inner`) and accounts every access that goes through it
/// on a memory_model: what the same access stream would cost on an LPDDR5 (or HBM3) device.
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
/// Accounting one run costs O(1) whatever its length (see odma/detail/dram_cost.hpp); the first
/// run of each access kind calibrates the model once per process (tens of milliseconds).
///
/// Models Backing and AccountingBacking. Not thread-safe (like the allocator it serves).
template <Backing Inner = host>
class lpddr_emulated {
public:
    using pointer = typename Inner::pointer;

    /// Throws std::invalid_argument for an inconsistent model, or an arena larger than the
    /// modelled device (arena offsets are device addresses).
    lpddr_emulated(Inner inner, memory_model model)
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
        accountant_.access(access_kind::read, offset, bytes);
    }
    /// Accounts a write of [offset, offset + bytes) as one run.
    void write(std::size_t offset, std::size_t bytes) {
        if (bytes == 0) return;
        check(offset, bytes, "write");
        accountant_.access(access_kind::write, offset, bytes);
    }

    /// The stream since construction or the last reset_report().
    const access_report& report() const noexcept { return accountant_.report(); }
    void reset_report() noexcept { accountant_.reset(); }

    const memory_model& model() const noexcept { return accountant_.model(); }
    Inner& inner() noexcept { return inner_; }
    const Inner& inner() const noexcept { return inner_; }

private:
    static memory_model checked(memory_model m, std::size_t arena) {
        m.validate();
        if (arena > m.capacity_bytes)
            throw std::invalid_argument("odma::backing::lpddr_emulated: the arena (" +
                                        std::to_string(arena) + " B) exceeds the modelled '" +
                                        m.name + "' device (" + std::to_string(m.capacity_bytes) +
                                        " B)");
        return m;
    }
    void check(std::size_t offset, std::size_t bytes, const char* what) const {
        if (bytes > capacity() || offset > capacity() - bytes)
            throw std::out_of_range(std::string("odma::backing::lpddr_emulated::") + what +
                                    ": range beyond the arena");
    }

    Inner inner_;
    detail::dram_accountant accountant_;
};

/// A modelled device with no bytes behind it: lpddr_emulated over a simulated arena of the
/// model's full capacity.
inline lpddr_emulated<simulated> make_simulated_device(memory_model model) {
    const std::size_t bytes = std::size_t(model.capacity_bytes);
    return lpddr_emulated<simulated>(simulated(bytes), std::move(model));
}

}  // namespace odma::backing
