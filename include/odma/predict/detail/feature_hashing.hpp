// odma/predict/detail/feature_hashing.hpp - which weight rows a request's features select in
// predict::ngram's hashed table.
//
// Every feature, text or numeric, is a 64-bit hash and a kind; feature_row() is the one place
// that maps the two to a table row, so training and inference cannot disagree on it.
#pragma once

#include <odma/predict/detail/text_features.hpp>
#include <odma/predict/ngram_options.hpp>
#include <odma/request.hpp>
#include <odma/support/hash.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string_view>

namespace odma::predict::detail {

/// Kind of the numeric features (after the text_feature kinds).
inline constexpr std::uint32_t meta_feature_kind = text_feature_kinds;

/// The table row (of 2^hash_bits) of a feature of kind `kind` with hash `h`. A salt per kind
/// keeps the kinds apart in the shared table; multiplicative (Fibonacci) hashing then takes the
/// top bits, which depend on every input bit, with a single multiply.
constexpr std::uint32_t feature_row(std::uint32_t kind, std::uint64_t h,
                                    std::uint32_t hash_bits) noexcept {
    constexpr std::array<std::uint64_t, meta_feature_kind + 1> salt{
        0x9ae16a3b2f90404full, 0xc3a5c85c97cb3127ull, 0xb492b66fbe98f273ull, 0x9ddfea08eb382d69ull};
    constexpr std::uint64_t multiplier = 0x9e3779b97f4a7c15ull;
    return static_cast<std::uint32_t>(((h ^ salt[kind]) * multiplier) >> (64 - hash_bits));
}

/// Calls f(row, value) for the numeric features of a request: bias, prompt length, request
/// class and their cross (at most 7). The prompt length is encoded on half-octave bins with
/// linear interpolation between the two nearest ("tent" features), so neighbouring lengths
/// share what they learn.
template <class F>
void for_each_meta_feature(const request& r, std::uint32_t hash_bits, F&& f) {
    auto row = [hash_bits](std::uint64_t h) {
        return feature_row(meta_feature_kind, h, hash_bits);
    };
    f(row(1), 1.0f);  // bias
    if (r.prompt_text.empty()) f(row(2), 1.0f);
    const double x = 2.0 * std::log2(double(std::max<std::uint32_t>(r.prompt_tokens, 1)));
    const auto bin = static_cast<std::uint64_t>(x);
    const auto t = static_cast<float>(x - double(bin));
    f(row(0x100 + bin), 1.0f - t);
    f(row(0x100 + bin + 1), t);
    if (r.tag != 0) {
        const std::uint64_t tag = std::uint64_t(r.tag) << 8;
        f(row(support::mix64(tag)), 1.0f);
        f(row(support::mix64(tag + 0x10000 + bin)), 1.0f - t);
        f(row(support::mix64(tag + 0x10000 + bin + 1)), t);
    }
}

/// Calls f(feature_kind<K>{}, hash) for the text features of `text` that the options select
/// (see detail::for_each_text_feature); feature_row() gives their rows.
template <class F>
void for_each_text_feature(std::string_view text, const ngram_options& o, F&& f) {
    for_each_text_feature(text, o.char_mode, o.char_ngram, o.word_pairs, o.max_text_bytes, f);
}

}  // namespace odma::predict::detail
