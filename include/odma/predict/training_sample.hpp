// odma/predict/training_sample.hpp - one finished request, as learned predictors train on it.
#pragma once

#include <odma/request.hpp>

#include <cstdint>

namespace odma::predict {

/// One finished request to learn from: what was known at admission, and how many tokens it
/// generated. request.prompt_text must stay valid while the sample is used.
struct training_sample {
    odma::request request;
    std::uint32_t generated_tokens = 0;
};

}  // namespace odma::predict
