// odma/memory/access_report.hpp - what the cost model reports for a stream of accesses.
//
// Part of the cost model (namespace odma::memory, see memory_model.hpp): the fast path
// (detail/dram_cost.hpp) fills these in, the accounted backing hands them out.
#pragma once

#include <cstddef>
#include <cstdint>

namespace odma::memory {

/// What an access was for. Migrations are copies the allocator makes (Backing::copy). Reports
/// keep the kinds apart because a layout trades them: contiguity can cost migrations that a
/// paged layout never makes, while the paged layout pays on every read.
enum class access_kind : std::uint8_t { read, write, migration };
/// How many access kinds there are: the size of per-kind arrays.
inline constexpr std::size_t access_kinds = 3;

/// Totals for one access kind over one stream (between two reset_report() calls).
///
/// bursts counts column commands (a migration counts its reads and its writes); activations
/// are row openings charged to this kind; row_hits = bursts - activations. The time is split
/// into the two layers: dram_ns (this kind's share of the stream's DRAM time) and
/// discontinuity_ns (runs x the model's per-discontinuity cost).
struct access_totals {
    std::uint64_t bytes = 0;  ///< bytes read, written, or copied (a copy counts once)
    std::uint64_t runs = 0;   ///< contiguous accesses, i.e. discontinuities
    std::uint64_t bursts = 0;
    std::uint64_t row_hits = 0;
    std::uint64_t activations = 0;
    double dram_ns = 0.0;
    double discontinuity_ns = 0.0;

    double total_ns() const { return dram_ns + discontinuity_ns; }
    /// bytes per ns = GB/s; 0 when nothing was accessed.
    double effective_gbps() const { return total_ns() > 0 ? double(bytes) / total_ns() : 0.0; }
    double row_hit_rate() const { return bursts ? double(row_hits) / double(bursts) : 0.0; }

    access_totals& operator+=(const access_totals& o) {
        bytes += o.bytes;
        runs += o.runs;
        bursts += o.bursts;
        row_hits += o.row_hits;
        activations += o.activations;
        dram_ns += o.dram_ns;
        discontinuity_ns += o.discontinuity_ns;
        return *this;
    }
};

/// One stream's totals per access kind: what the cost model answers, and what
/// backing::accounted::report() returns. all().total_ns() is the modelled time of the stream.
struct access_report {
    access_totals read, write, migration;

    access_totals all() const {
        access_totals t = read;
        t += write;
        t += migration;
        return t;
    }
    access_totals& operator[](access_kind k) {
        return k == access_kind::read ? read : k == access_kind::write ? write : migration;
    }
    const access_totals& operator[](access_kind k) const {
        return k == access_kind::read ? read : k == access_kind::write ? write : migration;
    }
};

}  // namespace odma::memory
