// capi/src/compose_learned.cpp - the allocators of ODMA_PREDICT_PROMPT_QUANTILE and
// ODMA_PREDICT_CALLBACK (see compose.hpp).
#include "compose.hpp"

namespace odma_capi::compose {

std::unique_ptr<runtime_allocator> make_prompt_quantile(const odma_config& c,
                                                        const odma::config& cfg) {
    return with_buckets(c, cfg, odma::predict::prompt_quantile{});
}

std::unique_ptr<runtime_allocator> make_callback(const odma_config& c, const odma::config& cfg) {
    return with_buckets(c, cfg,
                        callback_predictor(c_predict{c.predict_fn, c.predict_user},
                                           c_observe{c.observe_fn, c.predict_user}));
}

}  // namespace odma_capi::compose
