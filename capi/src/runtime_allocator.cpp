// capi/src/runtime_allocator.cpp - odma_config -> the odma::allocator it names: validation and
// the choice of predictor (the instantiations are in compose_*.cpp).
#include "compose.hpp"

#include <odma/config.hpp>

#include <string>

namespace odma_capi {

using namespace compose;

std::unique_ptr<runtime_allocator> make_runtime_allocator(const odma_config& c) {
    if (c.struct_size < sizeof(odma_config))
        bad("struct_size", "is " + std::to_string(c.struct_size) +
                               ", less than sizeof(odma_config) = " +
                               std::to_string(sizeof(odma_config)) + " (call odma_config_init)");
    odma::config cfg;
    cfg.bytes_per_token = c.bytes_per_token;
    cfg.max_tokens = c.max_tokens;
    cfg.safety_pool_fraction = c.safety_pool_fraction;
    cfg.overflow_risk = c.overflow_risk;
    cfg.planes = c.planes;
    cfg.max_runs = c.max_runs;
    cfg.run_alignment = c.run_alignment;
    cfg.lend_reserved = c.lend_reserved != 0;
    cfg.demand_limit = c.demand_limit;
    // An arena that can grow: the backing reserves max_arena_bytes and the allocator starts
    // with arena_bytes of it. Without max_arena_bytes the arena is the whole backing.
    cfg.arena_bytes = c.max_arena_bytes != 0 ? c.arena_bytes : 0;
    // The sizes first, so that a bad one is named before the policies built from it complain.
    odma::detail::validate_fields(cfg);
    if (c.arena_bytes == 0) bad("arena_bytes", "must be greater than zero");
    if (c.max_arena_bytes != 0 && raw(c.backing) != ODMA_BACKING_HOST_VMM)
        bad("max_arena_bytes", "only ODMA_BACKING_HOST_VMM can grow its arena");
    if (c.max_arena_bytes != 0 && c.max_arena_bytes < c.arena_bytes)
        bad("max_arena_bytes", "is " + std::to_string(c.max_arena_bytes) +
                                   ", less than arena_bytes (" + std::to_string(c.arena_bytes) +
                                   ")");

    // The C-only fields, before anything is allocated.
    const int backing = raw(c.backing), buckets = raw(c.buckets);
    if (backing < ODMA_BACKING_HOST || backing > ODMA_BACKING_OFFSETS)
        bad("backing", "unknown odma_backing_kind " + std::to_string(backing));
    if (backing == ODMA_BACKING_OFFSETS && !c.copy_fn)
        bad("copy_fn", "ODMA_BACKING_OFFSETS needs a copy_fn (migrations copy through it)");
    if (buckets < ODMA_BUCKETS_UNIFORM || buckets > ODMA_BUCKETS_ONLINE_HISTOGRAM)
        bad("buckets", "unknown odma_bucket_kind " + std::to_string(buckets));

    switch (raw(c.predictor)) {
        case ODMA_PREDICT_CONSTANT:
            return make_constant(c, cfg);
        case ODMA_PREDICT_PROMPT_QUANTILE:
            return make_prompt_quantile(c, cfg);
        case ODMA_PREDICT_NGRAM:
            if (!c.ngram_model_path || !*c.ngram_model_path)
                bad("ngram_model_path", "ODMA_PREDICT_NGRAM needs the path of a model file");
            return make_ngram(c, cfg);
        case ODMA_PREDICT_CALLBACK:
            if (!c.predict_fn) bad("predict_fn", "ODMA_PREDICT_CALLBACK needs a predict_fn");
            return make_callback(c, cfg);
    }
    bad("predictor", "unknown odma_predictor_kind " + std::to_string(raw(c.predictor)));
}

}  // namespace odma_capi
