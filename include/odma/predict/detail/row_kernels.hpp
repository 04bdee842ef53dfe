// odma/predict/detail/row_kernels.hpp - the hand-tuned loops over predict::ngram's weight rows.
//
// A model's prediction is a sum of a few hundred weight rows of 8..64 floats, and a training
// step updates the same rows: these loops are where ngram spends its time. Each takes the row
// width as a template parameter (a whole number of 8-float vectors) so the compiler keeps the
// running sum in registers and unrolls the inner loop; with_stride() turns the runtime width
// into that parameter. The portability macros they need are defined and undefined here.
#pragma once

#include <odma/predict/length_classes.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <type_traits>

// Loop unrolling and no-inline hints for the kernels (no-ops where unsupported). nvcc's host
// pass spells the unroll pragma its own way and warns on the GCC one.
#if defined(__CUDACC__)
#define ODMA_DETAIL_UNROLL _Pragma("unroll 64")
#define ODMA_DETAIL_NOINLINE __attribute__((noinline))
#elif defined(__GNUC__) || defined(__clang__)
#define ODMA_DETAIL_UNROLL _Pragma("GCC unroll 64")
#define ODMA_DETAIL_NOINLINE __attribute__((noinline))
#else
#define ODMA_DETAIL_UNROLL
#define ODMA_DETAIL_NOINLINE
#endif

namespace odma::predict::detail {

/// One weight row's worth of floats (logits, gradients, targets), padded to the widest model.
using row_block = std::array<float, max_length_classes>;

/// A sparse feature: its table row and its value.
struct feature {
    std::uint32_t row;
    float value;
};

/// Asks the hardware to start loading `address` into the cache (a hint; no-op where
/// unsupported). Inference calls it as soon as a feature's row is known, well before the row is
/// summed.
inline void prefetch(const void* address) noexcept {
#if defined(__GNUC__) || defined(__clang__)
    __builtin_prefetch(address);
#else
    (void)address;
#endif
}

/// Calls f(std::integral_constant<uint32_t, S>) with S == stride (a multiple of 8 up to
/// max_length_classes; anything else is treated as the widest), so the kernels below get a
/// compile-time row width and their loops unroll into registers.
template <std::uint32_t S = 8, class F>
decltype(auto) with_stride(std::uint32_t stride, F&& f) {
    static_assert(S % 8 == 0 && S <= max_length_classes);
    if constexpr (S < max_length_classes) {
        if (stride != S) return with_stride<S + 8>(stride, f);
    }
    return f(std::integral_constant<std::uint32_t, S>{});
}

/// acc += sum of the table rows `rows[0..n)`. Kept out of line: on its own the compiler keeps
/// the S-float sum in registers.
template <std::uint32_t S>
ODMA_DETAIL_NOINLINE void sum_rows(float* acc, const float* table, const std::uint32_t* rows,
                                   std::size_t n) noexcept {
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

/// acc += sum of value * row over the features [f, f + n).
template <std::uint32_t S>
void weighted_rows(float* acc, const float* table, const feature* f, std::size_t n) noexcept {
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

/// row = decay * row - lr * value * grad for the features [f, f + n).
template <std::uint32_t S>
void update_rows(float* table, const feature* f, std::size_t n, const float* grad, float lr,
                 float decay) noexcept {
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

}  // namespace odma::predict::detail

#undef ODMA_DETAIL_UNROLL
#undef ODMA_DETAIL_NOINLINE
