// odma/predict/oracle.hpp - knows the true lengths: the upper bound for evaluations.
#pragma once

#include <odma/prediction.hpp>
#include <odma/request.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace odma::predict {

/// Predicts each request's true generated length exactly, because it was told in advance.
///
/// Tell it with tell(request_id, tokens) before admitting the request (a replay knows every
/// length). A request it was not told about is predicted at its max_new_tokens, the safe
/// answer. Lengths are forgotten once the request is observed, so memory stays bounded by the
/// number of requests told but not yet finished.
///
/// The lengths are kept sorted by id in a vector: lookups are a binary search, and telling or
/// observing moves the entries after the id. That is cheapest for what an oracle holds (the
/// requests in flight, at most a few thousand, usually told in increasing id order, which
/// appends) and keeps <unordered_map> out of every includer.
class oracle {
public:
    /// Records that request `id` will generate `tokens` tokens (replacing what was told before).
    void tell(std::uint64_t id, std::uint32_t tokens) {
        const auto it = find(lengths_, id);
        if (it != lengths_.end() && it->id == id)
            it->tokens = tokens;
        else
            lengths_.insert(it, {id, tokens});
    }

    /// Number of lengths told and not yet observed.
    std::size_t pending() const noexcept { return lengths_.size(); }

    prediction predict(const request& r) const {
        const auto it = find(lengths_, r.id);
        return prediction::exact(it != lengths_.end() && it->id == r.id ? it->tokens
                                                                        : r.max_new_tokens);
    }

    void observe(const request& r, std::uint32_t) {
        const auto it = find(lengths_, r.id);
        if (it != lengths_.end() && it->id == r.id) lengths_.erase(it);
    }

private:
    struct told {
        std::uint64_t id;
        std::uint32_t tokens;
    };

    // The first entry of `lengths` with an id not below `id` (const or not).
    template <class Lengths>
    static auto find(Lengths& lengths, std::uint64_t id) -> decltype(lengths.begin()) {
        return std::lower_bound(lengths.begin(), lengths.end(), id,
                                [](const told& t, std::uint64_t v) { return t.id < v; });
    }

    std::vector<told> lengths_;  // ascending id
};

}  // namespace odma::predict
