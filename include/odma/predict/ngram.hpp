// odma/predict/ngram.hpp - a lightweight text model of the generation length.
//
// The prompt's hashed word, word-pair and character n-grams, its length and the request class
// (tag) feed one linear layer whose softmax is a distribution over log-spaced length classes
// (length_classes). Trained with plain SGD on cross-entropy against slightly smoothed targets,
// then recalibrated on held-out prompts so that its quantiles cover what they claim. Inference
// hashes the text once and sums one weight row per feature: no allocation, a few microseconds.
#pragma once

#include <odma/detail/binary_io.hpp>
#include <odma/detail/text_features.hpp>
#include <odma/predict/length_distribution.hpp>
#include <odma/predict/training_sample.hpp>
#include <odma/prediction.hpp>
#include <odma/request.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

// Loop unrolling and prefetch hints for the weight-row kernels (no-ops where unsupported).
// nvcc's host pass spells the unroll pragma its own way and warns on the GCC one.
#if defined(__CUDACC__)
#define ODMA_DETAIL_UNROLL _Pragma("unroll 64")
#define ODMA_DETAIL_PREFETCH(address) __builtin_prefetch(address)
#define ODMA_DETAIL_NOINLINE __attribute__((noinline))
#elif defined(__GNUC__) || defined(__clang__)
#define ODMA_DETAIL_UNROLL _Pragma("GCC unroll 64")
#define ODMA_DETAIL_PREFETCH(address) __builtin_prefetch(address)
#define ODMA_DETAIL_NOINLINE __attribute__((noinline))
#else
#define ODMA_DETAIL_UNROLL
#define ODMA_DETAIL_PREFETCH(address) ((void)0)
#define ODMA_DETAIL_NOINLINE
#endif

namespace odma::predict {

/// Which character n-grams ngram uses (see ngram_options::char_mode).
using char_grams = detail::char_grams;

/// Model shape (stored in the model file) and training settings.
struct ngram_options {
    /// The feature table has 2^hash_bits rows of `classes` floats. Collisions grow as the
    /// vocabulary approaches the table size; 16 bits is 8 MiB in memory, far less on disk
    /// (only rows that were trained are saved).
    std::uint32_t hash_bits = 16;
    /// Log-spaced length classes and the longest length they cover.
    std::uint32_t classes = 32;
    std::uint32_t max_length = 32768;
    /// Character n-grams: their length (0 = none) and which ones. The default takes each
    /// word's first and last `char_ngram` characters (two features per word), which carries the
    /// stems and endings at a sixth of the cost of every window of the text (one per byte);
    /// on the bundled traces the two score the same (docs/predictors.md).
    std::uint32_t char_ngram = 4;
    char_grams char_mode = char_grams::affixes;
    /// Features for pairs of consecutive words. Off by default: on the bundled traces they did
    /// not improve any metric and cost about a sixth of the inference time (docs/predictors.md).
    bool word_pairs = false;
    /// Only the first max_text_bytes of a prompt are read (bounds inference time on very
    /// long prompts; instructions are usually stated near the start).
    std::uint32_t max_text_bytes = 4096;

    /// Passes over the training samples, and the SGD step size (decays linearly to 0).
    std::uint32_t epochs = 8;
    double learning_rate = 0.2;
    /// Weight decay per step on the rows a sample touches.
    double l2 = 1e-6;
    /// Standard deviation, in classes, of the Gaussian soft target around the true class
    /// (0 = one-hot). A little smoothing tells the model that neighbouring classes are
    /// nearly right, which one-hot cross-entropy over ordered classes ignores.
    double label_smoothing = 0.75;
    /// Share of the distinct prompts held out to fit the quantile calibration (0 = none).
    /// The final model is then retrained on all samples and keeps that calibration.
    double calibration_fraction = 0.2;
    /// SGD step of observe().
    double online_learning_rate = 0.05;
    /// Observations an untrained model needs before it predicts from what it learned.
    std::uint32_t warmup = 256;
    /// Seeds the shuffling and the calibration split.
    std::uint64_t seed = 1;
};

/// Hashed n-gram text model: predicts the distribution of a request's generated length.
///
/// Use: train(samples) once on past requests (or load() a saved model), then predict() per
/// admission; observe() keeps learning online with small SGD steps. An untrained model predicts
/// every request's max_new_tokens (the safe answer) until train() or `warmup` observations.
///
/// Determinism: for a fixed seed, samples and options, train() produces bit-identical weights
/// in a given build (fixed hashes, own random generator, fixed summation order).
/// Thread safety: predict()/distribution() are const and may run concurrently; observe(),
/// train() and load() need exclusive access.
class ngram {
public:
    using options = ngram_options;

    /// An untrained model with the default shape.
    ngram() : ngram(options{}) {}

    /// An untrained model of the given shape (for online-only learning through observe()).
    /// Throws std::invalid_argument for an impossible shape.
    explicit ngram(const options& o) : opts_(o), classes_(checked(o)), stride_(stride_for(o)) {}

    /// Trains from scratch on `samples` with `o` (replacing the current model). Samples with
    /// generated_tokens == 0 are skipped. Throws std::invalid_argument for bad options.
    void train(std::span<const training_sample> samples, const options& o = {}) {
        classes_ = checked(o);
        opts_ = o;
        stride_ = stride_for(o);
        calibration_ = {};
        observations_ = 0;
        trained_ = false;

        const encoded_set data = encode(samples);
        if (data.samples.empty()) {
            weights_.clear();
            return;
        }
        // Calibration split by prompt: every sample of a prompt text goes to the same side.
        std::vector<std::uint32_t> fit, held;
        for (std::uint32_t i = 0; i < data.samples.size(); ++i) {
            const auto key = detail::mix64(data.samples[i].group ^ o.seed);
            (double(key >> 11) * 0x1.0p-53 < o.calibration_fraction ? held : fit).push_back(i);
        }
        if (held.size() >= 50 && !fit.empty()) {
            fit_weights(data, fit);
            std::vector<double> pit;
            pit.reserve(held.size());
            for (const std::uint32_t i : held)
                pit.push_back(raw_distribution(data, i).pit(data.samples[i].generated));
            calibration_ = quantile_calibration::fit(std::move(pit));
        }
        std::vector<std::uint32_t> all(data.samples.size());
        for (std::uint32_t i = 0; i < all.size(); ++i)
            all[i] = i;
        fit_weights(data, all);
        trained_ = true;
    }

    /// The predicted generated length of `r` (quantiles at prediction::levels, calibrated,
    /// capped at r.max_new_tokens). Untrained: exactly r.max_new_tokens.
    prediction predict(const request& r) const {
        if (!trained_) return prediction::exact(r.max_new_tokens);
        std::array<double, max_length_classes> cum;
        cumulative(r, cum.data());
        return detail::to_prediction(classes_, cum.data(), calibration_, r.max_new_tokens);
    }

    /// The full predicted distribution of `r` (for bucket probabilities or any quantile).
    length_distribution distribution(const request& r) const {
        std::array<double, max_length_classes> mass{};
        if (!trained_) {
            mass[classes_.size() - 1] = 1.0;  // everything at the cap
        } else {
            std::array<double, max_length_classes> cum;
            cumulative(r, cum.data());
            for (std::uint32_t c = 0; c < classes_.size(); ++c)
                mass[c] = cum[c] - (c ? cum[c - 1] : 0.0);
        }
        return {classes_, std::span(mass.data(), classes_.size()), calibration_, r.max_new_tokens};
    }

    /// Learns online from a finished request: one SGD step at online_learning_rate.
    void observe(const request& r, std::uint32_t generated) {
        if (generated == 0) return;
        if (weights_.empty()) weights_.assign(rows() * stride_, 0.0f);
        const training_sample s{r, generated};
        const encoded_set one = encode(std::span(&s, 1));
        sgd_step(one, one.samples[0], static_cast<float>(opts_.online_learning_rate));
        ++observations_;
        if (!trained_ && observations_ >= opts_.warmup) trained_ = true;
    }

    /// Writes the model to `path` (format: odma/detail/binary_io.hpp, magic "ODMA-NGR"; the
    /// payload holds the options, the calibration and the non-zero weight rows).
    /// Throws std::system_error with errc::io_error when the file cannot be written.
    void save(const std::string& path) const {
        detail::byte_writer w;
        w.u32(opts_.hash_bits);
        w.u32(opts_.classes);
        w.u32(opts_.max_length);
        w.u32(opts_.char_ngram);
        w.u32(opts_.word_pairs ? 1 : 0);
        w.u32(static_cast<std::uint32_t>(opts_.char_mode));
        w.u32(opts_.max_text_bytes);
        w.u32(opts_.epochs);
        w.u32(opts_.warmup);
        w.f64(opts_.learning_rate);
        w.f64(opts_.l2);
        w.f64(opts_.label_smoothing);
        w.f64(opts_.calibration_fraction);
        w.f64(opts_.online_learning_rate);
        w.u64(opts_.seed);
        w.u32(trained_ ? 1 : 0);
        w.u64(observations_);
        for (const double v : calibration_.levels())
            w.f64(v);
        // Only trained rows: most of a hashed table is zero.
        const std::size_t used_rows = weights_.empty() ? 0 : rows();
        std::uint32_t used = 0;
        for (std::size_t row = 0; row < used_rows; ++row)
            used += row_used(row) ? 1 : 0;
        w.u32(used);
        for (std::size_t row = 0; row < used_rows; ++row) {
            if (!row_used(row)) continue;
            w.u32(static_cast<std::uint32_t>(row));
            for (std::uint32_t c = 0; c < classes_.size(); ++c)
                w.f32(weights_[row * stride_ + c]);
        }
        detail::write_file(path, magic, format_version, w.bytes());
    }

    /// Reads a model written by save(). Throws std::system_error with errc::io_error (cannot
    /// read) or errc::bad_format (not an ngram model, other version, truncated, corrupt).
    static ngram load(const std::string& path) {
        const auto payload = detail::read_file(path, magic, format_version);
        detail::byte_reader in(payload, path);
        options o;
        o.hash_bits = in.u32();
        o.classes = in.u32();
        o.max_length = in.u32();
        o.char_ngram = in.u32();
        o.word_pairs = in.u32() != 0;
        const std::uint32_t mode = in.u32();
        if (mode > static_cast<std::uint32_t>(detail::char_grams::windows))
            in.fail("unknown character n-gram mode " + std::to_string(mode));
        o.char_mode = static_cast<detail::char_grams>(mode);
        o.max_text_bytes = in.u32();
        o.epochs = in.u32();
        o.warmup = in.u32();
        o.learning_rate = in.f64();
        o.l2 = in.f64();
        o.label_smoothing = in.f64();
        o.calibration_fraction = in.f64();
        o.online_learning_rate = in.f64();
        o.seed = in.u64();
        if (const std::string bad = invalid(o); !bad.empty()) in.fail("bad model shape: " + bad);
        ngram m(o);
        m.trained_ = in.u32() != 0;
        m.observations_ = in.u64();
        std::array<double, quantile_calibration::knots.size()> levels;
        for (double& v : levels)
            v = in.f64();
        if (!quantile_calibration::from_levels(levels, m.calibration_))
            in.fail("calibration levels are not a monotone map of [0, 1]");
        const std::uint32_t used = in.u32();
        const std::uint32_t n = m.classes_.size();
        if (used > m.rows() || std::uint64_t(used) * (4 + 4ull * n) != in.remaining())
            in.fail("weight table size does not match the model shape");
        m.weights_.assign(m.rows() * m.stride_, 0.0f);
        std::int64_t last = -1;
        for (std::uint32_t k = 0; k < used; ++k) {
            const std::uint32_t row = in.u32();
            if (row >= m.rows() || std::int64_t(row) <= last)
                in.fail("weight rows out of range or out of order");
            last = row;
            for (std::uint32_t c = 0; c < n; ++c) {
                const float v = in.f32();
                if (!std::isfinite(v)) in.fail("a weight is not a finite number");
                m.weights_[std::size_t(row) * m.stride_ + c] = v;
            }
        }
        in.expect_end();
        return m;
    }

    /// True once train() succeeded or observe() passed the warm-up.
    bool trained() const noexcept { return trained_; }
    /// Observations learned online since the last train()/load().
    std::uint64_t observations() const noexcept { return observations_; }
    const options& settings() const noexcept { return opts_; }
    const length_classes& classes() const noexcept { return classes_; }
    const quantile_calibration& calibration() const noexcept { return calibration_; }

    /// File identification.
    static constexpr std::string_view magic = "ODMA-NGR";
    static constexpr std::uint32_t format_version = 1;

private:
    // A sparse feature: table row and value.
    struct feature {
        std::uint32_t row;
        float value;
    };
    struct encoded_sample {
        std::uint32_t begin, end;  // features in encoded_set::features
        std::uint32_t label;       // class of the generated length
        std::uint32_t generated;
        std::uint32_t cap;    // max_new_tokens
        std::uint64_t group;  // calibration split key (the prompt text)
    };
    struct encoded_set {
        std::vector<feature> features;
        std::vector<encoded_sample> samples;
    };
    using row_block = std::array<float, max_length_classes>;

    static std::string invalid(const options& o) {
        if (o.hash_bits < 8 || o.hash_bits > 24) return "hash_bits must be in [8, 24]";
        if (o.classes < 2 || o.classes > max_length_classes || o.max_length < o.classes)
            return "need 2 <= classes <= 64 and classes <= max_length";
        if (o.char_ngram > 8) return "char_ngram must be at most 8";
        if (o.max_text_bytes == 0) return "max_text_bytes must be > 0";
        if (!(o.learning_rate > 0.0) || !(o.online_learning_rate >= 0.0) || !(o.l2 >= 0.0) ||
            !(o.label_smoothing >= 0.0) ||
            !(o.calibration_fraction >= 0.0 && o.calibration_fraction < 1.0))
            return "learning rates, l2 and label_smoothing must be >= 0 (learning_rate > 0), "
                   "calibration_fraction in [0, 1)";
        return {};
    }
    static length_classes checked(const options& o) {
        if (const std::string bad = invalid(o); !bad.empty())
            throw std::invalid_argument("odma::predict::ngram::options: " + bad);
        return {o.classes, o.max_length};
    }
    // Rows are padded to a multiple of 8 floats so the kernels below run on whole vectors.
    static std::uint32_t stride_for(const options& o) noexcept { return (o.classes + 7) / 8 * 8; }

    std::size_t rows() const noexcept { return std::size_t{1} << opts_.hash_bits; }
    bool row_used(std::size_t row) const noexcept {
        const float* w = &weights_[row * stride_];
        return std::any_of(w, w + classes_.size(), [](float v) { return v != 0.0f; });
    }

    // Calls f(std::integral_constant<uint32_t, stride>) so the kernels get a compile-time row
    // width: their loops then unroll into registers.
    template <class F>
    decltype(auto) with_stride(F&& f) const {
        switch (stride_) {
            case 8:
                return f(std::integral_constant<std::uint32_t, 8>{});
            case 16:
                return f(std::integral_constant<std::uint32_t, 16>{});
            case 24:
                return f(std::integral_constant<std::uint32_t, 24>{});
            case 32:
                return f(std::integral_constant<std::uint32_t, 32>{});
            case 40:
                return f(std::integral_constant<std::uint32_t, 40>{});
            case 48:
                return f(std::integral_constant<std::uint32_t, 48>{});
            case 56:
                return f(std::integral_constant<std::uint32_t, 56>{});
            default:
                return f(std::integral_constant<std::uint32_t, 64>{});
        }
    }

    // acc += sum of the table rows `rows[0..n)`. Kept out of line: on its own the compiler keeps
    // the S-float sum in registers.
    template <std::uint32_t S>
    ODMA_DETAIL_NOINLINE static void sum_rows(float* acc, const float* table,
                                              const std::uint32_t* rows, std::size_t n) noexcept {
        std::array<float, S> a;
        std::copy_n(acc, S, a.begin());
        for (std::size_t i = 0; i < n; ++i) {
            const float* w = table + std::size_t(rows[i]) * S;
            ODMA_DETAIL_UNROLL
            for (std::uint32_t c = 0; c < S; ++c)
                a[c] += w[c];
        }
        std::copy_n(a.begin(), S, acc);
    }

    // acc += sum of value * row over the features [f, f + n).
    template <std::uint32_t S>
    static void weighted_rows(float* acc, const float* table, const feature* f,
                              std::size_t n) noexcept {
        std::array<float, S> a;
        std::copy_n(acc, S, a.begin());
        for (std::size_t i = 0; i < n; ++i) {
            const float* w = table + std::size_t(f[i].row) * S;
            const float v = f[i].value;
            ODMA_DETAIL_UNROLL
            for (std::uint32_t c = 0; c < S; ++c)
                a[c] += v * w[c];
        }
        std::copy_n(a.begin(), S, acc);
    }

    // row = decay * row - lr * value * grad for the features [f, f + n).
    template <std::uint32_t S>
    static void update_rows(float* table, const feature* f, std::size_t n, const float* grad,
                            float lr, float decay) noexcept {
        std::array<float, S> g;
        std::copy_n(grad, S, g.begin());
        for (std::size_t i = 0; i < n; ++i) {
            float* w = table + std::size_t(f[i].row) * S;
            const float step = lr * f[i].value;
            ODMA_DETAIL_UNROLL
            for (std::uint32_t c = 0; c < S; ++c)
                w[c] = decay * w[c] - step * g[c];
        }
    }

    // Salts keep the kinds of feature apart in the shared table.
    static constexpr std::array<std::uint64_t, 4> salt{
        0x9ae16a3b2f90404full, 0xc3a5c85c97cb3127ull, 0xb492b66fbe98f273ull, 0x9ddfea08eb382d69ull};
    // Multiplicative (Fibonacci) hashing: one multiply, the top bits depend on every input bit.
    static constexpr std::uint64_t hash_multiplier = 0x9e3779b97f4a7c15ull;
    std::uint32_t row_of(std::uint32_t kind, std::uint64_t h) const noexcept {
        return static_cast<std::uint32_t>(((h ^ salt[kind]) * hash_multiplier) >>
                                          (64 - opts_.hash_bits));
    }

    // Numeric features of a request: bias, prompt length, request class and their cross. The
    // prompt length is encoded on half-octave bins with linear interpolation between the two
    // nearest ("tent" features), so neighbouring lengths share what they learn.
    template <class F>
    void for_each_meta_feature(const request& r, F&& f) const {
        constexpr std::uint32_t meta = 3;
        f(row_of(meta, 1), 1.0f);  // bias
        if (r.prompt_text.empty()) f(row_of(meta, 2), 1.0f);
        const double x = 2.0 * std::log2(double(std::max<std::uint32_t>(r.prompt_tokens, 1)));
        const auto bin = static_cast<std::uint64_t>(x);
        const auto t = static_cast<float>(x - double(bin));
        f(row_of(meta, 0x100 + bin), 1.0f - t);
        f(row_of(meta, 0x100 + bin + 1), t);
        if (r.tag != 0) {
            const std::uint64_t tag = std::uint64_t(r.tag) << 8;
            f(row_of(meta, detail::mix64(tag)), 1.0f);
            f(row_of(meta, detail::mix64(tag + 0x10000 + bin)), 1.0f - t);
            f(row_of(meta, detail::mix64(tag + 0x10000 + bin + 1)), t);
        }
    }

    template <class F>
    void for_each_text_feature(std::string_view text, F&& f) const {
        detail::for_each_text_feature(text, opts_.char_mode, opts_.char_ngram, opts_.word_pairs,
                                      opts_.max_text_bytes, f);
    }

    // Class probabilities of `r`, cumulated, into cum[0..classes). The text is hashed once;
    // rows are prefetched as their features are found and summed in blocks per feature kind,
    // then each kind is scaled by 1/sqrt(its count) (as in training).
    void cumulative(const request& r, double* cum) const {
        row_block logit{};
        with_stride([&](auto S) { logit = text_and_meta_logits<S>(r); });
        softmax_cumulative(logit.data(), classes_.size(), cum);
    }

    // Sums the rows of a prompt's text features, kind by kind. Rows wait in a small buffer
    // (prefetched as they are found) and are summed in blocks by sum_rows, whose running sum
    // stays in registers.
    template <std::uint32_t S>
    struct text_accumulator {
        static constexpr std::size_t block = 32;
        text_accumulator(const float* t, std::uint32_t hash_bits) noexcept
            : table(t), shift(64u - hash_bits) {}

        const float* table;
        std::uint64_t shift;
        std::array<row_block, detail::text_feature_kinds> acc{};
        std::array<std::array<std::uint32_t, block>, detail::text_feature_kinds> rows;
        std::array<std::size_t, detail::text_feature_kinds> queued{}, count{};

        template <detail::text_feature K>
        void operator()(detail::feature_kind<K>, std::uint64_t h) noexcept {
            constexpr auto k = static_cast<std::uint32_t>(K);
            const auto row = static_cast<std::uint32_t>(((h ^ salt[k]) * hash_multiplier) >> shift);
            ODMA_DETAIL_PREFETCH(table + std::size_t(row) * S);
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

    template <std::uint32_t S>
    row_block text_and_meta_logits(const request& r) const {
        text_accumulator<S> text(weights_.data(), opts_.hash_bits);
        for_each_text_feature(r.prompt_text, text);
        row_block logit{};
        std::array<feature, 8> meta;
        std::size_t m = 0;
        for_each_meta_feature(r, [&](std::uint32_t row, float v) { meta[m++] = {row, v}; });
        weighted_rows<S>(logit.data(), weights_.data(), meta.data(), m);
        for (std::uint32_t k = 0; k < detail::text_feature_kinds; ++k) {
            text.flush(k);
            if (text.count[k] == 0) continue;
            const float scale = 1.0f / std::sqrt(float(text.count[k]));
            for (std::uint32_t c = 0; c < S; ++c)
                logit[c] += scale * text.acc[k][c];
        }
        return logit;
    }

    static void softmax_cumulative(const float* logit, std::uint32_t n, double* cum) {
        const float top = *std::max_element(logit, logit + n);
        double total = 0.0;
        for (std::uint32_t c = 0; c < n; ++c) {
            total += double(std::exp(logit[c] - top));  // float exp: the logits are floats
            cum[c] = total;
        }
        for (std::uint32_t c = 0; c < n; ++c)
            cum[c] /= total;
        cum[n - 1] = 1.0;
    }

    // Features of every usable sample; the text features of a prompt are computed once and
    // copied for each sample that shares it (AlpacaEval has 25 answers per prompt). Each kind
    // of text feature is scaled by 1/sqrt(its count), so a long prompt does not outvote the
    // numeric features.
    encoded_set encode(std::span<const training_sample> samples) const {
        encoded_set out;
        std::unordered_map<std::string_view, std::pair<std::uint32_t, std::uint32_t>> seen;
        std::vector<std::uint32_t> kinds;
        for (std::size_t i = 0; i < samples.size(); ++i) {
            const auto& s = samples[i];
            if (s.generated_tokens == 0) continue;
            encoded_sample e{};
            e.begin = static_cast<std::uint32_t>(out.features.size());
            const auto [it, fresh] = seen.try_emplace(s.request.prompt_text, 0, 0);
            if (fresh) {
                std::array<std::uint32_t, detail::text_feature_kinds> count{};
                kinds.clear();
                for_each_text_feature(s.request.prompt_text, [&](auto kind, std::uint64_t h) {
                    const auto k = static_cast<std::uint32_t>(decltype(kind)::value);
                    out.features.push_back({row_of(k, h), 0.0f});
                    kinds.push_back(k);
                    ++count[k];
                });
                for (std::size_t j = 0; j < kinds.size(); ++j)
                    out.features[e.begin + j].value = 1.0f / std::sqrt(float(count[kinds[j]]));
                it->second = {e.begin, static_cast<std::uint32_t>(out.features.size())};
            } else {
                const auto [b, end] = it->second;
                for (std::uint32_t j = b; j < end; ++j)
                    out.features.push_back(out.features[j]);
            }
            for_each_meta_feature(s.request, [&](std::uint32_t row, float v) {
                out.features.push_back({row, v});
            });
            e.end = static_cast<std::uint32_t>(out.features.size());
            e.generated = s.generated_tokens;
            e.label = classes_.class_of(s.generated_tokens);
            e.cap = s.request.max_new_tokens;
            e.group = s.request.prompt_text.empty()
                          ? detail::mix64(s.request.id * 0x9e3779b97f4a7c15ull + i)
                          : detail::fnv1a(s.request.prompt_text);
            out.samples.push_back(e);
        }
        return out;
    }

    // Soft target: a Gaussian over class indices around the true class (zero beyond 4 sigma).
    void target(std::uint32_t label, float* y) const {
        const std::uint32_t n = classes_.size();
        const double sigma = opts_.label_smoothing;
        double total = 0.0;
        for (std::uint32_t c = 0; c < n; ++c) {
            const double d = double(c) - double(label);
            const bool near = sigma > 0.0 ? std::abs(d) <= 4.0 * sigma : c == label;
            const double v = sigma > 0.0 ? std::exp(-0.5 * d * d / (sigma * sigma)) : 1.0;
            y[c] = near ? static_cast<float>(v) : 0.0f;
            total += y[c];
        }
        for (std::uint32_t c = 0; c < n; ++c)
            y[c] = static_cast<float>(y[c] / total);
    }

    // Logits of an encoded sample.
    row_block logits(const encoded_set& data, const encoded_sample& s) const {
        row_block logit{};
        with_stride([&](auto S) {
            weighted_rows<S>(logit.data(), weights_.data(), data.features.data() + s.begin,
                             s.end - s.begin);
        });
        return logit;
    }

    // One SGD step on the cross-entropy of sample `s` (weights must be allocated).
    void sgd_step(const encoded_set& data, const encoded_sample& s, float lr) {
        const std::uint32_t n = classes_.size();
        const row_block logit = logits(data, s);
        std::array<double, max_length_classes> cum;
        softmax_cumulative(logit.data(), n, cum.data());
        row_block y{}, grad{};  // padding classes keep a zero gradient
        target(s.label, y.data());
        for (std::uint32_t c = 0; c < n; ++c)
            grad[c] = static_cast<float>(cum[c] - (c ? cum[c - 1] : 0.0)) - y[c];
        const float decay = 1.0f - lr * static_cast<float>(opts_.l2);
        with_stride([&](auto S) {
            update_rows<S>(weights_.data(), data.features.data() + s.begin, s.end - s.begin,
                           grad.data(), lr, decay);
        });
    }

    // Trains fresh weights on the samples `order` with linearly decaying SGD steps.
    void fit_weights(const encoded_set& data, std::vector<std::uint32_t> order) {
        weights_.assign(rows() * stride_, 0.0f);
        detail::splitmix64 rng(opts_.seed);
        const double total = double(opts_.epochs) * double(order.size());
        double step = 0.0;
        for (std::uint32_t epoch = 0; epoch < opts_.epochs; ++epoch) {
            for (std::size_t i = order.size(); i > 1; --i)  // Fisher-Yates
                std::swap(order[i - 1], order[rng.below(i)]);
            for (const std::uint32_t i : order) {
                const double lr = opts_.learning_rate * std::max(1.0 - step / total, 1e-3);
                sgd_step(data, data.samples[i], static_cast<float>(lr));
                step += 1.0;
            }
        }
    }

    // The uncalibrated distribution of an encoded sample (for fitting the calibration).
    length_distribution raw_distribution(const encoded_set& data, std::uint32_t i) const {
        const auto& s = data.samples[i];
        const std::uint32_t n = classes_.size();
        const row_block logit = logits(data, s);
        std::array<double, max_length_classes> cum, mass;
        softmax_cumulative(logit.data(), n, cum.data());
        for (std::uint32_t c = 0; c < n; ++c)
            mass[c] = cum[c] - (c ? cum[c - 1] : 0.0);
        return {classes_, std::span(mass.data(), n), quantile_calibration{}, s.cap};
    }

    options opts_;
    length_classes classes_;
    std::uint32_t stride_ = 8;  // floats per table row (classes rounded up to a multiple of 8)
    quantile_calibration calibration_;
    std::vector<float> weights_;  // rows() x stride_, row-major; empty until trained
    std::uint64_t observations_ = 0;
    bool trained_ = false;
};

}  // namespace odma::predict

#undef ODMA_DETAIL_UNROLL
#undef ODMA_DETAIL_PREFETCH
#undef ODMA_DETAIL_NOINLINE
