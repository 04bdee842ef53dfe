// capi/src/runtime_allocator.hpp - the C interface's run-time-configured allocator: one
// abstract class, implemented by odma::allocator<P, B, M> for every policy combination the C
// configuration can name. Private to the odma_c library.
//
// Cost: one virtual call per C call on top of the header-only allocator (bench/bench_capi.cpp
// measures it). Leases cross the interface as odma::lease values.
#pragma once

#include "odma_c.h"

#include <odma/allocator.hpp>
#include <odma/errc.hpp>
#include <odma/lease.hpp>
#include <odma/request.hpp>
#include <odma/resize.hpp>
#include <odma/result.hpp>
#include <odma/stats.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>

namespace odma_capi {

/// The allocator behind an odma_allocator handle, whatever its policies.
class runtime_allocator {
public:
    virtual ~runtime_allocator() = default;

    virtual odma::result<odma::lease> admit(const odma::request& r) = 0;
    virtual odma::result<odma::lease> resume(const odma::request& original,
                                             std::uint32_t generated) = 0;
    virtual odma::result<odma::growth> extend(const odma::lease& l, std::uint32_t total) = 0;
    virtual odma::result<void> release(const odma::lease& l, std::uint32_t generated) = 0;
    virtual odma::result<void> abandon(const odma::lease& l) = 0;
    /// allocator::resize; only for backings that can (resizable()).
    virtual odma::resize_result resize(std::size_t arena_bytes, std::size_t copy_budget) = 0;

    /// Writes at most `capacity` runs of `l` in `plane` to `out`; returns how many there are.
    virtual odma::result<std::size_t> runs(const odma::lease& l, std::uint32_t plane, odma_run* out,
                                           std::size_t capacity) const = 0;
    virtual odma::result<std::size_t> block_table(const odma::lease& l, std::uint32_t k,
                                                  std::span<std::uint32_t> out) const = 0;
    /// Address of `l`'s first token in `plane`; only for backings with bytes (has_bytes()).
    virtual odma::address<void*> data(const odma::lease& l, std::uint32_t plane) const = 0;

    /// True for host backings, whose addresses are pointers.
    virtual bool has_bytes() const noexcept = 0;
    /// True for on-demand backings (odma::ResizableBacking: ODMA_BACKING_HOST_VMM).
    virtual bool resizable() const noexcept = 0;
    /// Base of the arena (null without bytes) and its size in bytes.
    virtual void* base() const noexcept = 0;
    virtual std::size_t arena_bytes() const noexcept = 0;

    virtual const odma::stats& stats() const = 0;
    virtual odma::result<void> check() const = 0;
};

/// runtime_allocator over odma::allocator<P, B, M>: every call forwards directly.
template <class P, class B, class M>
class typed_allocator final : public runtime_allocator {
public:
    using allocator_type = odma::allocator<P, B, M>;
    static constexpr bool bytes = std::is_pointer_v<typename M::pointer>;

    typed_allocator(const odma::config& cfg, P predictor, B buckets, M backing)
        : kv_(cfg, std::move(predictor), std::move(buckets), std::move(backing)) {}

    odma::result<odma::lease> admit(const odma::request& r) override { return kv_.admit(r); }
    odma::result<odma::lease> resume(const odma::request& original,
                                     std::uint32_t generated) override {
        return kv_.resume(original, generated);
    }
    odma::result<odma::growth> extend(const odma::lease& l, std::uint32_t total) override {
        return kv_.extend(l, total);
    }
    odma::result<void> release(const odma::lease& l, std::uint32_t generated) override {
        return kv_.release(l, generated);
    }
    odma::result<void> abandon(const odma::lease& l) override { return kv_.abandon(l); }
    odma::resize_result resize(std::size_t arena_bytes, std::size_t copy_budget) override {
        if constexpr (odma::ResizableBacking<M>)
            return kv_.resize(arena_bytes, copy_budget);
        else  // unreachable: the C layer checks resizable()
            return odma::resize_result::refused(odma::errc::invalid_request,
                                                kv_.stats().arena_bytes, 0);
    }

    odma::result<std::size_t> runs(const odma::lease& l, std::uint32_t plane, odma_run* out,
                                   std::size_t capacity) const override {
        std::size_t n = 0;
        const auto walked = kv_.for_each_run(l, plane, [&](std::size_t offset, std::size_t size) {
            if (n < capacity) out[n] = odma_run{offset, size};
            ++n;
        });
        if (!walked) return walked.error();
        return n;
    }
    odma::result<std::size_t> block_table(const odma::lease& l, std::uint32_t k,
                                          std::span<std::uint32_t> out) const override {
        return kv_.block_table(l, k, out);
    }
    odma::address<void*> data(const odma::lease& l, std::uint32_t plane) const override {
        if constexpr (bytes) {
            const auto a = kv_.data(l, plane);
            if (!a.has_value()) return a.error();
            return static_cast<void*>(a.get());
        } else {
            (void)l;
            (void)plane;
            return odma::errc::invalid_request;  // unreachable: the C layer checks has_bytes()
        }
    }

    bool has_bytes() const noexcept override { return bytes; }
    bool resizable() const noexcept override { return odma::ResizableBacking<M>; }
    void* base() const noexcept override {
        if constexpr (bytes)
            return static_cast<void*>(kv_.backing().address(0));
        else
            return nullptr;
    }
    std::size_t arena_bytes() const noexcept override { return kv_.backing().capacity(); }

    const odma::stats& stats() const override { return kv_.stats(); }
    odma::result<void> check() const override { return kv_.check(); }

private:
    allocator_type kv_;
};

/// Builds the allocator an odma_config describes. Throws odma::config_error naming the field
/// that cannot work, std::system_error from loading an n-gram model or reserving memory,
/// std::bad_alloc.
std::unique_ptr<runtime_allocator> make_runtime_allocator(const odma_config& c);

}  // namespace odma_capi
