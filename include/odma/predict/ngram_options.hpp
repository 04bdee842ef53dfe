// odma/predict/ngram_options.hpp - the shape and training settings of predict::ngram.
//
// Separate from ngram.hpp so that code which only configures a model (command-line tools,
// experiment presets) need not see how the model is trained or run.
#pragma once

#include <odma/predict/detail/text_features.hpp>
#include <odma/predict/length_classes.hpp>

#include <cstdint>
#include <string>

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

namespace detail {

/// What is wrong with `o` as an ngram model shape or training setting; empty when nothing is.
/// Used by the constructor (std::invalid_argument) and by load() (a corrupt model file).
inline std::string ngram_options_error(const ngram_options& o) {
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

}  // namespace detail
}  // namespace odma::predict
