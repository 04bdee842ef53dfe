// odma/predict/detail/text_features.hpp - hashed word and character n-grams of a prompt: the
// tokenizer of predict::ngram.
//
// Nothing here allocates: features are handed to a visitor as they are found, so a predictor
// can sum weight rows on the fly (inference) or record them (training).
#pragma once

#include <odma/support/hash.hpp>

#include <cstdint>
#include <cstring>
#include <string_view>
#include <type_traits>

namespace odma::predict::detail {

/// Kinds of text feature; each is normalised separately by the predictor.
enum class text_feature : std::uint8_t { word = 0, word_pair = 1, chars = 2 };
inline constexpr std::uint32_t text_feature_kinds = 3;

/// Byte classes of the tokenizer: 0 white space, 1 word character (ASCII letter or digit, or
/// any non-ASCII byte, so UTF-8 words stay whole), 2 punctuation.
struct byte_class_table {
    std::uint8_t kind[256];
    constexpr byte_class_table() : kind() {
        for (int c = 0; c < 256; ++c) {
            const bool space = c == ' ' || (c >= '\t' && c <= '\r');
            const bool word = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                              (c >= '0' && c <= '9') || c >= 0x80;
            kind[c] = space ? 0 : word ? 1 : 2;
        }
    }
};
inline constexpr byte_class_table byte_classes{};

/// How character n-grams are taken.
enum class char_grams : std::uint8_t {
    none,     ///< no character features
    affixes,  ///< each word's first and last n characters (stems and endings: "summ", "tion")
    windows,  ///< every window of n characters of the normalised text (about one per byte)
};

/// A feature kind as a compile-time value, so visitors can keep one buffer per kind in
/// registers instead of indexing an array.
template <text_feature K>
using feature_kind = std::integral_constant<text_feature, K>;

/// The n (1..8) bytes at `at` (inside [begin, end)) as one little-endian integer, read with a
/// single unaligned 8-byte load where the buffer allows it.
inline std::uint64_t load_bytes(const unsigned char* at, const unsigned char* begin,
                                const unsigned char* end, std::uint32_t n) noexcept {
    const std::uint64_t keep = n >= 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * n)) - 1;
    std::uint64_t v = 0;
    if (end - at >= 8) {
        std::memcpy(&v, at, 8);
        return v & keep;
    }
    if (at + n - begin >= 8) {  // read the 8 bytes that end where ours end
        std::memcpy(&v, at + n - 8, 8);
        return (v >> (8 * (8 - n))) & keep;
    }
    for (std::uint32_t i = 0; i < n; ++i)
        v |= std::uint64_t(at[i]) << (8 * i);
    return v;
}

/// for_each_text_feature() for one character n-gram mode (a template parameter, so the loop over
/// bytes carries no mode tests).
template <char_grams mode, class F>
void text_features_in_mode(std::string_view text, std::uint32_t char_n, bool word_pairs, F& f) {
    const auto* const begin = reinterpret_cast<const unsigned char*>(text.data());
    const auto* const end = begin + text.size();
    const auto* p = begin;
    const std::uint64_t mask =
        char_n >= 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * char_n)) - 1;
    std::uint64_t previous = 0x5bd1e995u;  // "start of text" token
    auto token = [&](std::uint64_t h) {
        f(feature_kind<text_feature::word>{}, h);
        if (word_pairs)
            f(feature_kind<text_feature::word_pair>{}, previous * support::fnv_prime + h);
        previous = h;
    };
    // windows mode: the last char_n characters of the normalised text (spaces collapsed).
    std::uint64_t window = 0;
    std::uint32_t filled = 0;
    auto window_char = [&](std::uint64_t c) {
        window = (window << 8) | c;
        if (++filled >= char_n) f(feature_kind<text_feature::chars>{}, window & mask);
    };
    while (p < end) {
        const std::uint8_t kind = byte_classes.kind[*p];
        if (kind == 0) {  // white space: one space in the normalised text
            while (++p < end && byte_classes.kind[*p] == 0) {}
            if constexpr (mode == char_grams::windows) {
                if (filled) window_char(' ');
            }
            continue;
        }
        if (kind == 2) {  // punctuation: a token of its own
            const std::uint64_t c = *p++;
            if constexpr (mode == char_grams::windows) window_char(c);
            token(((support::fnv_basis ^ c) * support::fnv_prime) ^ 0x70u);
            continue;
        }
        // A word: hash it; in affixes mode, also its first and last char_n characters. Word
        // bytes are case-folded by setting bit 5 (0x20): exact for ASCII letters, a no-op for
        // digits, and for non-ASCII bytes a harmless merge of pairs of byte values.
        const unsigned char* const start = p;
        std::uint64_t h = support::fnv_basis;
        do {
            const std::uint64_t c = *p | 0x20u;
            h = (h ^ c) * support::fnv_prime;
            if constexpr (mode == char_grams::windows) window_char(c);
        } while (++p < end && byte_classes.kind[*p] == 1);
        token(h);
        if constexpr (mode == char_grams::affixes) {
            const auto length = static_cast<std::size_t>(p - start);
            if (length >= char_n) {
                const std::uint64_t fold = 0x2020202020202020ull & mask;
                const std::uint64_t first = load_bytes(start, begin, end, char_n) | fold;
                f(feature_kind<text_feature::chars>{}, first | (std::uint64_t{1} << 63));
                if (length > char_n) {
                    const std::uint64_t last = load_bytes(p - char_n, begin, end, char_n) | fold;
                    f(feature_kind<text_feature::chars>{}, last | (std::uint64_t{1} << 62));
                }
            }
        }
    }
}

/// Calls f(feature_kind<K>{}, hash) for every feature of `text`:
///  - word:      each token (a run of ASCII letters/digits or non-ASCII bytes, lower-cased; or
///               one punctuation character);
///  - word_pair: each pair of consecutive tokens (when `word_pairs`);
///  - chars:     character n-grams of length `char_n` (1..8) as chosen by `mode`, over the text
///               case-folded with runs of white space collapsed to one space.
/// Only the first `max_bytes` bytes are read. The hashes are well mixed in their high bits
/// only: take the top bits after a multiplication (as ngram does), not the low bits.
template <class F>
void for_each_text_feature(std::string_view text, char_grams mode, std::uint32_t char_n,
                           bool word_pairs, std::size_t max_bytes, F&& f) {
    if (text.size() > max_bytes) text = text.substr(0, max_bytes);
    if (char_n == 0 || mode == char_grams::none)
        text_features_in_mode<char_grams::none>(text, char_n, word_pairs, f);
    else if (mode == char_grams::affixes)
        text_features_in_mode<char_grams::affixes>(text, char_n, word_pairs, f);
    else
        text_features_in_mode<char_grams::windows>(text, char_n, word_pairs, f);
}

}  // namespace odma::predict::detail
