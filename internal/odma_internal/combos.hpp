// odma_internal/combos.hpp - the policy combinations that the fuzzer, the soak test and the
// benchmarks iterate over.
//
// Each policy gets a policy_factory<T> that builds it from a build_context; a combo<P, B, M>
// builds the composed allocator from the three factories. Covering a new policy takes two
// steps: a policy_factory specialisation, and its combos in the lists at the bottom
// (library_combos: everything, for the fuzzer; representative_combos: every policy at least
// once, for the soak and the benchmarks). Test-only policies (tests/support/test_backings.hpp)
// and their combos are added by tests/support/combos.hpp.
#pragma once

#include <odma/backing/accounted.hpp>
#include <odma/backing/host_vmm.hpp>  // defines ODMA_HAS_HOST_VMM where it exists (POSIX)
#include <odma/backing/placement_only.hpp>
#include <odma/memory/memory_model.hpp>
#include <odma/odma.hpp>
#include <odma/paged.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace odma_test {

/// What a factory may use to build its policy.
struct build_context {
    odma::config cfg;
    std::size_t arena_bytes = 0;
    /// Picks among a policy's variants (the fixed bucket layouts); any value is valid.
    std::uint32_t variant = 0;
};

/// How to build policy T; specialised once per policy.
template <class T>
struct policy_factory;

template <>
struct policy_factory<odma::predict::constant> {
    static constexpr const char* name = "constant";
    static odma::predict::constant make(const build_context&) { return {}; }
};

template <>
struct policy_factory<odma::predict::oracle> {
    static constexpr const char* name = "oracle";
    static odma::predict::oracle make(const build_context&) { return {}; }
};

template <>
struct policy_factory<odma::bucket::fixed> {
    static constexpr const char* name = "fixed";
    /// Variants: uniform(16) (S3-style), geometric(4 per doubling), powers of two, one bucket.
    static odma::bucket::fixed make(const build_context& c) {
        const std::uint32_t max = c.cfg.max_tokens;
        const std::uint32_t min = std::min<std::uint32_t>(16, max);
        switch (c.variant % 4) {
            case 0:
                return odma::bucket::fixed::uniform(std::min<std::uint32_t>(16, max), max);
            case 1:
                return odma::bucket::fixed::geometric(min, max);
            case 2:
                return odma::bucket::fixed::powers_of_two(min, max);
            default:
                return odma::bucket::fixed::explicit_list({max});
        }
    }
};

template <>
struct policy_factory<odma::backing::host> {
    static constexpr const char* name = "host";
    static odma::backing::host make(const build_context& c) {
        return odma::backing::host(c.arena_bytes);
    }
};

#ifdef ODMA_HAS_HOST_VMM
template <>
struct policy_factory<odma::backing::host_vmm> {
    static constexpr const char* name = "host_vmm";
    /// Variants: 64 KiB granules (few kernel mappings, as benchmarks with many leases need),
    /// or one page (neighbouring leases share granules more often).
    static odma::backing::host_vmm make(const build_context& c) {
        const std::size_t granule = c.variant % 2 ? 0 : std::size_t(64) << 10;
        return odma::backing::host_vmm(c.arena_bytes, granule);
    }
};
#endif

/// Issue 3's learned predictors, small enough to build once per fuzz input, with short
/// warm-ups so that they predict from what they learned within a few releases.
template <>
struct policy_factory<odma::predict::ngram> {
    static constexpr const char* name = "ngram";
    static odma::predict::ngram make(const build_context&) {
        odma::predict::ngram::options o;
        o.hash_bits = 10;  // 1,024 rows instead of 65,536
        o.warmup = 16;
        return odma::predict::ngram(o);
    }
};

template <>
struct policy_factory<odma::predict::prompt_quantile> {
    static constexpr const char* name = "prompt_quantile";
    static odma::predict::prompt_quantile make(const build_context&) {
        odma::predict::prompt_quantile::options o;
        o.warmup = 8;
        o.half_life = 512;
        return odma::predict::prompt_quantile(o);
    }
};

/// What callable wraps in these tests: an external model's answer with uncertainty (quantiles
/// spread around half the prompt length), so the allocator's risk quantile matters.
struct spread_model {
    odma::prediction operator()(const odma::request& r) const {
        const std::uint32_t m = r.prompt_tokens / 2 + 8;
        return odma::prediction::from_quantiles(
            {m / 4 + 1, m / 2 + 1, m, m + m / 2, 2 * m, 3 * m, 4 * m, 6 * m});
    }
};
using spread_callable = odma::predict::callable<spread_model>;

template <>
struct policy_factory<spread_callable> {
    static constexpr const char* name = "callable";
    static spread_callable make(const build_context&) { return spread_callable(spread_model{}); }
};

template <>
struct policy_factory<odma::bucket::online_histogram> {
    static constexpr const char* name = "online_histogram";
    /// 4 to 19 buckets; recalibrates every 64 observations after 32, on at most 512 bins.
    static odma::bucket::online_histogram make(const build_context& c) {
        odma::bucket::online_histogram::options o;
        o.warmup = 32;
        o.recalibrate_every = 64;
        o.drift_check_every = 16;
        o.bins = 512;
        return odma::bucket::online_histogram(4 + c.variant % 16, c.cfg.max_tokens, o);
    }
};

/// A modelled device with no bytes behind it: placement and accounting only.
template <>
struct policy_factory<odma::backing::placement_only> {
    static constexpr const char* name = "placement_only";
    static odma::backing::placement_only make(const build_context& c) {
        return odma::backing::placement_only(c.arena_bytes);
    }
};

/// Any backing accounted on the LPDDR5-6400 cost model; migrations are charged.
template <class Inner>
struct policy_factory<odma::backing::accounted<Inner>> {
    static inline const std::string name =
        std::string("lpddr5(") + policy_factory<Inner>::name + ")";
    static odma::backing::accounted<Inner> make(const build_context& c) {
        return odma::backing::accounted<Inner>(policy_factory<Inner>::make(c),
                                               odma::memory::memory_model::lpddr5_6400());
    }
};

/// One composed allocator type and how to build it.
template <class P, class B, class M>
struct combo {
    using allocator_type = odma::allocator<P, B, M>;

    static std::string name() {
        return std::string(policy_factory<P>::name) + "/" + policy_factory<B>::name + "/" +
               policy_factory<M>::name;
    }
    /// The allocator is neither copyable nor movable, hence the unique_ptr.
    static std::unique_ptr<allocator_type> make(const build_context& c) {
        return std::make_unique<allocator_type>(c.cfg, policy_factory<P>::make(c),
                                                policy_factory<B>::make(c),
                                                policy_factory<M>::make(c));
    }
};

template <class... Combos>
struct type_list {
    static constexpr std::size_t size = sizeof...(Combos);
};

/// The combos of both lists, in order.
template <class... A, class... B>
type_list<A..., B...> operator+(type_list<A...>, type_list<B...>);
template <class L1, class L2>
using concat = decltype(L1{} + L2{});

/// Calls f.template operator()<Combo>() for every combo of the list, in order.
template <class... Combos, class F>
void for_each_combo(type_list<Combos...>, F&& f) {
    (f.template operator()<Combos>(), ...);
}

/// Calls f.template operator()<Combo>() for the index-th combo of the list (index < size).
template <class... Combos, class F>
void with_combo(type_list<Combos...>, std::size_t index, F&& f) {
    std::size_t i = 0;
    ((i++ == index ? (f.template operator()<Combos>(), 0) : 0), ...);
}

/// A replay knows each request's true length; predictors that can be told it (the oracle)
/// are told. Other predictors ignore it.
template <class Allocator>
void tell_length(Allocator& kv, std::uint64_t id, std::uint32_t generated) {
    if constexpr (requires { kv.predictor().tell(id, generated); })
        kv.predictor().tell(id, generated);
}

/// Drops what tell_length() told about a request that will never be released (refused or
/// abandoned), so the predictor's memory stays bounded.
template <class Allocator>
void forget_length(Allocator& kv, std::uint64_t id) {
    if constexpr (requires { kv.predictor().tell(id, 0u); })
        kv.predictor().observe(odma::request{.id = id}, 0);
}

// --- The lists ------------------------------------------------------------------------------
/// A plain list of policy types, to build combos from.
template <class... Policies>
struct policies {};

/// The concatenation of any number of type_lists.
template <class... Lists>
struct concat_all {
    using type = type_list<>;
};
template <class First, class... Rest>
struct concat_all<First, Rest...> {
    using type = concat<First, typename concat_all<Rest...>::type>;
};

/// combo<P, B, M> for every P, B and M of three policy lists, predictors varying slowest.
template <class Predictors, class Buckets, class Backings>
struct cross;
template <class... P, class... B, class... M>
struct cross<policies<P...>, policies<B...>, policies<M...>> {
    template <class OneP, class OneB>
    using row = type_list<combo<OneP, OneB, M>...>;
    template <class OneP>
    using rows = typename concat_all<row<OneP, B>...>::type;
    using type = typename concat_all<rows<P>...>::type;
};
template <class Predictors, class Buckets, class Backings>
using cross_t = typename cross<Predictors, Buckets, Backings>::type;

// Every shipped policy that runs on a host without a device. (Device backings need a device,
// or for Cambricon the fake SDK of tests/fakes; their own tests drive the allocator.)
using all_predictors =
    policies<odma::predict::constant, odma::predict::oracle, odma::predict::ngram,
             odma::predict::prompt_quantile, spread_callable>;
using all_bucket_policies = policies<odma::bucket::fixed, odma::bucket::online_histogram>;
#ifdef ODMA_HAS_HOST_VMM
using other_backings = policies<odma::backing::host_vmm, odma::backing::placement_only,
                                odma::backing::accounted<odma::backing::host>,
                                odma::backing::accounted<odma::backing::placement_only>>;
#else
using other_backings =
    policies<odma::backing::placement_only, odma::backing::accounted<odma::backing::host>,
             odma::backing::accounted<odma::backing::placement_only>>;
#endif

/// What the fuzzer covers: every predictor x every bucket policy on host memory, and every
/// other backing under a static pair (oracle + fixed) and a learning pair (prompt_quantile +
/// online_histogram). Policies of different families interact only through the allocator,
/// so pairs of families are covered without the full product's compile time.
using library_combos = concat_all<
    cross_t<all_predictors, all_bucket_policies, policies<odma::backing::host>>,
    cross_t<policies<odma::predict::oracle>, policies<odma::bucket::fixed>, other_backings>,
    cross_t<policies<odma::predict::prompt_quantile>, policies<odma::bucket::online_histogram>,
            other_backings>>::type;

/// Every policy at least once, for the soak and the benchmarks: each predictor with fixed
/// buckets on host memory, online_histogram with the oracle, and each other backing with the
/// oracle, which is told noisy lengths there so that growth and migration run.
using representative_combos = concat_all<
    cross_t<all_predictors, policies<odma::bucket::fixed>, policies<odma::backing::host>>,
    type_list<combo<odma::predict::oracle, odma::bucket::online_histogram, odma::backing::host>>,
    cross_t<policies<odma::predict::oracle>, policies<odma::bucket::fixed>, other_backings>>::type;

/// The paged baseline (odma::paged) over backing M: no predictor, no buckets, the same
/// admit / extend / release / abandon / stats / check surface. The config's fields map over;
/// the variant picks the block size (1, 4 or 16 tokens), the free order and a watermark.
template <class M>
struct paged_combo {
    using allocator_type = odma::paged<M>;

    static std::string name() { return std::string("paged/") + policy_factory<M>::name; }
    static std::unique_ptr<allocator_type> make(const build_context& c) {
        odma::paged_config pc;
        pc.bytes_per_token = c.cfg.bytes_per_token;
        pc.max_tokens = c.cfg.max_tokens;
        pc.planes = c.cfg.planes;
        pc.block_tokens = std::array<std::uint32_t, 3>{16, 4, 1}[c.variant % 3];
        pc.order = (c.variant / 3) % 2 ? odma::free_order::lifo : odma::free_order::fifo;
        pc.watermark = double((c.variant / 6) % 3) * 0.02;
        return std::make_unique<allocator_type>(pc, policy_factory<M>::make(c));
    }
};
using paged_combos =
    type_list<paged_combo<odma::backing::host>, paged_combo<odma::backing::placement_only>,
              paged_combo<odma::backing::accounted<odma::backing::host>>>;

}  // namespace odma_test
