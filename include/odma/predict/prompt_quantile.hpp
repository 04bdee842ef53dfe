// odma/predict/prompt_quantile.hpp - generation-length quantiles by prompt length and class,
// learned online in bounded memory; needs no prompt text.
#pragma once

#include <odma/predict/detail/class_quantiles.hpp>
#include <odma/predict/length_distribution.hpp>
#include <odma/predict/training_sample.hpp>
#include <odma/prediction.hpp>
#include <odma/request.hpp>
#include <odma/support/hash.hpp>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace odma::predict {

/// Settings of prompt_quantile (see there).
struct prompt_quantile_options {
    /// Length classes of the histograms and the longest length they cover.
    std::uint32_t classes = 48;
    std::uint32_t max_length = 32768;
    /// Prompt-length bins: [1,2), [2,4), [4,8), ...; the last bin is open-ended.
    std::uint32_t prompt_bins = 16;
    /// Tags are hashed into this many slots (0 = ignore tags). Tag 0 ("no class") has its
    /// own slot.
    std::uint32_t tag_slots = 16;
    /// Observations after which an old one weighs half as much (0 = never forget).
    double half_life = 0.0;
    /// Pseudo-observations a histogram borrows from its parent level.
    double prior_weight = 20.0;
    /// Observations before the first real prediction; until then predict() answers
    /// max_new_tokens.
    std::uint32_t warmup = 16;
};

/// Online estimate of the generated-length distribution given the prompt length (log2 bins)
/// and the request class (tag), for traces without text or as a cold-start predictor.
///
/// It keeps decayed histograms over log-spaced length classes at three levels: all requests,
/// each tag, and each (tag, prompt-length bin) cell. A cell with few observations borrows
/// `prior_weight` pseudo-observations from its tag, and a tag from the global histogram
/// (hierarchical shrinkage), so a rare prompt length or a new tag starts from the population and
/// moves towards its own data as it accumulates. Memory is fixed by the options
/// ((1 + slots + slots x prompt_bins) x classes doubles; about 100 KiB by default) whatever the
/// traffic.
///
/// The quantile the allocator reserves is chosen by config::overflow_risk (it reads
/// prediction::quantile(1 - risk)); predict_quantile() gives any level directly.
class prompt_quantile {
public:
    using options = prompt_quantile_options;

    prompt_quantile() : prompt_quantile(options{}) {}

    /// Throws std::invalid_argument for impossible options.
    explicit prompt_quantile(const options& o) : opts_(o), classes_(checked(o)) {
        slots_ = o.tag_slots + 1;
        const std::size_t nodes = 1 + slots_ + std::size_t(slots_) * o.prompt_bins;
        counts_.assign(nodes * classes_.size(), 0.0);
        weight_.assign(nodes, 0.0);
        stamp_.assign(nodes, 0);
        decay_ = o.half_life > 0.0 ? std::exp2(-1.0 / o.half_life) : 1.0;
    }

    /// Predicted generated length of `r` (capped at r.max_new_tokens).
    prediction predict(const request& r) const {
        if (clock_ < opts_.warmup) return prediction::exact(r.max_new_tokens);
        std::array<double, max_length_classes> p;
        estimate(r, p.data());
        std::array<double, max_length_classes> cum;
        double total = 0.0;
        for (std::uint32_t c = 0; c < classes_.size(); ++c)
            cum[c] = (total += p[c]);
        for (std::uint32_t c = 0; c < classes_.size(); ++c)
            cum[c] /= total;
        return detail::to_prediction(classes_, cum.data(), identity_, r.max_new_tokens);
    }

    /// The full predicted distribution of `r`.
    length_distribution distribution(const request& r) const {
        std::array<double, max_length_classes> p{};
        if (clock_ < opts_.warmup)
            p[classes_.size() - 1] = 1.0;
        else
            estimate(r, p.data());
        return {classes_, std::span(p.data(), classes_.size()), identity_, r.max_new_tokens};
    }

    /// The level-p quantile of the predicted generated length of `r`.
    std::uint32_t predict_quantile(const request& r, double p) const {
        return distribution(r).quantile(p);
    }

    /// Adds a finished request to its cell, its tag and the global histogram.
    void observe(const request& r, std::uint32_t generated) {
        if (generated == 0) return;
        const std::uint32_t c = classes_.class_of(generated);
        const std::uint32_t slot = slot_of(r.tag);
        for (const std::size_t node : {global_node(), tag_node(slot), cell_node(slot, r)}) {
            refresh(node);
            counts_[node * classes_.size() + c] += 1.0;
            weight_[node] += 1.0;
        }
        ++clock_;
    }

    /// observe() for each sample, in order.
    void train(std::span<const training_sample> samples) {
        for (const auto& s : samples)
            observe(s.request, s.generated_tokens);
    }

    /// Requests observed so far.
    std::uint64_t observations() const noexcept { return clock_; }
    const options& settings() const noexcept { return opts_; }
    const length_classes& classes() const noexcept { return classes_; }

private:
    static length_classes checked(const options& o) {
        if (o.prompt_bins == 0 || o.prompt_bins > 40)
            throw std::invalid_argument(
                "odma::predict::prompt_quantile: prompt_bins must be in "
                "[1, 40], got " +
                std::to_string(o.prompt_bins));
        if (o.tag_slots > 4096)
            throw std::invalid_argument("odma::predict::prompt_quantile: tag_slots above 4096");
        if (!(o.half_life >= 0.0) || !(o.prior_weight >= 0.0))
            throw std::invalid_argument(
                "odma::predict::prompt_quantile: half_life and prior_weight must be >= 0");
        return {o.classes, o.max_length};  // validates classes and max_length
    }

    std::size_t global_node() const noexcept { return 0; }
    std::size_t tag_node(std::uint32_t slot) const noexcept { return 1 + slot; }
    std::size_t cell_node(std::uint32_t slot, const request& r) const noexcept {
        const auto tokens = std::max<std::uint32_t>(r.prompt_tokens, 1);
        const auto bin = std::min<std::uint32_t>(std::bit_width(tokens) - 1, opts_.prompt_bins - 1);
        return 1 + slots_ + std::size_t(slot) * opts_.prompt_bins + bin;
    }
    std::uint32_t slot_of(std::uint32_t tag) const noexcept {
        if (tag == 0 || opts_.tag_slots == 0) return 0;
        return 1 + static_cast<std::uint32_t>(support::mix64(tag) % opts_.tag_slots);
    }

    // Brings a node's decayed counts up to the current clock.
    void refresh(std::size_t node) {
        if (decay_ == 1.0 || stamp_[node] == clock_) return;
        const double f = std::pow(decay_, double(clock_ - stamp_[node]));
        double* c = &counts_[node * classes_.size()];
        for (std::uint32_t k = 0; k < classes_.size(); ++k)
            c[k] *= f;
        weight_[node] *= f;
        stamp_[node] = clock_;
    }

    // Shrinks node's histogram towards `prior` (a distribution) into `out`.
    void shrink(std::size_t node, const double* prior, double* out) const {
        const double f = decay_ == 1.0 ? 1.0 : std::pow(decay_, double(clock_ - stamp_[node]));
        const double w = weight_[node] * f;
        const double m = opts_.prior_weight;
        const double* c = &counts_[node * classes_.size()];
        const double denom = w + m;
        for (std::uint32_t k = 0; k < classes_.size(); ++k)
            out[k] = denom > 0.0 ? (c[k] * f + m * prior[k]) / denom : prior[k];
    }

    // Shrunken class probabilities for `r`.
    void estimate(const request& r, double* out) const {
        const std::uint32_t n = classes_.size();
        std::array<double, max_length_classes> uniform, global, tag;
        uniform.fill(1.0 / n);
        shrink(global_node(), uniform.data(), global.data());
        const std::uint32_t slot = slot_of(r.tag);
        shrink(tag_node(slot), global.data(), tag.data());
        shrink(cell_node(slot, r), tag.data(), out);
    }

    options opts_;
    length_classes classes_;
    quantile_calibration identity_;
    std::uint32_t slots_ = 1;
    double decay_ = 1.0;
    std::uint64_t clock_ = 0;
    std::vector<double> counts_;        // node x class, decayed
    std::vector<double> weight_;        // node total, decayed
    std::vector<std::uint64_t> stamp_;  // clock at a node's last refresh
};

}  // namespace odma::predict
