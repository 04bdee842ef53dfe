// The policy concepts accept the shipped policies and reject incomplete ones.
#include <odma/kv_allocator.hpp>
#include <odma/odma.hpp>
#include <odma/paged.hpp>

#include <doctest/doctest.h>

#include <type_traits>

namespace {

using odma::prediction;
using odma::request;

struct predictor_without_observe {
    prediction predict(const request&) { return prediction::exact(1); }
};
struct predictor_with_wrong_result {
    int predict(const request&) { return 1; }  // int is not a prediction
    void observe(const request&, std::uint32_t) {}
};
struct buckets_without_boundaries {
    std::uint32_t capacity_for(std::uint32_t t) const { return t; }
    std::uint32_t max_tokens() const { return 10; }
    void observe(std::uint32_t) {}
};
struct backing_without_copy {
    using pointer = char*;
    std::size_t capacity() const { return 0; }
    pointer address(std::size_t) const { return nullptr; }
};
struct backing_without_pointer_type {
    std::size_t capacity() const { return 0; }
    char* address(std::size_t) const { return nullptr; }
    void copy(std::size_t, std::size_t, std::size_t) {}
};
struct one_byte_predictor {
    char state = 0;
    prediction predict(const request& r) { return prediction::exact(r.max_new_tokens); }
    void observe(const request&, std::uint32_t) {}
};

// Naming allocator<...> with a policy that misses a member is a constraint failure, not a
// hard error, so it can be tested.
template <class P, class B, class M>
concept composable = requires {
    typename odma::allocator<P, B, M>;
};

}  // namespace

TEST_CASE("shipped policies model their concepts") {
    static_assert(odma::Predictor<odma::predict::constant>);
    static_assert(odma::Predictor<odma::predict::oracle>);
    static_assert(odma::BucketPolicy<odma::bucket::fixed>);
    static_assert(odma::Backing<odma::backing::host>);
    static_assert(!odma::CommittingBacking<odma::backing::host>);
    static_assert(composable<odma::predict::constant, odma::bucket::fixed, odma::backing::host>);
}

TEST_CASE("a type missing a required member is rejected by the concept") {
    static_assert(!odma::Predictor<predictor_without_observe>);
    static_assert(!odma::Predictor<predictor_with_wrong_result>);
    static_assert(!odma::BucketPolicy<buckets_without_boundaries>);
    static_assert(!odma::Backing<backing_without_copy>);
    static_assert(!odma::Backing<backing_without_pointer_type>);
    static_assert(!composable<predictor_without_observe, odma::bucket::fixed, odma::backing::host>);
    static_assert(
        !composable<odma::predict::constant, buckets_without_boundaries, odma::backing::host>);
    static_assert(!composable<odma::predict::constant, odma::bucket::fixed, backing_without_copy>);
}

TEST_CASE("stateless policies cost no space in the composed allocator") {
    using lean = odma::allocator<odma::predict::constant, odma::bucket::fixed, odma::backing::host>;
    using fat = odma::allocator<one_byte_predictor, odma::bucket::fixed, odma::backing::host>;
    static_assert(std::is_empty_v<odma::predict::constant>);
    // Were the empty predictor given storage, both would have the same size (one byte plus
    // the same padding).
    CHECK(sizeof(lean) < sizeof(fat));
}

namespace {
// An allocator-like type that lacks resume(): engines could not bring preempted requests back.
struct allocator_without_resume {
    using pointer = std::byte*;
    using backing_type = odma::backing::host;
    odma::result<odma::lease> admit(const request&);
    odma::result<odma::growth> extend(const odma::lease&, std::uint32_t);
    odma::result<void> release(const odma::lease&, std::uint32_t);
    odma::result<void> abandon(const odma::lease&);
    odma::address<pointer> data(const odma::lease&, std::uint32_t) const;
    template <class F>
    odma::result<void> for_each_run(const odma::lease&, std::uint32_t, F&&) const;
    bool is_live(const odma::lease&) const;
    const odma::stats& stats() const;
    odma::result<void> check() const;
    const odma::config& config() const;
    std::size_t byte_offset(std::uint32_t, std::size_t) const;
    backing_type& backing();
};
}  // namespace

TEST_CASE("both allocators model KvAllocator, and synchronized accepts them") {
    using contiguous =
        odma::allocator<odma::predict::constant, odma::bucket::fixed, odma::backing::host>;
    using learned =
        odma::allocator<odma::predict::ngram, odma::bucket::online_histogram, odma::backing::host>;
    static_assert(odma::KvAllocator<contiguous>);
    static_assert(odma::KvAllocator<learned>);
    static_assert(odma::KvAllocator<odma::paged<odma::backing::host>>);
    static_assert(!odma::KvAllocator<allocator_without_resume>);
    static_assert(requires { typename odma::synchronized<contiguous>; });
    static_assert(requires { typename odma::synchronized<odma::paged<odma::backing::host>>; });
}
