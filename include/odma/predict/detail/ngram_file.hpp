// odma/predict/detail/ngram_file.hpp - predict::ngram's model file: what save() writes and
// load() reads back, validated.
//
// The container (magic "ODMA-NGR", version, size, checksum) is binary_io.hpp's. The payload, all
// little-endian: the options (nine u32: hash_bits, classes, max_length, char_ngram, word_pairs,
// char_mode, max_text_bytes, epochs, warmup; five f64: learning_rate, l2, label_smoothing,
// calibration_fraction, online_learning_rate; u64 seed), u32 trained, u64 observations, the 21
// f64 calibration levels, u32 count of saved rows, then per row its u32 index and `classes`
// f32 weights, rows ascending. Only rows with a non-zero weight are saved: most of a hashed
// table is zero.
#pragma once

#include <odma/predict/detail/binary_io.hpp>
#include <odma/predict/detail/text_features.hpp>
#include <odma/predict/detail/weight_table.hpp>
#include <odma/predict/ngram_options.hpp>
#include <odma/predict/quantile_calibration.hpp>

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace odma::predict::detail {

/// File identification (ngram::magic and ngram::format_version).
inline constexpr std::string_view ngram_magic = "ODMA-NGR";
inline constexpr std::uint32_t ngram_format_version = 1;

/// Everything a model file holds.
struct ngram_file_contents {
    ngram_options options;
    bool trained = false;
    std::uint64_t observations = 0;
    quantile_calibration calibration;
    weight_table weights;
};

/// Writes a model to `path`. Throws std::system_error with errc::io_error when the file cannot
/// be written.
inline void write_ngram_file(const std::string& path, const ngram_options& o, bool trained,
                             std::uint64_t observations, const quantile_calibration& calibration,
                             const weight_table& weights) {
    byte_writer w;
    w.u32(o.hash_bits);
    w.u32(o.classes);
    w.u32(o.max_length);
    w.u32(o.char_ngram);
    w.u32(o.word_pairs ? 1 : 0);
    w.u32(static_cast<std::uint32_t>(o.char_mode));
    w.u32(o.max_text_bytes);
    w.u32(o.epochs);
    w.u32(o.warmup);
    w.f64(o.learning_rate);
    w.f64(o.l2);
    w.f64(o.label_smoothing);
    w.f64(o.calibration_fraction);
    w.f64(o.online_learning_rate);
    w.u64(o.seed);
    w.u32(trained ? 1 : 0);
    w.u64(observations);
    for (const double v : calibration.levels())
        w.f64(v);
    const std::size_t rows = weights.empty() ? 0 : weights.rows();
    std::uint32_t used = 0;
    for (std::size_t row = 0; row < rows; ++row)
        used += weights.row_used(row) ? 1 : 0;
    w.u32(used);
    for (std::size_t row = 0; row < rows; ++row) {
        if (!weights.row_used(row)) continue;
        w.u32(static_cast<std::uint32_t>(row));
        for (std::uint32_t c = 0; c < weights.classes(); ++c)
            w.f32(weights.row(row)[c]);
    }
    write_file(path, ngram_magic, ngram_format_version, w.bytes());
}

/// Reads a model written by write_ngram_file(). Throws std::system_error with errc::io_error
/// (cannot read) or errc::bad_format (not an ngram model, other version, truncated, corrupt).
/// The weight table comes back allocated.
inline ngram_file_contents read_ngram_file(const std::string& path) {
    const auto payload = read_file(path, ngram_magic, ngram_format_version);
    byte_reader in(payload, path);
    ngram_options o;
    o.hash_bits = in.u32();
    o.classes = in.u32();
    o.max_length = in.u32();
    o.char_ngram = in.u32();
    o.word_pairs = in.u32() != 0;
    const std::uint32_t mode = in.u32();
    if (mode > static_cast<std::uint32_t>(char_grams::windows))
        in.fail("unknown character n-gram mode " + std::to_string(mode));
    o.char_mode = static_cast<char_grams>(mode);
    o.max_text_bytes = in.u32();
    o.epochs = in.u32();
    o.warmup = in.u32();
    o.learning_rate = in.f64();
    o.l2 = in.f64();
    o.label_smoothing = in.f64();
    o.calibration_fraction = in.f64();
    o.online_learning_rate = in.f64();
    o.seed = in.u64();
    if (const std::string bad = ngram_options_error(o); !bad.empty())
        in.fail("bad model shape: " + bad);
    ngram_file_contents m{o, false, 0, {}, weight_table(o.hash_bits, o.classes)};
    m.trained = in.u32() != 0;
    m.observations = in.u64();
    std::array<double, quantile_calibration::knots.size()> levels;
    for (double& v : levels)
        v = in.f64();
    if (!quantile_calibration::from_levels(levels, m.calibration))
        in.fail("calibration levels are not a monotone map of [0, 1]");
    const std::uint32_t used = in.u32();
    const std::uint32_t n = o.classes;
    if (used > m.weights.rows() || std::uint64_t(used) * (4 + 4ull * n) != in.remaining())
        in.fail("weight table size does not match the model shape");
    m.weights.allocate();
    std::int64_t last = -1;
    for (std::uint32_t k = 0; k < used; ++k) {
        const std::uint32_t row = in.u32();
        if (row >= m.weights.rows() || std::int64_t(row) <= last)
            in.fail("weight rows out of range or out of order");
        last = row;
        for (std::uint32_t c = 0; c < n; ++c) {
            const float v = in.f32();
            if (!std::isfinite(v)) in.fail("a weight is not a finite number");
            m.weights.row(row)[c] = v;
        }
    }
    in.expect_end();
    return m;
}

}  // namespace odma::predict::detail
