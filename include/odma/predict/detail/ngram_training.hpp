// odma/predict/detail/ngram_training.hpp - how predict::ngram learns: feature encoding of the
// training samples, SGD on cross-entropy against smoothed targets, and the quantile calibration
// fitted on held-out prompts.
//
// Deterministic: fixed hashes, the project's own random generator and a fixed summation order,
// so a seed, samples and options give bit-identical weights in a given build.
#pragma once

#include <odma/predict/detail/feature_hashing.hpp>
#include <odma/predict/detail/row_kernels.hpp>
#include <odma/predict/detail/text_features.hpp>
#include <odma/predict/detail/weight_table.hpp>
#include <odma/predict/length_distribution.hpp>
#include <odma/predict/ngram_options.hpp>
#include <odma/predict/training_sample.hpp>
#include <odma/support/hash.hpp>
#include <odma/support/random.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace odma::predict::detail {

/// A training sample reduced to what SGD needs.
struct encoded_sample {
    std::uint32_t begin, end;  // features in encoded_set::features
    std::uint32_t label;       // class of the generated length
    std::uint32_t generated;
    std::uint32_t cap;    // max_new_tokens
    std::uint64_t group;  // calibration split key (the prompt text)
};

/// Encoded samples and their features, back to back.
struct encoded_set {
    std::vector<feature> features;
    std::vector<encoded_sample> samples;
};

/// The distinct prompt texts met so far and where their features were first written: an
/// open-addressing table on the texts' FNV-1a hashes, sized up front (no rehashing, no
/// <unordered_map>, whose 20,000 preprocessed lines every includer of ngram would pay for).
class text_index {
public:
    /// Features [begin, end) of a text in encoded_set::features.
    struct span_of_features {
        std::uint32_t begin = 0, end = 0;
    };

    /// Room for `texts` distinct texts.
    explicit text_index(std::size_t texts) {
        std::size_t size = 2;
        while (size < 2 * texts)
            size *= 2;
        slots_.assign(size, 0);
    }

    /// The entry of `text` (hash `h`) and whether it was just added (its span still to be set).
    std::pair<span_of_features*, bool> try_emplace(std::string_view text, std::uint64_t h) {
        const std::size_t mask = slots_.size() - 1;
        for (std::size_t i = support::mix64(h) & mask;; i = (i + 1) & mask) {
            if (slots_[i] == 0) {
                entries_.push_back({text, {}});
                slots_[i] = static_cast<std::uint32_t>(entries_.size());
                return {&entries_.back().features, true};
            }
            auto& e = entries_[slots_[i] - 1];
            if (e.text == text) return {&e.features, false};
        }
    }

private:
    struct entry {
        std::string_view text;
        span_of_features features;
    };
    std::vector<std::uint32_t> slots_;  // 1 + index into entries_, 0 = empty
    std::vector<entry> entries_;
};

/// Features of every usable sample (generated_tokens > 0). The text features of a prompt are
/// computed once and copied for each sample that shares it (AlpacaEval has 25 answers per
/// prompt). Each kind of text feature is scaled by 1/sqrt(its count), so a long prompt does not
/// outvote the numeric features.
inline encoded_set encode(std::span<const training_sample> samples, const ngram_options& o,
                          const length_classes& classes) {
    encoded_set out;
    text_index seen(samples.size());
    std::vector<std::uint32_t> kinds;
    for (std::size_t i = 0; i < samples.size(); ++i) {
        const auto& s = samples[i];
        if (s.generated_tokens == 0) continue;
        encoded_sample e{};
        e.begin = static_cast<std::uint32_t>(out.features.size());
        const std::uint64_t text_hash = support::fnv1a(s.request.prompt_text);
        const auto [text, fresh] = seen.try_emplace(s.request.prompt_text, text_hash);
        if (fresh) {
            std::array<std::uint32_t, text_feature_kinds> count{};
            kinds.clear();
            for_each_text_feature(s.request.prompt_text, o, [&](auto kind, std::uint64_t h) {
                const auto k = static_cast<std::uint32_t>(decltype(kind)::value);
                out.features.push_back({feature_row(k, h, o.hash_bits), 0.0f});
                kinds.push_back(k);
                ++count[k];
            });
            for (std::size_t j = 0; j < kinds.size(); ++j)
                out.features[e.begin + j].value = 1.0f / std::sqrt(float(count[kinds[j]]));
            *text = {e.begin, static_cast<std::uint32_t>(out.features.size())};
        } else {
            for (std::uint32_t j = text->begin; j < text->end; ++j)
                out.features.push_back(out.features[j]);
        }
        for_each_meta_feature(s.request, o.hash_bits, [&](std::uint32_t row, float v) {
            out.features.push_back({row, v});
        });
        e.end = static_cast<std::uint32_t>(out.features.size());
        e.generated = s.generated_tokens;
        e.label = classes.class_of(s.generated_tokens);
        e.cap = s.request.max_new_tokens;
        e.group = s.request.prompt_text.empty()
                      ? support::mix64(s.request.id * 0x9e3779b97f4a7c15ull + i)
                      : text_hash;
        out.samples.push_back(e);
    }
    return out;
}

/// Soft target into y[0..n): a Gaussian of standard deviation `sigma` classes over the class
/// indices around the true class (zero beyond 4 sigma; sigma 0 is one-hot). It tells the model
/// that neighbouring classes are nearly right, which one-hot cross-entropy over ordered classes
/// ignores.
inline void soft_target(std::uint32_t label, double sigma, std::uint32_t n, float* y) {
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

/// One SGD step at rate `lr` on the cross-entropy of sample `s` (the table must be allocated).
inline void sgd_step(weight_table& table, const encoded_set& data, const encoded_sample& s,
                     float lr, const ngram_options& o) {
    const std::uint32_t n = table.classes();
    const feature* f = data.features.data() + s.begin;
    const row_block logit = table.logits(f, s.end - s.begin);
    std::array<double, max_length_classes> cum;
    softmax_cumulative(logit.data(), n, cum.data());
    row_block y{}, grad{};  // padding classes keep a zero gradient
    soft_target(s.label, o.label_smoothing, n, y.data());
    for (std::uint32_t c = 0; c < n; ++c)
        grad[c] = static_cast<float>(cum[c] - (c ? cum[c - 1] : 0.0)) - y[c];
    const float decay = 1.0f - lr * static_cast<float>(o.l2);
    table.update(f, s.end - s.begin, grad.data(), lr, decay);
}

/// Trains fresh weights on the samples `order` with linearly decaying SGD steps, shuffled each
/// epoch by the options' seed.
inline void fit_weights(weight_table& table, const encoded_set& data,
                        std::vector<std::uint32_t> order, const ngram_options& o) {
    table.allocate();
    support::splitmix64 rng(o.seed);
    const double total = double(o.epochs) * double(order.size());
    double step = 0.0;
    for (std::uint32_t epoch = 0; epoch < o.epochs; ++epoch) {
        for (std::size_t i = order.size(); i > 1; --i)  // Fisher-Yates
            std::swap(order[i - 1], order[rng.below(i)]);
        for (const std::uint32_t i : order) {
            const double lr = o.learning_rate * std::max(1.0 - step / total, 1e-3);
            sgd_step(table, data, data.samples[i], static_cast<float>(lr), o);
            step += 1.0;
        }
    }
}

/// The probability integral transform of sample i's generated length under the uncalibrated
/// model (what the calibration is fitted to).
inline double raw_pit(const weight_table& table, const encoded_set& data, std::uint32_t i,
                      const length_classes& classes) {
    const auto& s = data.samples[i];
    const std::uint32_t n = classes.size();
    const row_block logit = table.logits(data.features.data() + s.begin, s.end - s.begin);
    std::array<double, max_length_classes> cum, mass;
    softmax_cumulative(logit.data(), n, cum.data());
    for (std::uint32_t c = 0; c < n; ++c)
        mass[c] = cum[c] - (c ? cum[c - 1] : 0.0);
    const length_distribution d(classes, std::span(mass.data(), n), quantile_calibration{}, s.cap);
    return d.pit(s.generated);
}

/// What train() produced.
struct training_result {
    bool trained = false;  // false: no usable sample (the table is then empty)
    quantile_calibration calibration;
};

/// Trains `table` from scratch on `samples`. When calibration_fraction holds out at least 50
/// samples, a first model is fitted on the rest and the calibration on its held-out PIT values;
/// the final weights are then refitted on all samples and keep that calibration. The split is by
/// prompt (every sample of a prompt text on the same side), so the calibration sees prompts the
/// model has not.
inline training_result train(weight_table& table, std::span<const training_sample> samples,
                             const ngram_options& o, const length_classes& classes) {
    training_result result;
    const encoded_set data = encode(samples, o, classes);
    if (data.samples.empty()) {
        table.clear();
        return result;
    }
    std::vector<std::uint32_t> fit, held;
    for (std::uint32_t i = 0; i < data.samples.size(); ++i) {
        const auto key = support::mix64(data.samples[i].group ^ o.seed);
        (double(key >> 11) * 0x1.0p-53 < o.calibration_fraction ? held : fit).push_back(i);
    }
    if (held.size() >= 50 && !fit.empty()) {
        fit_weights(table, data, fit, o);
        std::vector<double> pit;
        pit.reserve(held.size());
        for (const std::uint32_t i : held)
            pit.push_back(raw_pit(table, data, i, classes));
        result.calibration = quantile_calibration::fit(std::move(pit));
    }
    std::vector<std::uint32_t> all(data.samples.size());
    for (std::uint32_t i = 0; i < all.size(); ++i)
        all[i] = i;
    fit_weights(table, data, std::move(all), o);
    result.trained = true;
    return result;
}

}  // namespace odma::predict::detail
