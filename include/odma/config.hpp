// odma/config.hpp - the allocator's sizing parameters, validated at construction.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace odma {

/// Thrown by the allocator's constructor when a configuration cannot work. field() names the
/// offending config member (or "bucket_policy" / "backing" for the composed policies).
class config_error : public std::invalid_argument {
public:
    config_error(std::string_view field, const std::string& what)
        : std::invalid_argument("odma::config." + std::string(field) + ": " + what)
        , field_(field) {}

    /// The name of the field that failed validation, e.g. "bytes_per_token".
    std::string_view field() const noexcept { return field_; }

private:
    std::string_view field_;  // always a string literal
};

/// Sizing of one KV-cache allocator.
///
/// Lengths are in tokens; the allocator turns tokens into bytes with bytes_per_token. A lease's
/// tokens occupy at most max_runs contiguous, token-major runs; with max_runs = 1 (the default)
/// token i of the lease lives at `data(lease, plane) + i * bytes_per_plane_token()` in each
/// plane, which is what lets a region grow in place and lets a migration copy only the live
/// prefix. for_each_run() lists the runs in every case.
struct config {
    /// KV bytes of one token summed over all layers, keys and values
    /// (2 x layers x kv_heads x head_dim x dtype bytes; 57,344 for DeepSeek-R1-Distill-Qwen-7B).
    std::size_t bytes_per_token = 0;

    /// Longest sequence (prompt + generated tokens) the engine serves. The largest bucket of the
    /// bucket policy must equal it.
    std::uint32_t max_tokens = 0;

    /// Share of the arena kept back as the safety pool, in [0, 1). The pool takes leases that
    /// outgrow their bucket and cannot grow in place, and largest-bucket admissions when the
    /// general area is full.
    double safety_pool_fraction = 0.10;

    /// Target probability that a request outgrows its first reservation, in [0, 1). The
    /// allocator reserves the predictor's (1 - overflow_risk) quantile of the generated length.
    /// Lower risk reserves more memory per request (fewer concurrent requests, fewer in-place
    /// growths and migrations); higher risk packs more requests and pays with more growth work
    /// and, when memory is tight, preemptions. Predictors without uncertainty (constant, oracle)
    /// ignore it.
    double overflow_risk = 0.05;

    /// Number of planes each token's bytes are split into (1 = one region per lease).
    ///
    /// With planes = 2 x layers, each (layer, K/V) pair gets its own sub-arena and a lease owns
    /// the same token range in every plane, so one layer's keys of one request are a single
    /// contiguous run, as attention kernels read them. bytes_per_token must be a multiple of it.
    std::uint32_t planes = 1;

    /// Most contiguous runs one lease may occupy, in [1, max_lease_runs].
    ///
    /// 1 is strict contiguity (the ODMA mode): a lease that cannot grow in place migrates. With
    /// more, a lease that cannot grow in place first gets another run after its last one, so
    /// nothing is copied, and only a lease that already has max_runs runs migrates, into one run
    /// again. Each run costs a reader one discontinuity per pass (for_each_run lists them).
    std::uint32_t max_runs = 1;

    /// Granularity of runs, in tokens (>= 1). Every run starts at a multiple of it and holds
    /// a multiple of it, so a paged kernel with blocks of any divisor of it can read a lease
    /// through allocator::block_table(). 1 places token by token.
    std::uint32_t run_alignment = 1;

    /// Admission control by predicted demand, for leases of several runs. An admission that
    /// finds no extent for its whole reservation (the allocator is under pressure) and would
    /// start in a smaller run or in several runs is refused (no_memory) when the predicted
    /// demand of the live leases (the sum of their predicted lengths) plus its own would exceed
    /// demand_limit x the arena's token slots. Admissions that get their whole reservation are
    /// never limited. 0 turns the limit off: admit whenever the prompt fits, as paging does,
    /// and leave preemption to the engine.
    double demand_limit = 0.0;

    /// Soft reservations: when a growth finds no room, the other live leases hand the unused
    /// tail of their last run back (their reservation shrinks to what they hold) and the
    /// growth tries again before copying. A lease keeps its predicted room while memory allows and
    /// lends it only under pressure; a lease that lent its tail grows later in place if the room is
    /// still free, else by another run (or, at max_runs, by migrating). The pass over the
    /// live leases is O(live) and runs only on growths that found no room. Off by default:
    /// in odma-replay it added preemptions on every trace (docs/replay.md).
    bool lend_reserved = false;

    /// The arena the allocator uses at construction, in bytes over all planes (general area +
    /// safety pool; rounded down to whole tokens, then to run_alignment). 0, the default, uses
    /// the backing's whole capacity. Less keeps the rest of the backing for allocator::resize()
    /// to grow into: on an on-demand backing (ResizableBacking) reserving a large capacity costs
    /// address space only. Token slots keep the places the whole backing gives them (the plane
    /// stride is capacity_tokens() whatever the arena's size) and the safety pool sits at the
    /// top of them, so a resize never moves a plane or the pool.
    std::size_t arena_bytes = 0;

    /// Bytes of one token in one plane.
    constexpr std::size_t bytes_per_plane_token() const noexcept {
        return planes == 0 ? 0 : bytes_per_token / planes;
    }
};

/// The largest config::max_runs: a lease's run list lives beside its slot and is walked on
/// every read, so it stays short.
inline constexpr std::uint32_t max_lease_runs = 16;

namespace detail {

/// Throws config_error for the first field of `c` that cannot work; arena checks need the
/// backing and bucket policy and live in the allocator.
inline void validate_fields(const config& c) {
    if (c.bytes_per_token == 0) throw config_error("bytes_per_token", "must be greater than zero");
    if (c.max_tokens == 0) throw config_error("max_tokens", "must be greater than zero");
    if (c.max_tokens > (1u << 30))
        throw config_error("max_tokens",
                           "must be at most 2^30 tokens, got " + std::to_string(c.max_tokens));
    // Written as !(in range) so that NaN is rejected too.
    if (!(c.safety_pool_fraction >= 0.0 && c.safety_pool_fraction < 1.0))
        throw config_error("safety_pool_fraction",
                           "must be in [0, 1), got " + std::to_string(c.safety_pool_fraction));
    if (!(c.overflow_risk >= 0.0 && c.overflow_risk < 1.0))
        throw config_error("overflow_risk",
                           "must be in [0, 1), got " + std::to_string(c.overflow_risk));
    if (!(c.demand_limit >= 0.0 && c.demand_limit <= 1e6))
        throw config_error("demand_limit",
                           "must be in [0, 1e6], got " + std::to_string(c.demand_limit));
    if (c.planes == 0) throw config_error("planes", "must be greater than zero");
    if (c.max_runs == 0 || c.max_runs > max_lease_runs)
        throw config_error("max_runs", "must be in [1, " + std::to_string(max_lease_runs) +
                                           "], got " + std::to_string(c.max_runs));
    if (c.run_alignment == 0 || c.run_alignment > (1u << 20))
        throw config_error("run_alignment",
                           "must be in [1, 2^20] tokens, got " + std::to_string(c.run_alignment));
    if (c.bytes_per_token % c.planes != 0)
        throw config_error("planes", "must divide bytes_per_token (" +
                                         std::to_string(c.bytes_per_token) + " bytes into " +
                                         std::to_string(c.planes) + " planes)");
}

}  // namespace detail
}  // namespace odma
