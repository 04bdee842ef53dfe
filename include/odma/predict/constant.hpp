// odma/predict/constant.hpp - the static worst-case baseline.
#pragma once

#include <odma/prediction.hpp>
#include <odma/request.hpp>

#include <cstdint>

namespace odma::predict {

/// Predicts that every request generates its full max_new_tokens, with certainty.
///
/// Paired with a single max-size bucket this is static pre-allocation, the baseline ODMA
/// improves on. It learns nothing and is stateless, so it costs no space in the allocator.
struct constant {
    prediction predict(const request& r) const noexcept {
        return prediction::exact(r.max_new_tokens);
    }
    void observe(const request&, std::uint32_t) const noexcept {}
};

}  // namespace odma::predict
