// odma/request.hpp - what the serving engine knows about a request when it admits it.
#pragma once

#include <odma/support/hash.hpp>

#include <cstdint>
#include <string_view>

namespace odma {

/// A generation request as the allocator sees it at admission.
///
/// Lifetime: the allocator keeps a copy of this struct with the lease and hands it back to the
/// predictor when the lease is released (that is how learned predictors improve online). The
/// copy holds `prompt_text` as a view, so the text must stay valid until release(). Pass an empty
/// view when that cannot be guaranteed; text predictors then fall back to the numeric fields.
struct request {
    /// Caller's identifier. odma does not interpret it, except predict::oracle, which looks up
    /// the true length by id.
    std::uint64_t id = 0;
    /// Tokens already in the prompt (held in KV from admission on). Must be > 0.
    std::uint32_t prompt_tokens = 0;
    /// Most tokens the request may generate (the engine's max_tokens sampling parameter). > 0.
    std::uint32_t max_new_tokens = 0;
    /// Prompt text for predictors that read it; may be empty.
    std::string_view prompt_text{};
    /// Optional request class (model name hash, tenant, endpoint...) for predictors to
    /// condition on. 0 means "no class". tag_of() turns a name into one.
    std::uint32_t tag = 0;
};

/// The request::tag for a class name: a fixed 32-bit hash (64-bit FNV-1a folded), the same on
/// every platform and in every odma tool; 0 ("no class") for an empty name and never otherwise.
constexpr std::uint32_t tag_of(std::string_view name) noexcept {
    if (name.empty()) return 0;
    const std::uint64_t h = support::fnv1a(name);
    const auto folded = static_cast<std::uint32_t>(h ^ (h >> 32));
    return folded ? folded : 1;
}

}  // namespace odma
