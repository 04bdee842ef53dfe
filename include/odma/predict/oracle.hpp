// odma/predict/oracle.hpp - knows the true lengths: the upper bound for evaluations.
#pragma once

#include <odma/prediction.hpp>
#include <odma/request.hpp>

#include <cstdint>
#include <unordered_map>

namespace odma::predict {

/// Predicts each request's true generated length exactly, because it was told in advance.
///
/// Tell it with tell(request_id, tokens) before admitting the request (a replay knows every
/// length). A request it was not told about is predicted at its max_new_tokens, the safe
/// answer. Lengths are forgotten once the request is observed, so memory stays bounded by the
/// number of requests told but not yet finished.
class oracle {
public:
    /// Records that request `id` will generate `tokens` tokens.
    void tell(std::uint64_t id, std::uint32_t tokens) { lengths_[id] = tokens; }

    /// Number of lengths told and not yet observed.
    std::size_t pending() const noexcept { return lengths_.size(); }

    prediction predict(const request& r) const {
        const auto it = lengths_.find(r.id);
        return prediction::exact(it == lengths_.end() ? r.max_new_tokens : it->second);
    }

    void observe(const request& r, std::uint32_t) { lengths_.erase(r.id); }

private:
    std::unordered_map<std::uint64_t, std::uint32_t> lengths_;
};

}  // namespace odma::predict
