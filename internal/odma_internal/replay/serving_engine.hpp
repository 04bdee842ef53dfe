// odma_internal/replay/serving_engine.hpp - a continuous-batching serving model that replays
// a workload through one KV-cache allocator and measures what its memory layout costs.
//
// The serving model (one model replica on one accelerator, or on one card of N under tensor
// parallelism: serving_model holds that card's slice, see tensor_parallel_slice), modelled on
// vLLM v1's scheduler:
//
//   iteration   One forward pass. It carries one new token for every running request that has
//               finished its prefill (a decode) and, within a token budget
//               (max_batched_tokens), prompt tokens of requests still prefilling (chunked
//               prefill). The first token of a request is sampled when its prefill completes.
//   admission   Waiting requests are admitted first come, first served while the batch has
//               room (max_num_seqs) and token budget left, and only in iterations that
//               preempted nobody. admit() on the allocator under test decides: when it says
//               no_memory the queue waits (head-of-line), as in vLLM.
//   growth      Before a decode, the request's KV must hold prompt + generated tokens: extend().
//               When that fails, the most recently admitted running request is preempted
//               (recompute mode: its KV is dropped, it goes back to the front of the queue and
//               is prefilled again over prompt + the tokens generated so far), until the
//               extension succeeds or the request preempted itself.
//   time        Each iteration takes max(compute, memory):
//                 compute = (2 x params x tokens + attention FLOPs) / (peak x efficiency)
//                 memory  = weights read + KV read + migration copies, each costed on the
//                           device's DRAM model (odma::backing::accounted)
//               The KV read is the stream of runs the allocator's layout implies: one run per
//               request and plane for a contiguous allocator, one per block and plane for a
//               paged one. Reads of `kv_planes_sampled` planes (one layer's K and V by
//               default) are modelled and scaled to all planes: every layer has the same
//               layout, so the stream of one layer is the stream of each. KV writes of new
//               tokens (under 1% of the traffic) and activations are not modelled.
//
// Metrics are measured over the loaded window [0, last time the queue drained after the last
// arrival]: past it only the tail of the batch is finishing, which says little about an
// allocator. Latencies cover every request.
//
// The parts, each one job, composed by serve() at the bottom:
//   batch_scheduler       the queue and the batch: arrivals, admission (admit or resume),
//                         growth with preemption, and the outcome of an iteration
//   cost_iteration()      one iteration's time: FLOPs, and the KV read stream of every request
//                         in it through the device's cost model (read_prefix)
//   boundary_log          the bucket boundaries over time, for allocators that have buckets
//   window_averages()     time-averaged utilization, batch and throughput over the window
//   latency_percentiles() TTFT and TPOT percentiles
//   utilization_series()  utilization over time, in equal time bins
// The engine teaches the allocator nothing by hand: it admits, resumes, extends, releases and
// abandons, and the allocator's policies learn from that (odma::KvAllocator).
#pragma once

#include <odma_internal/replay/presets.hpp>
#include <odma_internal/replay/workload.hpp>

#include <odma/backing/accounted.hpp>
#include <odma/backing/placement_only.hpp>
#include <odma/errc.hpp>
#include <odma/kv_allocator.hpp>
#include <odma/lease.hpp>
#include <odma/predict/oracle.hpp>
#include <odma/stats.hpp>

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <deque>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace odma::replay {

/// What happens to a preempted request's KV.
enum class preemption_mode {
    /// Dropped; the request is prefilled again over prompt + generated tokens when it resumes
    /// (vLLM V1's only mode).
    recompute,
    /// Copied to host memory over the device's host link and back when it resumes, instead
    /// of recomputed (vLLM V0's swap mode): the link time is charged to the iterations that
    /// swap, serially (nothing overlaps it with compute), and no prefill is repeated.
    swap,
};

/// Knobs of the serving engine (vLLM's names where it has one).
struct serving_options {
    /// Recompute (vLLM V1) or swap to host memory (vLLM V0's swap space).
    preemption_mode preemption = preemption_mode::recompute;
    /// Most requests in one batch (vLLM max_num_seqs).
    std::uint32_t max_num_seqs = 256;
    /// Token budget of one iteration: decodes plus prefill chunks (vLLM max_num_batched_tokens).
    std::uint32_t max_batched_tokens = 2048;
    /// Planes whose KV reads go through the cost model, scaled to all planes; 0 = all.
    std::uint32_t kv_planes_sampled = 2;
    /// Points of the utilization-over-time series kept for plots.
    std::size_t series_points = 480;
    /// The decode instance of a disaggregated deployment (Mooncake, DistServe, Splitwise): a
    /// request arrives with its prompt's KV computed by a prefill pool, so admission places
    /// that KV and the request decodes from the next iteration on; no prefill runs here. The
    /// transfer of the prompt's KV from the prefill pool is not charged. A preempted request
    /// (recompute mode) is prefilled again by the pool: its tokens still count as recomputed.
    bool remote_prefill = false;
    /// eLLM-style ballooning for allocators that can resize() their arena: the activations of
    /// each iteration and the KV cache share one pool of balloon_pool_bytes. Before an
    /// iteration runs, the KV arena shrinks to the pool minus what that iteration's
    /// activations need (model_preset::activation_bytes), and it grows back when they need
    /// less. A shrink over live leases moves them within balloon_copy_budget_bytes (costed as
    /// migrations); activation bytes it still cannot free are spilled to host memory and back
    /// over the host link, charged serially (eLLM's CPU extension). 0 = a fixed split (the
    /// arena never changes).
    std::uint64_t balloon_pool_bytes = 0;
    std::uint64_t balloon_copy_budget_bytes = std::uint64_t(256) << 20;
    /// The arena grows back only past the largest activation need of the last this many
    /// iterations, so that it does not lend the KV cache what the next prefill takes back.
    std::uint32_t balloon_window = 64;
    /// Tiered allocators: moves between the tiers cost nothing (the tier-bound row's
    /// assumption: it shows what placement could gain if moving were free).
    bool free_tier_moves = false;
};

/// The model on the device: presets plus the one-time cost of reading the weights. With tensor
/// parallelism over N cards, `model` is one card's slice (tensor_parallel_slice): the engine
/// simulates one card, all cards being symmetric.
struct serving_model {
    model_preset model;
    device_preset device;
    double weights_ns = 0;  ///< one sequential read of all weights on the device's DRAM model
    std::uint32_t tensor_parallel = 1;  ///< cards the model is split over

    /// KV-cache bytes the engine has (device_preset::kv_bytes).
    std::uint64_t kv_bytes() const { return device.kv_bytes(model); }
};

/// Builds a serving_model for one card of `tensor_parallel` (model split N ways, see
/// tensor_parallel_slice), costing the card's weight read on a fresh device model.
inline serving_model make_serving_model(model_preset m, device_preset d,
                                        std::uint32_t tensor_parallel = 1) {
    serving_model s{tensor_parallel_slice(m, tensor_parallel), std::move(d), 0.0, tensor_parallel};
    auto dev = backing::accounted<backing::placement_only>(
        backing::placement_only(static_cast<std::size_t>(s.model.weight_bytes)), s.device.memory);
    dev.read(0, static_cast<std::size_t>(s.model.weight_bytes));
    s.weights_ns = dev.report().all().total_ns();
    return s;
}

/// What one request experienced.
struct request_outcome {
    double arrival_s = 0;
    double first_token_s = -1;  ///< when its first token was sampled
    double finish_s = -1;
    std::uint32_t output_tokens = 0;  ///< tokens generated (equals the workload's)
    std::uint32_t preemptions = 0;
};

/// A point of a time series.
struct time_point {
    double t = 0;
    double value = 0;
};

/// Bucket boundaries from time t on.
struct boundary_snapshot {
    double t = 0;
    std::vector<std::uint32_t> capacities;
};

/// Everything one replay measured.
struct replay_metrics {
    double window_s = 0;    ///< length of the loaded window (see file comment)
    double makespan_s = 0;  ///< until the last request finished

    // Over the window.
    double utilization = 0;           ///< time-averaged used KV bytes / KV capacity
    double reserved_utilization = 0;  ///< time-averaged used bytes / reserved bytes
    double reserved_share = 0;        ///< time-averaged reserved bytes / KV capacity
    double mean_running = 0;          ///< time-averaged requests in the batch
    double rps = 0;                   ///< requests finished per second
    double tps = 0;                   ///< output tokens per second

    // Over all requests.
    double ttft_p50_s = 0, ttft_p99_s = 0;
    double tpot_p50_s = 0, tpot_p99_s = 0;
    std::uint64_t finished = 0;
    std::uint64_t generated_tokens = 0;
    std::uint64_t preemptions = 0;
    std::uint64_t recomputed_tokens = 0;  ///< prompt + generated tokens prefilled again
    std::uint64_t swapped_bytes = 0;      ///< KV copied to host and back (swap mode), both ways
    std::uint64_t migrations = 0;
    std::uint64_t migrated_bytes = 0;
    std::uint64_t in_place_growths = 0;
    std::uint64_t safety_pool_hits = 0;  ///< admissions and migrations into the safety pool
    std::uint64_t iterations = 0;
    std::uint64_t boundary_changes = 0;  ///< times the bucket boundaries changed

    // Where the time went, summed over all iterations (ns).
    double total_ns = 0;
    double compute_bound_ns = 0;  ///< iterations whose compute exceeded their memory time
    double weights_ns = 0;
    double kv_dram_ns = 0;           ///< KV reads, DRAM timing layer
    double kv_discontinuity_ns = 0;  ///< KV reads, per-run (accelerator-side) layer
    double migration_ns = 0;
    double swap_ns = 0;  ///< host-link time of swaps (swap mode)
    /// Ballooning (serving_options::balloon_pool_bytes): activation bytes spilled to host
    /// memory and back and the host-link time they took (part of swap_ns); resizes that
    /// changed the arena; the time-averaged arena.
    std::uint64_t spilled_activation_bytes = 0;
    double activation_spill_ns = 0;
    std::uint64_t balloon_resizes = 0;
    /// Tiered allocators (docs/tiers.md): slow-tier KV reads (the lower of the tier's DRAM
    /// model and its link), and moves between the tiers over the link. kv_dram_ns and
    /// kv_discontinuity_ns then count the fast tier's reads only.
    double slow_kv_ns = 0;
    double tier_move_ns = 0;
    std::uint64_t slow_kv_bytes = 0;     ///< KV bytes read from the slow tier (scaled)
    std::uint64_t tier_moved_bytes = 0;  ///< bytes moved between the tiers, both ways
    std::uint64_t kv_runs = 0;           ///< KV read runs (sampled planes, scaled)
    std::uint64_t kv_bytes = 0;          ///< KV bytes read (scaled)
    /// Decodes only, sampled planes, unscaled: the runs for_each_run yielded for the decoding
    /// request, and the (decode, plane) reads they were yielded for.
    std::uint64_t decode_runs = 0;
    std::uint64_t decode_plane_reads = 0;

    /// Mean contiguous runs read per request and plane per decode step ("KV runs"): 1 for a
    /// contiguous lease of one run, ceil(context / block) for a paged one.
    double runs_per_decode_read() const {
        return decode_plane_reads ? double(decode_runs) / double(decode_plane_reads) : 0.0;
    }

    /// Memory work summed over both tiers (the tiers' paths overlap within an iteration, so
    /// this can exceed the time they took; it is the denominator of the shares in the table).
    double memory_ns() const {
        return weights_ns + kv_dram_ns + kv_discontinuity_ns + migration_ns + slow_kv_ns +
               tier_move_ns;
    }
    /// Effective KV read bandwidth, GB/s.
    double kv_gbps() const {
        const double ns = kv_dram_ns + kv_discontinuity_ns + slow_kv_ns;
        return ns > 0 ? double(kv_bytes) / ns : 0.0;
    }
};

/// The result of one replay.
struct replay_result {
    std::string policy;
    replay_metrics metrics;
    odma::stats allocator_stats;                ///< the allocator's own counters at the end
    std::vector<time_point> utilization;        ///< used / capacity, time-binned
    std::vector<boundary_snapshot> boundaries;  ///< empty for allocators without buckets
    std::vector<request_outcome> requests;      ///< in workload order
};

/// Called with the share of requests finished, now and then.
using progress_callback = std::function<void(double)>;

/// What the engine needs of an allocator: odma's KV-cache interface, on a backing that accounts
/// the reads and copies it is asked for (odma::backing::accounted).
template <class A>
concept replayable_allocator = KvAllocator<A> && requires(A& a) {
    a.backing().reset_report();
    a.backing().report().read.dram_ns;
    a.backing().report().migration.total_ns();
};

namespace detail {

/// Allocators whose bucket boundaries can be looked at (for boundary_log; reporting only).
template <class A>
concept exposes_bucket_boundaries = requires(A& a) {
    a.bucket_policy().boundaries();
};

/// Allocators whose arena can grow and shrink (odma::allocator on a ResizableBacking).
template <class A>
concept elastic_allocator = requires(A& a, std::size_t bytes) {
    a.resize(bytes, bytes).arena_bytes();
    a.resize(bytes, bytes).freeable_bytes();
};

/// Tiered allocators (odma::tiered): reads are costed per tier, moves over the link.
template <class A>
concept tiered_allocator = requires(A& a) {
    a.backing().fast().report();
    a.backing().slow().report();
    a.tier_stats().moved_bytes;
    a.rebalance();
};

/// Tiered allocators whose tier policy predicts with the oracle (the tier-bound row): it is
/// told each request's true output length before admission.
template <class A>
concept tier_oracle_predicted = requires(A& a) {
    a.policy().predictor();
}
&&std::is_same_v<std::remove_cvref_t<decltype(std::declval<A&>().policy().predictor())>,
                 predict::oracle>;

/// Allocators whose predictor is the oracle, which is told each request's true remaining
/// length before its admission: that is the oracle's input, not something it learns.
template <class A>
concept oracle_predicted = requires(A& a) {
    a.predictor();
}
&&std::is_same_v<std::remove_cvref_t<decltype(std::declval<A&>().predictor())>, predict::oracle>;

// --- The queue and the batch -------------------------------------------------------------------

/// One request's progress over its whole life (across preemptions).
struct request_state {
    std::uint32_t generated = 0;  ///< tokens generated so far, in all admissions
    std::uint32_t preemptions = 0;
    bool swapped = false;  ///< its KV waits in host memory (swap mode)
    double first_token = -1, finish = -1;
};

/// A request in the batch: its lease, and how far this admission has prefilled.
struct running_request {
    std::uint32_t index;  ///< into workload::requests
    lease handle;
    std::uint32_t base;       ///< tokens this admission prefills: prompt + generated before it
    std::uint32_t prefilled;  ///< of base
};

/// One request's share of an iteration: a prefill chunk or one decode.
struct work_item {
    std::size_t slot;  ///< into batch_scheduler::running()
    std::uint32_t tokens;
    bool decode;
};

/// What an iteration's outcome was: tokens sampled and requests finished.
struct iteration_outcome {
    std::uint32_t tokens = 0;
    std::uint32_t finished = 0;
};

/// The scheduler of vLLM v1 as the file comment describes it: a FCFS queue, a batch of running
/// requests, chunked prefill within a token budget, growth before each decode, and recompute
/// preemption of the newest request when growth finds no room. The allocator decides every
/// placement; the scheduler only asks (admit, resume, extend) and reports (release, abandon).
template <replayable_allocator A>
class batch_scheduler {
public:
    batch_scheduler(A& kv, const workload& w, const serving_options& o, replay_metrics& m)
        : kv_(kv), w_(w), o_(o), m_(m), state_(w.requests.size()) {}

    /// Queues the requests that have arrived by time t.
    void arrive_until(double t) {
        while (next_ < w_.requests.size() && w_.requests[next_].arrival_s <= t)
            waiting_.push_back(std::uint32_t(next_++));
    }
    bool idle() const { return running_.empty() && waiting_.empty(); }
    bool all_arrived() const { return next_ >= w_.requests.size(); }
    bool queue_empty() const { return waiting_.empty(); }
    double next_arrival() const { return w_.requests[next_].arrival_s; }
    const std::vector<running_request>& running() const { return running_; }
    const std::vector<request_state>& states() const { return state_; }

    /// Host-link bytes the last plan() swapped out and in (swap mode); the caller costs them.
    std::uint64_t take_swapped_bytes() { return std::exchange(swapped_bytes_, 0); }

    /// Plans one iteration into `work`: continues prefills and grows and decodes the running
    /// requests (oldest first, preempting the newest when growth finds no room), then admits
    /// waiting requests if nobody was preempted. `work` is empty when everyone was preempted.
    void plan(std::vector<work_item>& work) {
        work.clear();
        std::uint32_t budget = o_.max_batched_tokens;
        const bool preempted = schedule_running(work, budget);
        if (!preempted) admit_waiting(work, budget);
    }

    /// Applies a planned iteration that ended at time t: completed prefills and decodes each
    /// sample one token; requests that reached their length finish and leave the batch.
    iteration_outcome complete(const std::vector<work_item>& work, double t) {
        iteration_outcome out;
        for (const work_item& wi : work) {
            running_request& a = running_[wi.slot];
            if (!wi.decode) {
                a.prefilled += wi.tokens;
                if (a.prefilled < a.base) continue;
            }
            request_state& rs = state_[a.index];
            ++rs.generated;
            ++out.tokens;
            if (rs.first_token < 0) rs.first_token = t;
            if (rs.generated == w_.requests[a.index].output_tokens) {
                rs.finish = t;
                finish(a);
                a.handle = lease{};  // marks the slot for removal
                ++out.finished;
            }
        }
        if (out.finished)
            std::erase_if(running_, [](const running_request& a) { return a.handle.empty(); });
        return out;
    }

private:
    /// Context the request's KV must hold before its next decode.
    std::uint32_t context(const running_request& a) const {
        return w_.requests[a.index].prompt_tokens + state_[a.index].generated;
    }

    /// The running requests' share of the iteration; true when it preempted someone.
    bool schedule_running(std::vector<work_item>& work, std::uint32_t& budget) {
        bool preempted = false;
        for (std::size_t i = 0; i < running_.size() && budget > 0; ++i) {
            running_request& a = running_[i];
            if (a.prefilled < a.base) {
                const std::uint32_t chunk = std::min(a.base - a.prefilled, budget);
                work.push_back({i, chunk, false});
                budget -= chunk;
                continue;
            }
            const auto grown = grow_or_preempt(i);
            preempted = preempted || grown.preempted;
            if (grown.preempted_self) break;
            work.push_back({i, 1, true});
            --budget;
        }
        return preempted;
    }

    struct growth_outcome {
        bool preempted = false;       ///< someone was preempted to make room
        bool preempted_self = false;  ///< ... and it was the growing request itself
    };

    /// Grows running request `i` to its context, preempting the newest request (the last of
    /// the batch) until the extension succeeds or request `i` was preempted itself.
    growth_outcome grow_or_preempt(std::size_t i) {
        growth_outcome out;
        const std::uint32_t need = context(running_[i]);
        for (;;) {
            const auto g = kv_.extend(running_[i].handle, need);
            if (g) {
                if (*g == growth::in_place) ++m_.in_place_growths;
                return out;
            }
            if (g.error() != errc::no_memory)
                throw std::runtime_error("extend failed: " + std::string(to_string(g.error())));
            out.preempted_self = running_.size() - 1 == i;
            preempt_newest();
            out.preempted = true;
            if (out.preempted_self) return out;
        }
    }

    /// Recompute-mode preemption of the newest request: its KV is abandoned and it goes back to
    /// the front of the queue, to be prefilled again over prompt + what it had generated.
    void preempt_newest() {
        running_request victim = std::move(running_.back());
        running_.pop_back();
        if (!kv_.abandon(victim.handle)) throw std::runtime_error("abandon failed on a live lease");
        request_state& s = state_[victim.index];
        ++s.preemptions;
        ++m_.preemptions;
        // Swap only what it holds: a request still prefilling has nothing worth keeping.
        if (o_.preemption == preemption_mode::swap && victim.prefilled >= victim.base) {
            s.swapped = true;
            swapped_bytes_ += kv_bytes(victim.index);
        } else {
            m_.recomputed_tokens += w_.requests[victim.index].prompt_tokens + s.generated;
        }
        waiting_.push_front(victim.index);
    }

    /// KV bytes of request i's context (prompt + generated) over all planes.
    std::uint64_t kv_bytes(std::uint32_t i) const {
        return std::uint64_t(w_.requests[i].prompt_tokens + state_[i].generated) *
               kv_.config().bytes_per_token;
    }

    /// Admits waiting requests first come first served while the batch has room and budget;
    /// stops at the first the allocator has no room for (head-of-line, as vLLM).
    void admit_waiting(std::vector<work_item>& work, std::uint32_t& budget) {
        while (budget > 0 && !waiting_.empty() && running_.size() < o_.max_num_seqs) {
            const std::uint32_t i = waiting_.front();
            const std::uint32_t prefill = w_.requests[i].prompt_tokens + state_[i].generated;
            auto r = admit(i);
            if (!r) {
                if (r.error() != errc::no_memory || running_.empty())
                    throw std::runtime_error("request " + std::to_string(w_.requests[i].id) + " (" +
                                             std::to_string(prefill) +
                                             " prompt tokens) can never be admitted: " +
                                             std::string(to_string(r.error())));
                return;
            }
            waiting_.pop_front();
            if (o_.remote_prefill && !state_[i].swapped) {  // prefilled elsewhere
                running_.push_back({i, *r, prefill, prefill});
                continue;
            }
            if (state_[i].swapped) {  // its KV comes back over the link: nothing to prefill
                state_[i].swapped = false;
                swapped_bytes_ += kv_bytes(i);
                running_.push_back({i, *r, prefill, prefill});
                continue;
            }
            running_.push_back({i, *r, prefill, 0});
            const std::uint32_t chunk = std::min(prefill, budget);
            work.push_back({running_.size() - 1, chunk, false});
            budget -= chunk;
        }
    }

    /// Asks the allocator for request i's KV: admit() when it is new, resume() when it comes
    /// back from a preemption with the tokens it had generated.
    result<lease> admit(std::uint32_t i) {
        const replay_request& r = w_.requests[i];
        const request_state& s = state_[i];
        if constexpr (oracle_predicted<A>)
            kv_.predictor().tell(r.id, r.output_tokens - s.generated);
        if constexpr (tier_oracle_predicted<A>)
            kv_.policy().predictor().tell(r.id, r.output_tokens);
        const odma::request q = r.as_request(w_.max_new_tokens);
        return s.preemptions == 0 ? kv_.admit(q) : kv_.resume(q, s.generated);
    }

    /// A request generated its last token: release() tells the allocator its whole length,
    /// across preemptions (see odma::allocator::resume).
    void finish(const running_request& a) {
        if (!kv_.release(a.handle, state_[a.index].generated))
            throw std::runtime_error("release failed");
    }

    A& kv_;
    const workload& w_;
    const serving_options& o_;
    replay_metrics& m_;
    std::vector<request_state> state_;
    std::vector<running_request> running_;
    std::deque<std::uint32_t> waiting_;
    std::size_t next_ = 0;             ///< next request to arrive
    std::uint64_t swapped_bytes_ = 0;  ///< since the last take_swapped_bytes()
};

// --- Iteration costing ----------------------------------------------------------------------

/// Accounts reads of the first `tokens` tokens of `l` in planes [0, planes) on the backing:
/// the runs an attention kernel issues for that request in one layer. The lease's runs
/// (for_each_run) cover its used tokens; a prefill reads only the prefix prefilled so far.
/// Returns the runs for_each_run yielded, over all the planes.
template <replayable_allocator A>
std::uint64_t read_prefix(A& kv, const lease& l, std::uint32_t tokens, std::uint32_t planes) {
    if (tokens == 0) return 0;
    auto& dev = kv.backing();
    const std::size_t prefix_bytes = std::size_t(tokens) * kv.config().bytes_per_plane_token();
    std::uint64_t runs = 0;
    for (std::uint32_t p = 0; p < planes; ++p) {
        std::size_t left = prefix_bytes;
        const auto walked = kv.for_each_run(l, p, [&](std::size_t offset, std::size_t bytes) {
            ++runs;
            if (left == 0) return;
            const std::size_t n = std::min(left, bytes);
            dev.read(offset, n);
            left -= n;
        });
        if (!walked || left != 0)
            throw std::logic_error("odma-replay: read past the tokens a lease holds");
    }
    return runs;
}

/// Where one iteration's time went (ns), and the KV read stream it costed.
struct iteration_cost {
    double compute_ns = 0;
    double weights_ns = 0;
    double kv_dram_ns = 0;
    double kv_discontinuity_ns = 0;
    double migration_ns = 0;
    double swap_ns = 0;  ///< host-link time, serial to the rest
    /// Tiered allocators: the slow tier's path (its KV reads, and moves over the link), which
    /// runs alongside the fast tier's.
    double slow_kv_ns = 0;
    double tier_move_ns = 0;
    std::uint64_t slow_kv_bytes = 0;
    std::uint64_t tier_moved_bytes = 0;
    std::uint64_t kv_runs = 0;
    std::uint64_t kv_bytes = 0;
    std::uint64_t decode_runs = 0;         ///< see replay_metrics::decode_runs
    std::uint64_t decode_plane_reads = 0;  ///< see replay_metrics::decode_plane_reads

    /// The fast tier's path (weights, its KV reads, migrations) and the slow tier's (reads and
    /// moves over the link) run at once: the longer one is the memory time. Without a slow
    /// tier the second is 0.
    double memory_ns() const {
        return std::max(weights_ns + kv_dram_ns + kv_discontinuity_ns + migration_ns,
                        slow_kv_ns + tier_move_ns);
    }
    /// The iteration takes max(compute, memory), plus the swaps it waited for.
    double total_ns() const { return std::max(memory_ns(), compute_ns) + swap_ns; }
};

/// Which planes' reads are costed, and the factor that scales them to all planes.
struct plane_sample {
    std::uint32_t planes;
    double scale;
};

inline plane_sample sample_planes(std::uint32_t planes_total, std::uint32_t sampled) {
    const std::uint32_t planes = sampled == 0 ? planes_total : std::min(sampled, planes_total);
    return {planes, double(planes_total) / double(planes)};
}

/// The report of the fast tier (the device's own memory): the whole backing's for allocators
/// of one tier.
template <replayable_allocator A>
const memory::access_report& fast_report(A& kv) {
    if constexpr (tiered_allocator<A>)
        return kv.backing().fast().report();
    else
        return kv.backing().report();
}

/// Costs one planned iteration: FLOPs of its prefill chunks and decodes on the device's
/// compute, and the weights, KV reads (sampled planes, scaled) and the migrations the
/// allocator issued since the backing's report was last reset, on its DRAM model.
template <replayable_allocator A>
iteration_cost cost_iteration(A& kv, const std::vector<work_item>& work,
                              const batch_scheduler<A>& batch, const workload& w,
                              const serving_model& sm, plane_sample planes) {
    const model_preset& model = sm.model;
    double flops = 0;
    std::uint64_t decode_runs = 0, decodes = 0;
    for (const work_item& wi : work) {
        const running_request& a = batch.running()[wi.slot];
        if (wi.decode) {
            const std::uint32_t ctx =
                w.requests[a.index].prompt_tokens + batch.states()[a.index].generated;
            flops += model.linear_flops_per_token() + model.attention_flops(ctx);
            decode_runs += read_prefix(kv, a.handle, ctx, planes.planes);
            ++decodes;
        } else {
            const double d = a.prefilled, c = wi.tokens;
            flops +=
                c * model.linear_flops_per_token() + model.attention_flops(c * d + c * (c + 1) / 2);
            read_prefix(kv, a.handle, a.prefilled, planes.planes);
        }
    }
    iteration_cost c;
    c.compute_ns = flops / sm.device.compute_flops_per_ns();
    c.weights_ns = sm.weights_ns;
    const auto& rep = fast_report(kv);
    c.kv_dram_ns = rep.read.dram_ns * planes.scale;
    c.kv_discontinuity_ns = rep.read.discontinuity_ns * planes.scale;
    c.migration_ns = rep.migration.total_ns();
    c.kv_runs = static_cast<std::uint64_t>(double(rep.read.runs) * planes.scale);
    c.kv_bytes = static_cast<std::uint64_t>(double(rep.read.bytes) * planes.scale);
    if constexpr (tiered_allocator<A>) {
        // The accelerator reads the slow tier at the lower of its DRAM rate and the link's.
        const auto& slow = kv.backing().slow().report();
        const double link = sm.device.slow_tier ? sm.device.slow_tier->link_gbps : 0.0;
        if (!(link > 0)) throw std::invalid_argument("device has no slow tier to read from");
        const double bytes = double(slow.read.bytes) * planes.scale;
        c.slow_kv_ns =
            std::max(slow.read.total_ns() * planes.scale, bytes / link) + slow.migration.total_ns();
        c.slow_kv_bytes = static_cast<std::uint64_t>(bytes);
        c.kv_runs += static_cast<std::uint64_t>(double(slow.read.runs) * planes.scale);
        c.kv_bytes += c.slow_kv_bytes;
    }
    c.decode_runs = decode_runs;
    c.decode_plane_reads = decodes * planes.planes;
    return c;
}

/// Ballooning, before a planned iteration runs: sizes the KV arena to the pool minus the
/// activations of `work` (its tokens; one sampled token per decode and per prefill that
/// completes). When leases block the shrink, it moves them within the copy budget, else
/// shrinks as far as that budget allows; returns the activation bytes still missing (spilled
/// to host memory). Migrations land in the backing's report, costed with the iteration.
template <replayable_allocator A>
std::uint64_t inflate_for_activations(A& kv, const std::vector<work_item>& work,
                                      const batch_scheduler<A>& batch, const serving_model& sm,
                                      const serving_options& o, std::deque<std::uint64_t>& recent,
                                      replay_metrics& m) {
    double tokens = 0, sampled = 0;
    for (const work_item& wi : work) {
        tokens += wi.tokens;
        const running_request& a = batch.running()[wi.slot];
        if (wi.decode || a.prefilled + wi.tokens >= a.base) sampled += 1;
    }
    const auto need = static_cast<std::uint64_t>(sm.model.activation_bytes(tokens, sampled));
    recent.push_back(need);
    if (recent.size() > std::max<std::uint32_t>(o.balloon_window, 1)) recent.pop_front();
    const std::uint64_t pool = o.balloon_pool_bytes;
    const std::uint64_t target = need >= pool ? 0 : pool - need;
    const std::uint64_t now = kv.stats().arena_bytes;
    if (target >= now) {  // room to spare: grow back, but keep what recent iterations needed
        const std::uint64_t keep = *std::max_element(recent.begin(), recent.end());
        const std::uint64_t grown = keep >= pool ? 0 : pool - keep;
        if (grown > now && kv.resize(grown, 0)) ++m.balloon_resizes;
        return 0;
    }
    std::uint64_t arena = now;
    const auto r = kv.resize(target, o.balloon_copy_budget_bytes);
    if (r) {
        arena = r.arena_bytes();
        ++m.balloon_resizes;
    } else if (r.freeable_bytes() > 0) {  // blocked: free what the budget allows
        if (const auto partial = kv.resize(now - r.freeable_bytes(), o.balloon_copy_budget_bytes)) {
            arena = partial.arena_bytes();
            ++m.balloon_resizes;
        }
    }
    const std::uint64_t available = pool > arena ? pool - arena : 0;
    return need > available ? need - available : 0;
}

/// Adds one iteration's cost to the run's totals.
inline void add_cost(replay_metrics& m, const iteration_cost& c) {
    const double memory_ns = c.memory_ns(), dt_ns = c.total_ns();
    m.total_ns += dt_ns;
    if (c.compute_ns > memory_ns) m.compute_bound_ns += dt_ns;
    m.weights_ns += c.weights_ns;
    m.kv_dram_ns += c.kv_dram_ns;
    m.kv_discontinuity_ns += c.kv_discontinuity_ns;
    m.migration_ns += c.migration_ns;
    m.swap_ns += c.swap_ns;
    m.slow_kv_ns += c.slow_kv_ns;
    m.tier_move_ns += c.tier_move_ns;
    m.slow_kv_bytes += c.slow_kv_bytes;
    m.tier_moved_bytes += c.tier_moved_bytes;
    m.kv_runs += c.kv_runs;
    m.kv_bytes += c.kv_bytes;
    m.decode_runs += c.decode_runs;
    m.decode_plane_reads += c.decode_plane_reads;
    ++m.iterations;
}

// --- Reporting ----------------------------------------------------------------------------------

/// One iteration as the averages and the time series see it.
struct iteration_record {
    double t, dt, used, reserved;
    std::uint32_t running, tokens, finished;
};

/// The bucket boundaries over time: a snapshot at the start and one whenever they change.
/// Empty for allocators without buckets.
template <class A>
class boundary_log {
public:
    boundary_log(const A& kv, std::vector<boundary_snapshot>& out) : out_(out) {
        if constexpr (exposes_bucket_boundaries<A>) {
            const auto b = kv.bucket_policy().boundaries();
            out_.push_back({0.0, {b.begin(), b.end()}});
        }
    }
    /// Records the boundaries at time t if they changed; true when they did.
    bool record(const A& kv, double t) {
        if constexpr (exposes_bucket_boundaries<A>) {
            const auto b = kv.bucket_policy().boundaries();
            const auto& last = out_.back().capacities;
            if (std::equal(b.begin(), b.end(), last.begin(), last.end())) return false;
            out_.push_back({t, {b.begin(), b.end()}});
            return true;
        } else {
            (void)kv;
            (void)t;
            return false;
        }
    }

private:
    std::vector<boundary_snapshot>& out_;
};

/// Time-averaged utilization, reserved share, batch and throughput over [0, end). Idle
/// stretches (no record) count as empty and idle; an iteration straddling the end counts in
/// proportion.
inline void window_averages(const std::vector<iteration_record>& history, double end, double arena,
                            replay_metrics& m) {
    m.window_s = end;
    double used = 0, reserved = 0, batch = 0, toks = 0, fin = 0;
    for (const iteration_record& it : history) {
        if (it.t >= end) break;
        const double d = std::min(it.dt, end - it.t);
        used += it.used * d;
        reserved += it.reserved * d;
        batch += it.running * d;
        if (it.t + it.dt <= end) {
            toks += it.tokens;
            fin += it.finished;
        } else {
            toks += it.tokens * d / it.dt;
            fin += it.finished * d / it.dt;
        }
    }
    if (end > 0) {
        m.utilization = used / (arena * end);
        m.reserved_share = reserved / (arena * end);
        m.reserved_utilization = reserved > 0 ? used / reserved : 0.0;
        m.mean_running = batch / end;
        m.tps = toks / end;
        m.rps = fin / end;
    }
}

/// Nearest-rank percentile of `v` (reorders it); 0 for an empty set.
inline double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0.0;
    const auto k = static_cast<std::size_t>(std::ceil(p * double(v.size()))) - (p > 0 ? 1 : 0);
    const std::size_t i = std::min(k, v.size() - 1);
    std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(i), v.end());
    return v[i];
}

/// TTFT and TPOT p50 / p99 over every request.
inline void latency_percentiles(const std::vector<request_outcome>& requests, replay_metrics& m) {
    std::vector<double> ttft, tpot;
    ttft.reserve(requests.size());
    for (const request_outcome& q : requests) {
        ttft.push_back(q.first_token_s - q.arrival_s);
        if (q.output_tokens > 1)
            tpot.push_back((q.finish_s - q.first_token_s) / double(q.output_tokens - 1));
    }
    m.ttft_p50_s = percentile(ttft, 0.50);
    m.ttft_p99_s = percentile(ttft, 0.99);
    m.tpot_p50_s = percentile(tpot, 0.50);
    m.tpot_p99_s = percentile(tpot, 0.99);
}

/// Used bytes / arena over [0, makespan), averaged into `points` equal time bins.
inline std::vector<time_point> utilization_series(const std::vector<iteration_record>& history,
                                                  double makespan, double arena,
                                                  std::size_t points) {
    std::vector<time_point> out;
    const std::size_t bins = std::max<std::size_t>(1, points);
    if (!(makespan > 0) || history.empty()) return out;
    const double width = makespan / double(bins);
    std::vector<double> area(bins, 0.0);
    for (const iteration_record& it : history) {
        double a = it.t;
        const double b = it.t + it.dt;
        while (a < b) {
            const auto k = std::min(bins - 1, static_cast<std::size_t>(a / width));
            const double edge = std::min(b, double(k + 1) * width);
            area[k] += it.used * std::max(0.0, edge - a);
            if (edge <= a) break;
            a = edge;
        }
    }
    out.reserve(bins);
    for (std::size_t k = 0; k < bins; ++k)
        out.push_back({(double(k) + 0.5) * width, area[k] / (arena * width)});
    return out;
}

}  // namespace detail

/// Replays `w` through `kv` on `sm` and measures it. `kv` must be fresh (nothing live), built
/// with max_tokens == w.max_context, and its backing must account reads (backing::accounted).
/// Deterministic: the same inputs give the same result.
///
/// Throws std::runtime_error when a request can never be admitted (the arena is too small for
/// it even when empty) or the allocator fails in a way the protocol does not allow.
template <replayable_allocator A>
replay_result serve(A& kv, const workload& w, const serving_model& sm, const serving_options& o,
                    const progress_callback& progress = {}) {
    if (o.max_num_seqs == 0 || o.max_batched_tokens == 0)
        throw std::invalid_argument("max_num_seqs and max_batched_tokens must be > 0");
    const std::size_t n = w.requests.size();
    const detail::plane_sample planes =
        detail::sample_planes(kv.config().planes, o.kv_planes_sampled);
    const double arena = double(kv.stats().arena_bytes);

    replay_result out;
    replay_metrics& m = out.metrics;
    detail::batch_scheduler<A> batch(kv, w, o, m);
    detail::boundary_log<A> boundaries(kv, out.boundaries);
    std::vector<detail::work_item> work;
    std::vector<detail::iteration_record> history;
    std::deque<std::uint64_t> recent_needs;  // ballooning: activation needs of recent iterations

    double t = 0, window_end = -1;
    std::size_t done = 0, reported = 0;
    while (done < n) {
        batch.arrive_until(t);
        if (batch.idle()) {
            if (batch.all_arrived()) throw std::logic_error("odma-replay: requests lost track of");
            t = batch.next_arrival();  // idle until the next arrival
            continue;
        }
        kv.backing().reset_report();
        // Tiered allocators: promote into free fast space first; moves made here and by
        // demotions during growth cross the link in this iteration.
        std::uint64_t moved_before = 0;
        if constexpr (detail::tiered_allocator<A>) {
            moved_before = kv.tier_stats().moved_bytes;
            kv.rebalance();
        }
        batch.plan(work);
        // The loaded window ends when the queue drains for good after the last arrival.
        if (!batch.all_arrived() || !batch.queue_empty())
            window_end = -1;
        else if (window_end < 0)
            window_end = t;
        const std::uint64_t swapped = batch.take_swapped_bytes();
        m.swapped_bytes += swapped;
        std::uint64_t moved = 0;
        if constexpr (detail::tiered_allocator<A>)
            moved = kv.tier_stats().moved_bytes - moved_before;
        // Everyone was preempted and nothing crossed a link: retry at once.
        if (work.empty() && swapped == 0 && moved == 0) continue;

        // Ballooning: the arena makes room for this iteration's activations first, so that
        // the leases it moves are costed with the iteration.
        std::uint64_t spilled = 0;
        if constexpr (detail::elastic_allocator<A>)
            if (o.balloon_pool_bytes > 0)
                spilled = detail::inflate_for_activations(kv, work, batch, sm, o, recent_needs, m);
        // Only swaps (everyone else was preempted): the iteration is the link's time alone.
        detail::iteration_cost cost = work.empty()
                                          ? detail::iteration_cost{}
                                          : detail::cost_iteration(kv, work, batch, w, sm, planes);
        if constexpr (detail::tiered_allocator<A>) {
            cost.tier_moved_bytes = moved;
            if (!o.free_tier_moves)
                cost.tier_move_ns = double(cost.tier_moved_bytes) / sm.device.slow_tier->link_gbps;
        }
        if (spilled) {
            if (!(sm.device.host_link_gbps > 0))
                throw std::invalid_argument("device " + sm.device.name +
                                            " has no host link to spill activations over");
            const double ns = 2.0 * double(spilled) / sm.device.host_link_gbps;
            cost.swap_ns += ns;
            m.activation_spill_ns += ns;
            m.spilled_activation_bytes += spilled;
        }
        if (swapped) {
            if (!(sm.device.host_link_gbps > 0))
                throw std::invalid_argument("device " + sm.device.name +
                                            " has no host link to swap over");
            cost.swap_ns += double(swapped) / sm.device.host_link_gbps;
        }
        detail::add_cost(m, cost);
        const odma::stats& s = kv.stats();
        detail::iteration_record it{t,
                                    cost.total_ns() * 1e-9,
                                    double(s.used_bytes),
                                    double(s.reserved_bytes),
                                    std::uint32_t(batch.running().size()),
                                    0,
                                    0};
        t += it.dt;

        const detail::iteration_outcome done_now = batch.complete(work, t);
        it.tokens = done_now.tokens;
        it.finished = done_now.finished;
        if (done_now.finished) {
            done += done_now.finished;
            if (boundaries.record(kv, t)) ++m.boundary_changes;
        }
        history.push_back(it);
        m.generated_tokens += it.tokens;
        if (progress && (done - reported) * 200 >= n) {
            reported = done;
            progress(double(done) / double(n));
        }
    }
    m.makespan_s = t;
    m.finished = done;

    double end = window_end > 0 ? window_end : t;
    if (!(end > 0)) end = t;
    detail::window_averages(history, end, arena, m);

    out.requests.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        const detail::request_state& st = batch.states()[i];
        out.requests[i] = {w.requests[i].arrival_s, st.first_token, st.finish, st.generated,
                           st.preemptions};
    }
    detail::latency_percentiles(out.requests, m);

    out.allocator_stats = kv.stats();
    m.migrations = out.allocator_stats.migrations;
    m.migrated_bytes = out.allocator_stats.migrated_bytes;
    m.safety_pool_hits =
        out.allocator_stats.safety_pool_admissions + out.allocator_stats.safety_pool_migrations;

    out.utilization = detail::utilization_series(history, t, arena, o.series_points);
    return out;
}

}  // namespace odma::replay
