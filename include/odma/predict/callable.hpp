// odma/predict/callable.hpp - any function as a Predictor.
#pragma once

#include <odma/prediction.hpp>
#include <odma/request.hpp>

#include <cmath>
#include <concepts>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

namespace odma::predict {

/// The default observer of predict::callable: learns nothing.
struct ignore_observations {
    void operator()(const request&, std::uint32_t) const noexcept {}
};

/// Adapts a user function to the Predictor concept, for models that live outside odma (an ONNX
/// session, a Python model behind a C function, a remote service's cached answer...).
///
/// `F` is called as `f(const request&)` on a const object (keep mutable state behind a pointer)
/// and returns either
///  - an odma::prediction (quantiles with uncertainty: the allocator then honours
///    config::overflow_risk), or
///  - a number of tokens (any integer or floating-point type): a point estimate with no
///    uncertainty, so the allocator reserves exactly that. A negative, NaN or infinite answer
///    means "no idea" and becomes the request's max_new_tokens (the safe choice); fractions are
///    rounded up.
///
/// `Observe` is called as `o(const request&, std::uint32_t generated)` when a request finishes,
/// to let the external model learn or log; by default nothing happens.
///
/// Both are called directly (a function object or a pointer to a function), not through
/// std::invoke: <functional> would add about 8,000 preprocessed lines to every includer, for
/// pointers to members that no predictor is.
template <class F, class Observe = ignore_observations>
class callable {
public:
    static_assert(
        requires(const F& f, const request& r) { f(r); },
        "odma::predict::callable: the function must be callable as f(const request&) "
        "on a const object");
    using result_type = decltype(std::declval<const F&>()(std::declval<const request&>()));
    static_assert(std::is_convertible_v<result_type, prediction> ||
                      std::is_arithmetic_v<std::remove_cvref_t<result_type>>,
                  "odma::predict::callable: the function must return odma::prediction or a "
                  "number of tokens");

    explicit callable(F predict, Observe observe = {})
        : predict_(std::move(predict)), observe_(std::move(observe)) {}

    prediction predict(const request& r) const {
        decltype(auto) v = predict_(r);
        if constexpr (std::is_convertible_v<result_type, prediction>) {
            return v;
        } else {
            using T = std::remove_cvref_t<result_type>;
            constexpr double top = std::numeric_limits<std::uint32_t>::max();
            if constexpr (std::is_floating_point_v<T>) {
                if (!(v >= 0) || !std::isfinite(v)) return prediction::exact(r.max_new_tokens);
                return prediction::exact(
                    static_cast<std::uint32_t>(std::min<double>(std::ceil(double(v)), top)));
            } else if constexpr (std::is_signed_v<T>) {
                if (v < 0) return prediction::exact(r.max_new_tokens);
                return prediction::exact(
                    static_cast<std::uint32_t>(std::min<double>(double(v), top)));
            } else {
                return prediction::exact(
                    static_cast<std::uint32_t>(std::min<double>(double(v), top)));
            }
        }
    }

    void observe(const request& r, std::uint32_t generated) { observe_(r, generated); }

    /// The wrapped functions.
    const F& function() const noexcept { return predict_; }
    Observe& observer() noexcept { return observe_; }

private:
    F predict_;
    [[no_unique_address]] Observe observe_;
};

template <class F>
callable(F) -> callable<F>;
template <class F, class Observe>
callable(F, Observe) -> callable<F, Observe>;

}  // namespace odma::predict
