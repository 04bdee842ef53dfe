// odma/predict/ngram.hpp - a lightweight text model of the generation length.
//
// The prompt's hashed word, word-pair and character n-grams, its length and the request class
// (tag) feed one linear layer whose softmax is a distribution over log-spaced length classes
// (length_classes). Trained with plain SGD on cross-entropy against slightly smoothed targets,
// then recalibrated on held-out prompts so that its quantiles cover what they claim. Inference
// hashes the text once and sums one weight row per feature: no allocation, a few microseconds.
//
// This is the header to include. The model's parts live beside it, one job each:
//   ngram_options.hpp             the shape and training settings (public)
//   detail/text_features.hpp      the tokenizer: hashed words, word pairs, character n-grams
//   detail/feature_hashing.hpp    feature -> weight row (the one row hash), numeric features
//   detail/row_kernels.hpp        the hand-tuned loops over weight rows
//   detail/weight_table.hpp       the hashed weight table, logits and SGD updates on it
//   detail/ngram_inference.hpp    class probabilities of one request (the hot path)
//   detail/ngram_training.hpp     encoding, SGD and the quantile calibration
//   detail/ngram_file.hpp         the model file (save/load)
#pragma once

#include <odma/predict/detail/class_quantiles.hpp>
#include <odma/predict/detail/ngram_file.hpp>
#include <odma/predict/detail/ngram_inference.hpp>
#include <odma/predict/detail/ngram_training.hpp>
#include <odma/predict/detail/weight_table.hpp>
#include <odma/predict/length_distribution.hpp>
#include <odma/predict/ngram_options.hpp>
#include <odma/predict/training_sample.hpp>
#include <odma/prediction.hpp>
#include <odma/request.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace odma::predict {

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
    explicit ngram(const options& o)
        : opts_(o), classes_(checked(o)), weights_(o.hash_bits, o.classes) {}

    /// Trains from scratch on `samples` with `o` (replacing the current model). Samples with
    /// generated_tokens == 0 are skipped. Throws std::invalid_argument for bad options.
    void train(std::span<const training_sample> samples, const options& o = {}) {
        classes_ = checked(o);
        opts_ = o;
        weights_ = detail::weight_table(o.hash_bits, o.classes);
        calibration_ = {};
        observations_ = 0;
        trained_ = false;
        auto result = detail::train(weights_, samples, opts_, classes_);
        calibration_ = result.calibration;
        trained_ = result.trained;
    }

    /// The predicted generated length of `r` (quantiles at prediction::levels, calibrated,
    /// capped at r.max_new_tokens). Untrained: exactly r.max_new_tokens.
    prediction predict(const request& r) const {
        if (!trained_) return prediction::exact(r.max_new_tokens);
        std::array<double, max_length_classes> cum;
        detail::cumulative(weights_, opts_, r, cum.data());
        return detail::to_prediction(classes_, cum.data(), calibration_, r.max_new_tokens);
    }

    /// The full predicted distribution of `r` (for bucket probabilities or any quantile).
    length_distribution distribution(const request& r) const {
        std::array<double, max_length_classes> mass{};
        if (!trained_) {
            mass[classes_.size() - 1] = 1.0;  // everything at the cap
        } else {
            std::array<double, max_length_classes> cum;
            detail::cumulative(weights_, opts_, r, cum.data());
            for (std::uint32_t c = 0; c < classes_.size(); ++c)
                mass[c] = cum[c] - (c ? cum[c - 1] : 0.0);
        }
        return {classes_, std::span(mass.data(), classes_.size()), calibration_, r.max_new_tokens};
    }

    /// Learns online from a finished request: one SGD step at online_learning_rate.
    void observe(const request& r, std::uint32_t generated) {
        if (generated == 0) return;
        if (weights_.empty()) weights_.allocate();
        const training_sample s{r, generated};
        const detail::encoded_set one = detail::encode(std::span(&s, 1), opts_, classes_);
        detail::sgd_step(weights_, one, one.samples[0],
                         static_cast<float>(opts_.online_learning_rate), opts_);
        ++observations_;
        if (!trained_ && observations_ >= opts_.warmup) trained_ = true;
    }

    /// Writes the model to `path` (format: odma/predict/detail/ngram_file.hpp, magic
    /// "ODMA-NGR"; the payload holds the options, the calibration and the non-zero weight
    /// rows). Throws std::system_error with errc::io_error when the file cannot be written.
    void save(const std::string& path) const {
        detail::write_ngram_file(path, opts_, trained_, observations_, calibration_, weights_);
    }

    /// Reads a model written by save(). Throws std::system_error with errc::io_error (cannot
    /// read) or errc::bad_format (not an ngram model, other version, truncated, corrupt).
    static ngram load(const std::string& path) {
        detail::ngram_file_contents file = detail::read_ngram_file(path);
        ngram m(file.options);
        m.trained_ = file.trained;
        m.observations_ = file.observations;
        m.calibration_ = file.calibration;
        m.weights_ = std::move(file.weights);
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
    static constexpr std::string_view magic = detail::ngram_magic;
    static constexpr std::uint32_t format_version = detail::ngram_format_version;

private:
    static length_classes checked(const options& o) {
        if (const std::string bad = detail::ngram_options_error(o); !bad.empty())
            throw std::invalid_argument("odma::predict::ngram::options: " + bad);
        return {o.classes, o.max_length};
    }

    options opts_;
    length_classes classes_;
    quantile_calibration calibration_;
    detail::weight_table weights_;  // empty until trained or observed
    std::uint64_t observations_ = 0;
    bool trained_ = false;
};

}  // namespace odma::predict
