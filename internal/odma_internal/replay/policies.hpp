// odma_internal/replay/policies.hpp - the allocation policies odma-replay compares, each built on
// the same device memory and replayed through the same serving model.
//
//   static       constant predictor (max_new_tokens) + one max-size bucket: every request
//                reserves prompt + max_new_tokens up front; contiguous; never grows.
//   s3           the trained ngram predictor's median, rounded up to 10 uniform buckets (S3
//                predicts the bucket and reserves it); no safety pool; overflows grow in place
//                or migrate, else the request is preempted.
//   paged-16     vLLM-style paging (odma::paged), FIFO free list, 16-token blocks (vLLM,
//                vllm-mlu): no reservation beyond the last block, scattered reads.
//   paged-128    the same with 128-token blocks (vllm-ascend's and Intel Gaudi's default).
//                `paged` is accepted as an alias of paged with policy_options::block_tokens,
//                and `paged-N` for any block size N.
//   odma-strict  one contiguous run per lease (today's ODMA mode): the trained ngram
//                predictor's (1 - overflow_risk) quantile (the median by default), rounded up
//                to buckets learned online (bucket::online_histogram), with a 10% safety pool;
//                overflows grow in place or migrate (to the pool when the general area is
//                full), else the request is preempted.
//   odma         the recommended configuration (odma_config()): odma-strict's predictor, buckets
//                and pool, with leases of up to policy_options::max_runs runs (16 by default)
//                and admission by predicted demand (config::demand_limit 1.0).
//   oracle       told every true length, one-token buckets: contiguous with perfect knowledge
//                (the upper bound for contiguous allocation).
//
// One more row, not in the standard table, compares a fixed KV/activation split with
// eLLM-style ballooning (docs/tiers.md):
//   odma-balloon the `odma` row on an on-demand arena (backing::placement_on_demand) that
//                shares a pool with the activations: the KV cache may use the activation
//                share of the device's reserve (model_preset::activation_bytes at the token
//                budget and batch limit, at most device_preset::activation_reserve_bytes)
//                whenever an iteration's activations leave it free, and shrinks (moving
//                leases, or spilling activations to host memory) when they need it.
//
// On a device with a slow tier (device_preset::slow_tier: gh200, h100-host-ddr5,
// mlu370-x4-host), three more rows put an `odma` allocator in each tier and compose them with
// odma::tiered (docs/tiers.md); they differ only in the tier policy:
//   tier-static  tier_policies::static_spill: fast tier first, spill to the slow tier, never
//                move (the seed's baseline).
//   tier-dynamic tier_policies::balanced over the trained ngram predictor: the slow tier
//                admits only up to its read share of the fast tier, a fast lease that cannot
//                grow demotes the one cheapest to read from the slow tier, slow leases come
//                back when room frees up; moves cost the link's time.
//   tier-bound   the same policy told every true length, with moves that cost nothing: the
//                headroom of placement on this schedule (not a proof of optimality).
//
// Every contiguous policy uses planes = 2 x layers, so each (layer, K/V) of a request is one
// run, and the arena is the device's KV memory on odma::backing::accounted<placement_only>.
// run_policies() replays the policies of one table in parallel, one thread each.
#pragma once

#include <odma_internal/replay/serving_engine.hpp>

#include <odma/allocator.hpp>
#include <odma/backing/accounted.hpp>
#include <odma/backing/placement_only.hpp>
#include <odma/bucket/fixed.hpp>
#include <odma/bucket/online_histogram.hpp>
#include <odma/paged.hpp>
#include <odma/predict/constant.hpp>
#include <odma/predict/ngram.hpp>
#include <odma/predict/oracle.hpp>
#include <odma/tier/balanced.hpp>
#include <odma/tier/host_link.hpp>
#include <odma/tier/static_spill.hpp>
#include <odma/tiered.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace odma::replay {

using device_memory = backing::accounted<backing::placement_only>;

/// Settings of the policies (the serving engine's are in serving_options).
struct policy_options {
    double safety_pool_fraction = 0.10;  ///< odma's safety pool
    /// odma reserves the predictor's (1 - risk) quantile. 0.5 (the median) follows ODMA's
    /// mechanism: reserve the bucket of the predicted length and let the safety pool catch
    /// overflows; it also equals s3's, so s3 and odma differ only in buckets and pool. The
    /// library default (0.05) is the conservative end: fewer growths, more reserved memory.
    double overflow_risk = 0.5;
    std::uint32_t odma_buckets = 16;  ///< odma's learned buckets
    /// Runs per lease of the recommended `odma` row (config::max_runs); odma-strict uses 1.
    std::uint32_t max_runs = 16;
    /// Soft reservations for the `odma` row (config::lend_reserved; off: in every scenario
    /// measured it adds preemptions, see docs/replay.md); odma-strict never lends.
    bool lend_reserved = false;
    /// config::demand_limit of the `odma` row: admissions under pressure stop when the live
    /// leases' predicted lengths fill the arena once.
    double demand_limit = 1.0;
    std::uint32_t s3_buckets = 10;    ///< S3's uniform buckets
    std::uint32_t block_tokens = 16;  ///< block size of the `paged` alias
    free_order paged_order = free_order::fifo;
    double paged_watermark = 0.0;
};

/// The names of the standard table, in table order. run_policy() also accepts `paged` (paged
/// with policy_options::block_tokens) and `paged-N`.
inline std::vector<std::string> policy_names() {
    return {"static", "s3", "paged-16", "paged-128", "odma-strict", "odma", "oracle"};
}

/// The block size of a paged policy name (`paged` -> `alias_block`, `paged-N` -> N), or
/// nothing when `name` is not a paged policy.
inline std::optional<std::uint32_t> paged_block_tokens(std::string_view name,
                                                       std::uint32_t alias_block) {
    if (name == "paged") return alias_block;
    constexpr std::string_view prefix = "paged-";
    if (!name.starts_with(prefix) || name.size() == prefix.size()) return std::nullopt;
    std::uint64_t n = 0;
    for (const char ch : name.substr(prefix.size())) {
        if (ch < '0' || ch > '9') return std::nullopt;
        n = n * 10 + std::uint64_t(ch - '0');
        if (n > 1u << 20) return std::nullopt;
    }
    if (n == 0) return std::nullopt;
    return std::uint32_t(n);
}

/// The rows of a device with a slow tier, in table order.
inline std::vector<std::string> tier_policy_names() {
    return {"tier-static", "tier-dynamic", "tier-bound"};
}

/// The share of the device's activation reserve that activations can use at most (the peak
/// of one iteration at the token budget with a full batch sampling): what ballooning lends
/// the KV cache when an iteration needs less.
inline std::uint64_t balloonable_bytes(const serving_model& sm, const serving_options& so) {
    const double peak = sm.model.activation_bytes(so.max_batched_tokens, so.max_num_seqs);
    return static_cast<std::uint64_t>(std::min(peak, sm.device.activation_reserve_bytes));
}

inline bool is_tier_policy(std::string_view name) {
    return name == "tier-static" || name == "tier-dynamic" || name == "tier-bound";
}

/// True when run_policy() knows the name: a standard one, a tier one, `paged` or `paged-N`.
inline bool is_policy_name(std::string_view name) {
    for (const auto& p : policy_names())
        if (p == name) return true;
    return name == "odma-balloon" || is_tier_policy(name) ||
           paged_block_tokens(name, 16).has_value();
}

/// True when the policy needs a trained predictor.
inline bool policy_uses_predictor(std::string_view name) {
    return name == "s3" || name == "odma-strict" || name == "odma" || name == "odma-balloon" ||
           is_tier_policy(name);
}

/// The balanced tier policy's slow share for a device: the slow tier's read rate (the lower of
/// its DRAM peak and the link) over the fast tier's DRAM peak.
inline double slow_read_share(const device_preset& d) {
    if (!d.slow_tier) return 0.0;
    const double slow = std::min(d.slow_tier->memory.peak_bytes_per_ns(), d.slow_tier->link_gbps);
    return std::min(1.0, slow / d.memory.peak_bytes_per_ns());
}

/// The configuration of odma's policies, from the policy options: the one place where the
/// `odma` row and the `odma-strict` row (one run per lease) are told apart. Until leases of
/// several runs land in the library they are the same configuration; `strict` will then
/// keep config.max_runs = 1 and the recommended row set it (and any new knob) from `po`.
inline odma::config odma_config(const odma::config& base, const policy_options& po, bool strict) {
    odma::config c = base;
    c.safety_pool_fraction = po.safety_pool_fraction;
    c.overflow_risk = po.overflow_risk;
    c.max_runs = strict ? 1 : po.max_runs;
    c.lend_reserved = !strict && po.lend_reserved;
    c.demand_limit = strict ? 0.0 : po.demand_limit;
    return c;
}

/// Replays `w` with policy `name` on a fresh device memory. `trained` is the ngram predictor
/// trained on w.training (copied into the allocator, so each policy starts from the same
/// model); it may be null for policies that do not use it.
inline replay_result run_policy(std::string_view name, const workload& w, const serving_model& sm,
                                const serving_options& so, const policy_options& po,
                                const predict::ngram* trained,
                                const progress_callback& progress = {}) {
    const std::size_t kv_bytes = sm.kv_bytes();
    const auto memory = [&] {
        return device_memory(backing::placement_only(kv_bytes), sm.device.memory);
    };
    const odma::config base{.bytes_per_token = sm.model.bytes_per_token(),
                            .max_tokens = w.max_context,
                            .safety_pool_fraction = 0.0,
                            .overflow_risk = po.overflow_risk,
                            .planes = sm.model.planes()};
    const auto need_model = [&]() -> const predict::ngram& {
        if (!trained)
            throw std::invalid_argument("policy " + std::string(name) +
                                        " needs a trained ngram predictor");
        return *trained;
    };
    const auto finish = [&](replay_result r) {
        r.policy = std::string(name);
        return r;
    };

    if (name == "static") {
        using kv_t = allocator<predict::constant, bucket::fixed, device_memory>;
        auto kv = std::make_unique<kv_t>(base, predict::constant{},
                                         bucket::fixed::explicit_list({w.max_context}), memory());
        return finish(serve(*kv, w, sm, so, progress));
    }
    if (name == "s3") {
        using kv_t = allocator<predict::ngram, bucket::fixed, device_memory>;
        odma::config c = base;
        c.overflow_risk = 0.5;  // S3 reserves the bucket of its point estimate
        auto kv = std::make_unique<kv_t>(
            c, need_model(), bucket::fixed::uniform(po.s3_buckets, w.max_context), memory());
        return finish(serve(*kv, w, sm, so, progress));
    }
    if (const auto block = paged_block_tokens(name, po.block_tokens)) {
        using kv_t = paged<device_memory>;
        const paged_config c{.bytes_per_token = sm.model.bytes_per_token(),
                             .max_tokens = w.max_context,
                             .planes = sm.model.planes(),
                             .block_tokens = *block,
                             .watermark = po.paged_watermark,
                             .order = po.paged_order};
        auto kv = std::make_unique<kv_t>(c, memory());
        return finish(serve(*kv, w, sm, so, progress));
    }
    if (name == "odma-strict" || name == "odma") {
        using kv_t = allocator<predict::ngram, bucket::online_histogram, device_memory>;
        auto kv = std::make_unique<kv_t>(odma_config(base, po, name == "odma-strict"), need_model(),
                                         bucket::online_histogram(po.odma_buckets, w.max_context),
                                         memory());
        return finish(serve(*kv, w, sm, so, progress));
    }
    if (name == "odma-balloon") {
        using elastic_memory = backing::accounted<backing::placement_on_demand>;
        using kv_t = allocator<predict::ngram, bucket::online_histogram, elastic_memory>;
        serving_options balloon = so;
        balloon.balloon_pool_bytes = kv_bytes + balloonable_bytes(sm, so);
        auto kv = std::make_unique<kv_t>(
            odma_config(base, po, false), need_model(),
            bucket::online_histogram(po.odma_buckets, w.max_context),
            elastic_memory(backing::placement_on_demand(balloon.balloon_pool_bytes),
                           sm.device.memory));
        return finish(serve(*kv, w, sm, balloon, progress));
    }
    if (is_tier_policy(name)) {
        if (!sm.device.slow_tier)
            throw std::invalid_argument("policy " + std::string(name) + ": device " +
                                        sm.device.name + " has no slow tier");
        using tier_kv = allocator<predict::ngram, bucket::online_histogram, device_memory>;
        const odma::config c = odma_config(base, po, false);
        const auto make_tier = [&](std::size_t bytes, const memory::memory_model& model) {
            return std::make_unique<tier_kv>(
                c, need_model(), bucket::online_histogram(po.odma_buckets, w.max_context),
                device_memory(backing::placement_only(bytes), model));
        };
        auto fast = make_tier(kv_bytes, sm.device.memory);
        auto slow = make_tier(sm.device.slow_tier->kv_bytes(), sm.device.slow_tier->memory);
        const auto replay = [&](auto policy, const serving_options& opts) {
            using kv_t = tiered<tier_kv, tier_kv, decltype(policy), tier_policies::placement_link>;
            auto kv = std::make_unique<kv_t>(*fast, *slow, std::move(policy));
            return finish(serve(*kv, w, sm, opts, progress));
        };
        const double share = slow_read_share(sm.device);
        if (name == "tier-static") return replay(tier_policies::static_spill{}, so);
        if (name == "tier-dynamic")
            return replay(tier_policies::balanced<predict::ngram>(need_model(), share), so);
        serving_options free_moves = so;
        free_moves.free_tier_moves = true;
        return replay(tier_policies::balanced<predict::oracle>(predict::oracle{}, share),
                      free_moves);
    }
    if (name == "oracle") {
        using kv_t = allocator<predict::oracle, bucket::fixed, device_memory>;
        auto kv =
            std::make_unique<kv_t>(base, predict::oracle{},
                                   bucket::fixed::uniform(w.max_context, w.max_context), memory());
        return finish(serve(*kv, w, sm, so, progress));
    }
    throw std::invalid_argument(
        "unknown policy '" + std::string(name) +
        "' (known: static, s3, paged-16, paged-128, paged, paged-N, "
        "odma-strict, odma, odma-balloon, oracle, tier-static, tier-dynamic, "
        "tier-bound)");
}

/// Replays `w` once per policy of `names` and returns the results in that order. With
/// `parallel`, each policy runs on its own std::thread (each builds its own allocator and
/// device memory and copies `trained`; nothing mutable is shared), so the results are the same
/// as sequentially. `progress` is called on the calling thread with the overall share done
/// (the mean over the policies). The first exception, in table order, is rethrown.
inline std::vector<replay_result> run_policies(const std::vector<std::string>& names,
                                               const workload& w, const serving_model& sm,
                                               const serving_options& so, const policy_options& po,
                                               const predict::ngram* trained,
                                               const progress_callback& progress = {},
                                               bool parallel = true) {
    const std::size_t n = names.size();
    std::vector<replay_result> results(n);
    if (!parallel || n <= 1) {
        for (std::size_t i = 0; i < n; ++i) {
            const auto share = [&, i](double f) {
                if (progress) progress((double(i) + f) / double(n));
            };
            results[i] = run_policy(names[i], w, sm, so, po, trained, share);
        }
        return results;
    }
    std::vector<std::atomic<double>> done(n);
    std::vector<std::exception_ptr> errors(n);
    std::atomic<std::size_t> finished{0};
    std::vector<std::thread> threads;
    threads.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        done[i].store(0.0);
        threads.emplace_back([&, i] {
            try {
                results[i] = run_policy(names[i], w, sm, so, po, trained,
                                        [&, i](double f) { done[i].store(f); });
            } catch (...) {
                errors[i] = std::current_exception();
            }
            done[i].store(1.0);
            finished.fetch_add(1);
        });
    }
    const auto report = [&] {
        if (!progress) return;
        double sum = 0;
        for (const auto& d : done)
            sum += d.load();
        progress(sum / double(n));
    };
    while (progress && finished.load() < n) {
        report();
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (auto& t : threads)
        t.join();
    report();
    for (const auto& e : errors)
        if (e) std::rethrow_exception(e);
    return results;
}

/// Trains the ngram predictor on the workload's training part (never on replayed requests).
inline predict::ngram train_ngram(const workload& w, std::uint64_t seed) {
    predict::ngram model;
    predict::ngram::options o;
    o.seed = seed;
    model.train(w.training, o);
    return model;
}

}  // namespace odma::replay
