// tools/odma-replay/simulator.hpp - a continuous-batching serving model that replays a
// workload through one KV-cache allocator and measures what its memory layout costs.
//
// The serving model (one accelerator, one model replica), modelled on vLLM v1's scheduler:
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
//                           device's DRAM model (odma::backing::lpddr_emulated)
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
#pragma once

#include "presets.hpp"
#include "workload.hpp"

#include <odma/backing/lpddr_emulated.hpp>
#include <odma/backing/simulated.hpp>
#include <odma/errc.hpp>
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

/// Knobs of the serving engine (vLLM's names where it has one).
struct serving_options {
    /// Most requests in one batch (vLLM max_num_seqs).
    std::uint32_t max_num_seqs = 256;
    /// Token budget of one iteration: decodes plus prefill chunks (vLLM max_num_batched_tokens).
    std::uint32_t max_batched_tokens = 2048;
    /// Planes whose KV reads go through the cost model, scaled to all planes; 0 = all.
    std::uint32_t kv_planes_sampled = 2;
    /// Points of the utilization-over-time series kept for plots.
    std::size_t series_points = 480;
};

/// The model on the device: presets plus the one-time cost of reading the weights.
struct serving_model {
    model_preset model;
    device_preset device;
    double weights_ns = 0;  ///< one sequential read of all weights on the device's DRAM model

    /// KV-cache bytes the engine has (device_preset::kv_bytes).
    std::uint64_t kv_bytes() const { return device.kv_bytes(model); }
};

/// Builds a serving_model, costing the weight read on a fresh device model.
inline serving_model make_serving_model(model_preset m, device_preset d) {
    serving_model s{std::move(m), std::move(d), 0.0};
    auto dev = backing::lpddr_emulated<backing::simulated>(
        backing::simulated(static_cast<std::size_t>(s.model.weight_bytes)), s.device.memory);
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
    std::uint64_t kv_runs = 0;   ///< KV read runs (sampled planes, scaled)
    std::uint64_t kv_bytes = 0;  ///< KV bytes read (scaled)

    double memory_ns() const {
        return weights_ns + kv_dram_ns + kv_discontinuity_ns + migration_ns;
    }
    /// Effective KV read bandwidth, GB/s.
    double kv_gbps() const {
        const double ns = kv_dram_ns + kv_discontinuity_ns;
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

namespace detail {

/// A paged allocator exposes block tables; a contiguous one regions.
template <class A>
concept paged_layout = requires(const A& a, const lease& l) {
    a.blocks(l);
    a.config().block_tokens;
};
template <class A>
concept has_bucket_policy = requires(A& a) {
    a.bucket_policy().boundaries();
};
template <class A>
concept has_predictor = requires(A& a) {
    a.predictor();
};

/// Accounts reads of the first `tokens` tokens of `l` in planes [0, planes) on the backing:
/// the runs an attention kernel issues for that request in one layer.
template <class A>
void read_prefix(A& kv, const lease& l, std::uint32_t tokens, std::uint32_t planes) {
    if (tokens == 0) return;
    auto& dev = kv.backing();
    const std::size_t bpt = kv.config().bytes_per_plane_token();
    if constexpr (paged_layout<A>) {
        const auto table = kv.blocks(l).value();
        const std::uint32_t bt = kv.config().block_tokens;
        for (std::uint32_t p = 0; p < planes; ++p) {
            std::uint32_t left = tokens;
            for (const auto b : table) {
                const std::uint32_t n = std::min(left, bt);
                dev.read(kv.byte_offset(p, std::size_t(b) * bt), std::size_t(n) * bpt);
                left -= n;
                if (left == 0) break;
            }
        }
    } else {
        const std::size_t first = kv.region_of(l).value().offset_tokens;
        for (std::uint32_t p = 0; p < planes; ++p)
            dev.read(kv.byte_offset(p, first), std::size_t(tokens) * bpt);
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

}  // namespace detail

/// Called with the share of requests finished, now and then.
using progress_callback = std::function<void(double)>;

/// Replays `w` through `kv` on `sm` and measures it. `kv` must be fresh (nothing live), built
/// with max_tokens == w.max_context, and its backing must account reads (lpddr_emulated).
/// Deterministic: the same inputs give the same result.
///
/// Throws std::runtime_error when a request can never be admitted (the arena is too small for
/// it even when empty) or the allocator fails in a way the protocol does not allow.
template <class Alloc>
replay_result simulate(Alloc& kv, const workload& w, const serving_model& sm,
                       const serving_options& o, const progress_callback& progress = {}) {
    const std::size_t n = w.requests.size();
    const std::uint32_t planes_total = kv.config().planes;
    const std::uint32_t planes =
        o.kv_planes_sampled == 0 ? planes_total : std::min(o.kv_planes_sampled, planes_total);
    const double plane_scale = double(planes_total) / double(planes);
    const double flops_per_ns = sm.device.compute_flops_per_ns();
    const model_preset& model = sm.model;
    if (o.max_num_seqs == 0 || o.max_batched_tokens == 0)
        throw std::invalid_argument("max_num_seqs and max_batched_tokens must be > 0");

    struct state {
        std::uint32_t generated = 0;
        std::uint32_t preemptions = 0;
        double first_token = -1, finish = -1;
    };
    struct active {
        std::uint32_t index;  // into w.requests
        lease handle;
        std::uint32_t base;       // tokens this admission prefills: prompt + generated before it
        std::uint32_t prefilled;  // of base
    };
    struct work_item {
        std::size_t slot;  // into running
        std::uint32_t tokens;
        bool decode;
    };
    struct iteration {
        double t, dt, used, reserved;
        std::uint32_t running, tokens, finished;
    };

    std::vector<state> st(n);
    std::vector<active> running;
    std::deque<std::uint32_t> waiting;
    std::vector<work_item> work;
    std::vector<iteration> history;
    replay_result out;
    replay_metrics& m = out.metrics;
    const double arena = double(kv.stats().arena_bytes);

    const auto admission_request = [&](std::uint32_t i) {
        const replay_request& r = w.requests[i];
        odma::request q = r.as_request(w.max_new_tokens);
        q.prompt_tokens += st[i].generated;  // a resumed request prefills what it generated
        q.max_new_tokens -= st[i].generated;
        if constexpr (detail::has_predictor<Alloc>) {
            if constexpr (std::is_same_v<std::remove_cvref_t<decltype(kv.predictor())>,
                                         predict::oracle>)
                kv.predictor().tell(r.id, r.output_tokens - st[i].generated);
        }
        return q;
    };
    const auto preempt_last = [&] {
        active victim = std::move(running.back());
        running.pop_back();
        if (!kv.abandon(victim.handle)) throw std::runtime_error("abandon failed on a live lease");
        state& s = st[victim.index];
        ++s.preemptions;
        ++m.preemptions;
        m.recomputed_tokens += w.requests[victim.index].prompt_tokens + s.generated;
        waiting.push_front(victim.index);
    };
    const auto finish = [&](const active& a) {
        const replay_request& r = w.requests[a.index];
        const state& s = st[a.index];
        if (s.preemptions == 0) {
            if (!kv.release(a.handle, s.generated)) throw std::runtime_error("release failed");
            return;
        }
        // The lease was admitted as a resumed request (prompt + what it had generated): teach
        // the policies the whole request instead. The bucket policy gets the final length; the
        // peak demand release() would report lives in the allocator and died with the lease.
        if (!kv.abandon(a.handle)) throw std::runtime_error("abandon failed");
        if constexpr (detail::has_predictor<Alloc>)
            kv.predictor().observe(r.as_request(w.max_new_tokens), s.generated);
        if constexpr (detail::has_bucket_policy<Alloc>)
            kv.bucket_policy().observe(std::min(w.max_context, r.prompt_tokens + s.generated));
    };

    if constexpr (detail::has_bucket_policy<Alloc>) {
        const auto b = kv.bucket_policy().boundaries();
        out.boundaries.push_back({0.0, {b.begin(), b.end()}});
    }

    double t = 0, window_end = -1;
    std::size_t next = 0, done = 0, reported = 0;
    while (done < n) {
        while (next < n && w.requests[next].arrival_s <= t)
            waiting.push_back(std::uint32_t(next++));
        if (running.empty() && waiting.empty()) {
            if (next >= n) throw std::logic_error("odma-replay: requests lost track of");
            t = w.requests[next].arrival_s;  // idle until the next arrival
            continue;
        }
        kv.backing().reset_report();
        work.clear();
        std::uint32_t budget = o.max_batched_tokens;
        bool preempted = false;

        // Running requests, oldest first: continue prefills, grow and decode.
        for (std::size_t i = 0; i < running.size() && budget > 0; ++i) {
            active& a = running[i];
            if (a.prefilled < a.base) {
                const std::uint32_t chunk = std::min(a.base - a.prefilled, budget);
                work.push_back({i, chunk, false});
                budget -= chunk;
                continue;
            }
            const std::uint32_t need = w.requests[a.index].prompt_tokens + st[a.index].generated;
            bool self = false;
            for (;;) {
                const auto g = kv.extend(a.handle, need);
                if (g) {
                    if (*g == growth::in_place) ++m.in_place_growths;
                    break;
                }
                if (g.error() != errc::no_memory)
                    throw std::runtime_error("extend failed: " + std::string(to_string(g.error())));
                self = running.size() - 1 == i;
                preempt_last();
                preempted = true;
                if (self) break;
            }
            if (self) break;
            work.push_back({i, 1, true});
            --budget;
        }

        // Admissions, first come first served, when nobody was preempted.
        while (!preempted && budget > 0 && !waiting.empty() && running.size() < o.max_num_seqs) {
            const std::uint32_t i = waiting.front();
            const odma::request q = admission_request(i);
            auto r = kv.admit(q);
            if (!r) {
                if (r.error() != errc::no_memory || running.empty())
                    throw std::runtime_error("request " + std::to_string(w.requests[i].id) + " (" +
                                             std::to_string(q.prompt_tokens) +
                                             " prompt tokens) can never be admitted: " +
                                             std::string(to_string(r.error())));
                break;
            }
            waiting.pop_front();
            running.push_back({i, *r, q.prompt_tokens, 0});
            const std::uint32_t chunk = std::min(q.prompt_tokens, budget);
            work.push_back({running.size() - 1, chunk, false});
            budget -= chunk;
        }
        // The loaded window ends when the queue drains for good after the last arrival.
        if (next < n || !waiting.empty())
            window_end = -1;
        else if (window_end < 0)
            window_end = t;
        if (work.empty()) continue;  // everyone was preempted: retry at once

        // Cost of the iteration.
        double flops = 0;
        std::uint32_t tokens = 0;
        for (const work_item& wi : work) {
            const active& a = running[wi.slot];
            if (wi.decode) {
                const std::uint32_t ctx = w.requests[a.index].prompt_tokens + st[a.index].generated;
                flops += model.linear_flops_per_token() + model.attention_flops(ctx);
                detail::read_prefix(kv, a.handle, ctx, planes);
            } else {
                const double d = a.prefilled, c = wi.tokens;
                flops += c * model.linear_flops_per_token() +
                         model.attention_flops(c * d + c * (c + 1) / 2);
                detail::read_prefix(kv, a.handle, a.prefilled, planes);
            }
            tokens += wi.tokens;
        }
        const auto& rep = kv.backing().report();
        const double kv_dram = rep.read.dram_ns * plane_scale;
        const double kv_disc = rep.read.discontinuity_ns * plane_scale;
        const double migration = rep.migration.total_ns();
        const double memory_ns = sm.weights_ns + kv_dram + kv_disc + migration;
        const double compute_ns = flops / flops_per_ns;
        const double dt_ns = std::max(memory_ns, compute_ns);
        m.total_ns += dt_ns;
        if (compute_ns > memory_ns) m.compute_bound_ns += dt_ns;
        m.weights_ns += sm.weights_ns;
        m.kv_dram_ns += kv_dram;
        m.kv_discontinuity_ns += kv_disc;
        m.migration_ns += migration;
        m.kv_runs += static_cast<std::uint64_t>(double(rep.read.runs) * plane_scale);
        m.kv_bytes += static_cast<std::uint64_t>(double(rep.read.bytes) * plane_scale);
        ++m.iterations;

        const odma::stats& s = kv.stats();
        const double dt = dt_ns * 1e-9;
        iteration it{
            t, dt, double(s.used_bytes), double(s.reserved_bytes), std::uint32_t(running.size()),
            0, 0};
        t += dt;

        // Outcomes: completed prefills and decodes each sample one token.
        bool any_finished = false;
        for (const work_item& wi : work) {
            active& a = running[wi.slot];
            if (!wi.decode) {
                a.prefilled += wi.tokens;
                if (a.prefilled < a.base) continue;
            }
            state& rs = st[a.index];
            ++rs.generated;
            ++it.tokens;
            if (rs.first_token < 0) rs.first_token = t;
            if (rs.generated == w.requests[a.index].output_tokens) {
                rs.finish = t;
                finish(a);
                a.handle = lease{};  // marks the slot for removal
                ++it.finished;
                any_finished = true;
            }
        }
        if (any_finished) {
            std::erase_if(running, [](const active& a) { return a.handle.empty(); });
            done += it.finished;
            if constexpr (detail::has_bucket_policy<Alloc>) {
                const auto b = kv.bucket_policy().boundaries();
                if (!std::equal(b.begin(), b.end(), out.boundaries.back().capacities.begin(),
                                out.boundaries.back().capacities.end())) {
                    out.boundaries.push_back({t, {b.begin(), b.end()}});
                    ++m.boundary_changes;
                }
            }
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

    // Window averages. Idle stretches (no sample) count as empty and idle.
    double end = window_end > 0 ? window_end : t;
    if (!(end > 0)) end = t;
    m.window_s = end;
    double used = 0, reserved = 0, batch = 0, toks = 0, fin = 0;
    for (const iteration& it : history) {
        if (it.t >= end) break;
        const double d = std::min(it.dt, end - it.t);
        used += it.used * d;
        reserved += it.reserved * d;
        batch += it.running * d;
        if (it.t + it.dt <= end) {
            toks += it.tokens;
            fin += it.finished;
        } else {  // the iteration straddling the end counts in proportion
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

    // Latencies.
    std::vector<double> ttft, tpot;
    ttft.reserve(n);
    out.requests.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        const replay_request& r = w.requests[i];
        request_outcome& q = out.requests[i];
        q.arrival_s = r.arrival_s;
        q.first_token_s = st[i].first_token;
        q.finish_s = st[i].finish;
        q.output_tokens = st[i].generated;
        q.preemptions = st[i].preemptions;
        ttft.push_back(q.first_token_s - q.arrival_s);
        if (q.output_tokens > 1)
            tpot.push_back((q.finish_s - q.first_token_s) / double(q.output_tokens - 1));
    }
    m.ttft_p50_s = detail::percentile(ttft, 0.50);
    m.ttft_p99_s = detail::percentile(ttft, 0.99);
    m.tpot_p50_s = detail::percentile(tpot, 0.50);
    m.tpot_p99_s = detail::percentile(tpot, 0.99);

    // The allocator's own counters.
    out.allocator_stats = kv.stats();
    m.migrations = out.allocator_stats.migrations;
    m.migrated_bytes = out.allocator_stats.migrated_bytes;
    m.safety_pool_hits =
        out.allocator_stats.safety_pool_admissions + out.allocator_stats.safety_pool_migrations;

    // Utilization over time, averaged into equal time bins.
    const std::size_t bins = std::max<std::size_t>(1, o.series_points);
    if (t > 0 && !history.empty()) {
        const double width = t / double(bins);
        std::vector<double> area(bins, 0.0);
        for (const iteration& it : history) {
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
        for (std::size_t k = 0; k < bins; ++k)
            out.utilization.push_back({(double(k) + 0.5) * width, area[k] / (arena * width)});
    }
    return out;
}

}  // namespace odma::replay
