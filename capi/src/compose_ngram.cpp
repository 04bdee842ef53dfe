// capi/src/compose_ngram.cpp - the allocators of ODMA_PREDICT_NGRAM (see compose.hpp).
#include "compose.hpp"

namespace odma_capi::compose {

std::unique_ptr<runtime_allocator> make_ngram(const odma_config& c, const odma::config& cfg) {
    return with_buckets(c, cfg, odma::predict::ngram::load(c.ngram_model_path));
}

}  // namespace odma_capi::compose
