// odma/predict/detail/weight_table.hpp - predict::ngram's hashed weight table and the
// operations on it that inference and training share: logits of a set of features, an SGD
// update of their rows, and the softmax that turns logits into class probabilities.
#pragma once

#include <odma/predict/detail/row_kernels.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace odma::predict::detail {

/// 2^hash_bits rows of `classes` floats, each row padded to a multiple of 8 floats (the stride)
/// so the row kernels run on whole vectors. Empty (no memory) until allocate(): an untrained
/// model of 16 hash bits would otherwise hold 8 MiB of zeros.
class weight_table {
public:
    weight_table(std::uint32_t hash_bits, std::uint32_t classes) noexcept
        : hash_bits_(hash_bits), classes_(classes), stride_((classes + 7) / 8 * 8) {}

    std::uint32_t hash_bits() const noexcept { return hash_bits_; }
    std::uint32_t classes() const noexcept { return classes_; }
    /// Floats per row (classes rounded up to a multiple of 8).
    std::uint32_t stride() const noexcept { return stride_; }
    std::size_t rows() const noexcept { return std::size_t{1} << hash_bits_; }

    bool empty() const noexcept { return weights_.empty(); }
    /// All rows, zero (replaces any weights).
    void allocate() { weights_.assign(rows() * stride_, 0.0f); }
    /// Back to no memory, as before allocate().
    void clear() noexcept { weights_.clear(); }

    /// Row `row` (allocated tables only).
    float* row(std::size_t row) noexcept { return weights_.data() + row * stride_; }
    const float* row(std::size_t row) const noexcept { return weights_.data() + row * stride_; }
    /// The whole table, row-major (allocated tables only).
    const float* data() const noexcept { return weights_.data(); }
    /// True if any weight of the row is non-zero (only such rows are saved).
    bool row_used(std::size_t r) const noexcept {
        const float* w = row(r);
        return std::any_of(w, w + classes_, [](float v) { return v != 0.0f; });
    }

    /// Calls f(std::integral_constant<uint32_t, stride()>): see detail::with_stride.
    template <class F>
    decltype(auto) with_stride(F&& f) const {
        return detail::with_stride(stride_, f);
    }

    /// Sum of value * row over the features [f, f + n) (allocated tables only).
    row_block logits(const feature* f, std::size_t n) const {
        row_block logit{};
        with_stride([&](auto S) { weighted_rows<S>(logit.data(), weights_.data(), f, n); });
        return logit;
    }

    /// row = decay * row - lr * value * grad for the features [f, f + n): one SGD step with
    /// weight decay on the rows a sample touches (allocated tables only).
    void update(const feature* f, std::size_t n, const float* grad, float lr, float decay) {
        with_stride([&](auto S) { update_rows<S>(weights_.data(), f, n, grad, lr, decay); });
    }

private:
    std::uint32_t hash_bits_;
    std::uint32_t classes_;
    std::uint32_t stride_;
    std::vector<float> weights_;  // rows() x stride_, row-major; empty until allocate()
};

/// Softmax of logit[0..n), cumulated into cum[0..n) (cum[n-1] is exactly 1).
inline void softmax_cumulative(const float* logit, std::uint32_t n, double* cum) {
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

}  // namespace odma::predict::detail
