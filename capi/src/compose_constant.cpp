// capi/src/compose_constant.cpp - the allocators of ODMA_PREDICT_CONSTANT (see compose.hpp).
#include "compose.hpp"

namespace odma_capi::compose {

std::unique_ptr<runtime_allocator> make_constant(const odma_config& c, const odma::config& cfg) {
    if (c.constant_tokens == 0) return with_buckets(c, cfg, odma::predict::constant{});
    return with_buckets(c, cfg, constant_tokens{c.constant_tokens});
}

}  // namespace odma_capi::compose
