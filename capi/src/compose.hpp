// capi/src/compose.hpp - the pieces make_runtime_allocator() composes an odma::allocator from:
// the C predictor adapters, the bucket policies an odma_config names, and with_buckets() /
// with_backing(), which instantiate typed_allocator for the policies chosen. The predictors'
// instantiations live in separate translation units (compose_*.cpp) so that they compile in
// parallel: each one instantiates the allocator for every bucket policy and backing.
#pragma once

#include "runtime_allocator.hpp"

#include "offsets_backing.hpp"

#include <odma/backing/host.hpp>
#include <odma/backing/host_vmm.hpp>
#include <odma/bucket/fixed.hpp>
#include <odma/bucket/online_histogram.hpp>
#include <odma/config.hpp>
#include <odma/predict/callable.hpp>
#include <odma/predict/constant.hpp>
#include <odma/predict/ngram.hpp>
#include <odma/predict/prompt_quantile.hpp>
#include <odma/prediction.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace odma_capi::compose {

/// ODMA_PREDICT_CONSTANT with constant_tokens > 0: that many tokens, capped by the request's
/// max_new_tokens (the allocator caps it too).
struct constant_tokens {
    std::uint32_t tokens;
    odma::prediction predict(const odma::request& r) const noexcept {
        return odma::prediction::exact(tokens < r.max_new_tokens ? tokens : r.max_new_tokens);
    }
    void observe(const odma::request&, std::uint32_t) const noexcept {}
};

inline odma_request to_c(const odma::request& r) noexcept {
    return odma_request{r.id,
                        r.prompt_tokens,
                        r.max_new_tokens,
                        r.prompt_text.empty() ? nullptr : r.prompt_text.data(),
                        r.prompt_text.size(),
                        r.tag};
}

/// The C predict_fn as the function predict::callable wraps (an integer answer: a point
/// estimate; negative = no idea, which callable turns into max_new_tokens).
struct c_predict {
    odma_predict_fn fn;
    void* user;
    std::int64_t operator()(const odma::request& r) const {
        const odma_request c = to_c(r);
        return fn(user, &c);
    }
};

struct c_observe {
    odma_observe_fn fn;
    void* user;
    void operator()(const odma::request& r, std::uint32_t generated) const {
        if (!fn) return;
        const odma_request c = to_c(r);
        fn(user, &c, generated);
    }
};

using callback_predictor = odma::predict::callable<c_predict, c_observe>;

[[noreturn]] inline void bad(std::string_view field, const std::string& what) {
    throw odma::config_error(field, what);
}

/// The value a C caller stored in an enum field, read as an integer: in C any int is a valid
/// value of the field, in C++ loading an out-of-range enumerator is undefined behaviour.
template <class E>
int raw(const E& field) noexcept {
    static_assert(std::is_enum_v<E>);
    std::underlying_type_t<E> v;
    static_assert(sizeof v == sizeof field);
    std::memcpy(&v, &field, sizeof v);
    return static_cast<int>(v);
}

inline odma::bucket::fixed fixed_buckets(const odma_config& c) {
    const std::uint32_t max = c.max_tokens;
    try {
        switch (raw(c.buckets)) {
            case ODMA_BUCKETS_UNIFORM:
                if (c.bucket_count == 0 || c.bucket_count > max)
                    bad("bucket_count", "must be in [1, max_tokens = " + std::to_string(max) +
                                            "], got " + std::to_string(c.bucket_count));
                return odma::bucket::fixed::uniform(c.bucket_count, max);
            case ODMA_BUCKETS_GEOMETRIC: {
                if (c.bucket_min_tokens == 0 || c.bucket_min_tokens > max)
                    bad("bucket_min_tokens", "must be in [1, max_tokens = " + std::to_string(max) +
                                                 "], got " + std::to_string(c.bucket_min_tokens));
                if (!(c.bucket_ratio > 1.0) || !std::isfinite(c.bucket_ratio))
                    bad("bucket_ratio",
                        "must be a finite number > 1, got " + std::to_string(c.bucket_ratio));
                std::vector<std::uint32_t> list;
                for (double v = c.bucket_min_tokens; v < max; v *= c.bucket_ratio) {
                    const auto b = static_cast<std::uint32_t>(std::ceil(v - 1e-9));
                    if (b >= max) break;
                    if (list.empty() || b > list.back()) list.push_back(b);
                }
                list.push_back(max);
                return odma::bucket::fixed::explicit_list(std::move(list));
            }
            case ODMA_BUCKETS_EXPLICIT: {
                if (!c.bucket_list || c.bucket_list_len == 0)
                    bad("bucket_list", "ODMA_BUCKETS_EXPLICIT needs a non-empty bucket_list");
                std::vector<std::uint32_t> list(c.bucket_list, c.bucket_list + c.bucket_list_len);
                if (list.back() != max)
                    bad("bucket_list", "the last capacity (" + std::to_string(list.back()) +
                                           ") must equal max_tokens (" + std::to_string(max) + ")");
                return odma::bucket::fixed::explicit_list(std::move(list));
            }
            default:
                break;
        }
    } catch (const odma::config_error&) {
        throw;
    } catch (const std::invalid_argument& e) {
        bad(raw(c.buckets) == ODMA_BUCKETS_EXPLICIT ? "bucket_list" : "buckets", e.what());
    }
    bad("buckets", "unknown odma_bucket_kind " + std::to_string(raw(c.buckets)));
}

inline odma::bucket::online_histogram histogram_buckets(const odma_config& c) {
    if (c.bucket_count == 0)
        bad("bucket_count", "must be greater than zero for ODMA_BUCKETS_ONLINE_HISTOGRAM");
    try {
        return odma::bucket::online_histogram(c.bucket_count, c.max_tokens);
    } catch (const std::invalid_argument& e) {
        bad("bucket_count", e.what());
    }
}

template <class P, class B>
std::unique_ptr<runtime_allocator> with_backing(const odma_config& c, const odma::config& cfg, P p,
                                                B b) {
    switch (raw(c.backing)) {
        case ODMA_BACKING_HOST:
            return std::make_unique<typed_allocator<P, B, odma::backing::host>>(
                cfg, std::move(p), std::move(b), odma::backing::host(c.arena_bytes));
        case ODMA_BACKING_HOST_VMM:
#ifdef ODMA_HAS_HOST_VMM
            return std::make_unique<typed_allocator<P, B, odma::backing::host_vmm>>(
                cfg, std::move(p), std::move(b),
                odma::backing::host_vmm(std::max(c.arena_bytes, c.max_arena_bytes)));
#else
            bad("backing", "ODMA_BACKING_HOST_VMM is not available on this platform");
#endif
        case ODMA_BACKING_OFFSETS:
            return std::make_unique<typed_allocator<P, B, offsets_backing>>(
                cfg, std::move(p), std::move(b),
                offsets_backing(c.arena_bytes, c.copy_fn, c.copy_user));
    }
    bad("backing", "unknown odma_backing_kind " + std::to_string(raw(c.backing)));
}

template <class P>
std::unique_ptr<runtime_allocator> with_buckets(const odma_config& c, const odma::config& cfg,
                                                P p) {
    if (raw(c.buckets) == ODMA_BUCKETS_ONLINE_HISTOGRAM)
        return with_backing(c, cfg, std::move(p), histogram_buckets(c));
    return with_backing(c, cfg, std::move(p), fixed_buckets(c));
}

/// The allocator for the predictor an odma_config names (one function per translation unit).
std::unique_ptr<runtime_allocator> make_constant(const odma_config& c, const odma::config& cfg);
std::unique_ptr<runtime_allocator> make_prompt_quantile(const odma_config& c,
                                                        const odma::config& cfg);
std::unique_ptr<runtime_allocator> make_ngram(const odma_config& c, const odma::config& cfg);
std::unique_ptr<runtime_allocator> make_callback(const odma_config& c, const odma::config& cfg);

}  // namespace odma_capi::compose
