// odma_internal/replay/policies.hpp - the allocation policies odma-replay compares, each built on
// the same device memory and replayed through the same serving model.
//
//   static  constant predictor (max_new_tokens) + one max-size bucket: every request reserves
//           prompt + max_new_tokens up front; contiguous; never grows.
//   s3      the trained ngram predictor's median, rounded up to 10 uniform buckets (S3 predicts
//           the bucket and reserves it); no safety pool; overflows grow in place or migrate,
//           else the request is preempted.
//   paged   vLLM-style 16-token blocks (odma::paged), FIFO free list: no reservation beyond the
//           last block, scattered reads.
//   odma    the trained ngram predictor's (1 - overflow_risk) quantile (the median by
//           default), rounded up to buckets learned online (bucket::online_histogram), with a
//           10% safety pool; contiguous; overflows grow in place or migrate (to the pool when
//           the general area is full), else the request is preempted.
//   oracle  told every true length, one-token buckets: contiguous with perfect knowledge (the
//           upper bound for contiguous allocation).
//
// Every contiguous policy uses planes = 2 x layers, so each (layer, K/V) of a request is one
// run, and the arena is the device's KV memory on odma::backing::accounted<placement_only>.
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

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
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
    std::uint32_t s3_buckets = 10;    ///< S3's uniform buckets
    std::uint32_t block_tokens = 16;  ///< paged block size
    free_order paged_order = free_order::fifo;
    double paged_watermark = 0.0;
};

/// The names run_policy() accepts, in table order.
inline std::vector<std::string> policy_names() {
    return {"static", "s3", "paged", "odma", "oracle"};
}

/// True when the policy needs a trained predictor.
inline bool policy_uses_predictor(std::string_view name) {
    return name == "s3" || name == "odma";
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
    if (name == "paged") {
        using kv_t = paged<device_memory>;
        const paged_config c{.bytes_per_token = sm.model.bytes_per_token(),
                             .max_tokens = w.max_context,
                             .planes = sm.model.planes(),
                             .block_tokens = po.block_tokens,
                             .watermark = po.paged_watermark,
                             .order = po.paged_order};
        auto kv = std::make_unique<kv_t>(c, memory());
        return finish(serve(*kv, w, sm, so, progress));
    }
    if (name == "odma") {
        using kv_t = allocator<predict::ngram, bucket::online_histogram, device_memory>;
        odma::config c = base;
        c.safety_pool_fraction = po.safety_pool_fraction;
        auto kv = std::make_unique<kv_t>(
            c, need_model(), bucket::online_histogram(po.odma_buckets, w.max_context), memory());
        return finish(serve(*kv, w, sm, so, progress));
    }
    if (name == "oracle") {
        using kv_t = allocator<predict::oracle, bucket::fixed, device_memory>;
        auto kv =
            std::make_unique<kv_t>(base, predict::oracle{},
                                   bucket::fixed::uniform(w.max_context, w.max_context), memory());
        return finish(serve(*kv, w, sm, so, progress));
    }
    throw std::invalid_argument("unknown policy '" + std::string(name) +
                                "' (known: static, s3, paged, odma, oracle)");
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
