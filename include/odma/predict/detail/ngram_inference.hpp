// odma/predict/detail/ngram_inference.hpp - predict::ngram's class probabilities for one
// request, on the hot path of every admission.
//
// The text is hashed once; each feature's row is prefetched as soon as it is found and summed
// later in blocks per feature kind (by sum_rows, whose running sum stays in registers); then
// each kind is scaled by 1/sqrt(its count), as in training. No allocation.
#pragma once

#include <odma/predict/detail/feature_hashing.hpp>
#include <odma/predict/detail/row_kernels.hpp>
#include <odma/predict/detail/text_features.hpp>
#include <odma/predict/detail/weight_table.hpp>
#include <odma/predict/ngram_options.hpp>
#include <odma/request.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace odma::predict::detail {

/// Sums the rows of a prompt's text features, kind by kind. Rows wait in a small buffer per
/// kind (prefetched as they are found) and are summed a block at a time.
template <std::uint32_t S>
struct text_accumulator {
    static constexpr std::size_t block = 32;
    text_accumulator(const float* t, std::uint32_t bits) noexcept : table(t), hash_bits(bits) {}

    const float* table;
    std::uint32_t hash_bits;
    std::array<row_block, text_feature_kinds> acc{};
    std::array<std::array<std::uint32_t, block>, text_feature_kinds> rows;
    std::array<std::size_t, text_feature_kinds> queued{}, count{};

    template <text_feature K>
    void operator()(feature_kind<K>, std::uint64_t h) noexcept {
        constexpr auto k = static_cast<std::uint32_t>(K);
        const std::uint32_t row = feature_row(k, h, hash_bits);
        prefetch(table + std::size_t(row) * S);
        rows[k][queued[k]] = row;
        if (++queued[k] == block) [[unlikely]]
            flush(k);
    }
    void flush(std::uint32_t k) noexcept {
        sum_rows<S>(acc[k].data(), table, rows[k].data(), queued[k]);
        count[k] += queued[k];
        queued[k] = 0;
    }
};

/// Logits of `r` for a table of stride S: numeric features first, then each kind of text
/// feature scaled by 1/sqrt(its count).
template <std::uint32_t S>
row_block text_and_meta_logits(const weight_table& table, const ngram_options& o,
                               const request& r) {
    text_accumulator<S> text(table.data(), table.hash_bits());
    for_each_text_feature(r.prompt_text, o, text);
    std::array<feature, 8> meta;
    std::size_t m = 0;
    for_each_meta_feature(r, table.hash_bits(), [&](std::uint32_t row, float v) {
        meta[m++] = {row, v};
    });
    row_block logit{};
    weighted_rows<S>(logit.data(), table.data(), meta.data(), m);
    for (std::uint32_t k = 0; k < text_feature_kinds; ++k) {
        text.flush(k);
        if (text.count[k] == 0) continue;
        const float scale = 1.0f / std::sqrt(float(text.count[k]));
        for (std::uint32_t c = 0; c < S; ++c)
            logit[c] += scale * text.acc[k][c];
    }
    return logit;
}

/// Class probabilities of `r` under `table` (allocated), cumulated, into cum[0..classes).
inline void cumulative(const weight_table& table, const ngram_options& o, const request& r,
                       double* cum) {
    row_block logit{};
    table.with_stride([&](auto S) { logit = text_and_meta_logits<S>(table, o, r); });
    softmax_cumulative(logit.data(), table.classes(), cum);
}

}  // namespace odma::predict::detail
