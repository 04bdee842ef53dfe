// capi/src/odma_c.cpp - the C entry points: handle and pointer checks, exceptions turned into
// odma_status, the per-thread error message. The allocator work is in runtime_allocator.
#include "odma_c.h"

#include "runtime_allocator.hpp"

#include <odma/config.hpp>
#include <odma/detail/lease_access.hpp>
#include <odma/errc.hpp>
#include <odma/request.hpp>

#include <array>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace {

constexpr std::uint64_t live_tag = 0x6f646d615f6c6976ull;  // "odma_liv"

}  // namespace

/// The handle: a tag, checked on entry and cleared on destruction, and the allocator.
struct odma_allocator {
    std::uint64_t tag = live_tag;
    std::unique_ptr<odma_capi::runtime_allocator> impl;
};

namespace {

using odma_capi::runtime_allocator;

thread_local std::string last_error;

/// Destroyed handles are kept (tag cleared) for a while before their memory is freed, so that
/// a call on a destroyed handle reads a cleared tag rather than freed memory: the mistake is
/// reported as ODMA_INVALID_ARGUMENT instead of being undefined behaviour, as long as fewer
/// than `size` allocators were destroyed since.
class graveyard {
public:
    void bury(odma_allocator* a) noexcept {
        odma_allocator* evicted = nullptr;
        {
            const std::lock_guard lock(mutex_);
            evicted = slots_[next_];
            slots_[next_] = a;
            next_ = (next_ + 1) % slots_.size();
        }
        delete evicted;
    }
    ~graveyard() {
        for (odma_allocator* a : slots_)
            delete a;
    }

private:
    std::mutex mutex_;
    std::array<odma_allocator*, 64> slots_{};
    std::size_t next_ = 0;
};

graveyard& graves() {
    static graveyard g;
    return g;
}

void set_error(std::string_view fn, std::string_view what) noexcept {
    try {
        last_error.assign(fn);
        last_error.append(": ");
        last_error.append(what);
    } catch (...) {
        last_error.clear();  // no memory for the message: an empty one beats none
    }
}

odma_status fail(std::string_view fn, odma_status s, std::string_view what) noexcept {
    set_error(fn, what);
    return s;
}

odma_status fail(std::string_view fn, odma::errc e) noexcept {
    std::string_view why;
    switch (e) {
        case odma::errc::invalid_request:
            why = "invalid_request (a size, plane or block size that cannot work)";
            break;
        case odma::errc::no_memory:
            why = "no_memory (no room now)";
            break;
        case odma::errc::invalid_lease:
            why = "invalid_lease (stale, foreign or empty lease)";
            break;
        case odma::errc::invariant_violation:
            why = "invariant_violation (an allocator invariant is broken)";
            break;
        default:
            why = odma::to_string(e);
    }
    return fail(fn, static_cast<odma_status>(e), why);
}

/// The status of the exception being handled (call inside a catch block only).
odma_status from_exception(std::string_view fn) noexcept {
    try {
        throw;
    } catch (const odma::config_error& e) {
        return fail(fn, ODMA_INVALID_ARGUMENT, e.what());
    } catch (const std::bad_alloc&) {
        return fail(fn, ODMA_OUT_OF_HOST_MEMORY, "out of host memory");
    } catch (const std::system_error& e) {
        const std::error_code& code = e.code();
        if (code.category() == odma::error_category() && code.value() > 0 &&
            code.value() <= static_cast<int>(odma::errc::bad_format))
            return fail(fn, static_cast<odma_status>(code.value()), e.what());
        if (code == std::errc::not_enough_memory)
            return fail(fn, ODMA_OUT_OF_HOST_MEMORY, e.what());
        return fail(fn, ODMA_INTERNAL_ERROR, e.what());
    } catch (const std::exception& e) {
        return fail(fn, ODMA_INTERNAL_ERROR, e.what());
    } catch (...) {
        return fail(fn, ODMA_INTERNAL_ERROR, "unknown exception");
    }
}

runtime_allocator* live(const odma_allocator* a) noexcept {
    return a && a->tag == live_tag ? a->impl.get() : nullptr;
}

odma_status bad_handle(std::string_view fn, const odma_allocator* a) noexcept {
    return fail(
        fn, ODMA_INVALID_ARGUMENT,
        a ? "the allocator was destroyed (or is not an odma_allocator)" : "the allocator is NULL");
}

odma_status null_argument(std::string_view fn, std::string_view name) noexcept {
    try {
        return fail(fn, ODMA_INVALID_ARGUMENT, std::string(name) + " is NULL");
    } catch (...) {
        return fail(fn, ODMA_INVALID_ARGUMENT, "a pointer argument is NULL");
    }
}

odma::lease to_cpp(odma_lease l) noexcept {
    return odma::detail::lease_access::make(l.owner, l.slot, l.generation);
}

odma_lease to_c(const odma::lease& l) noexcept {
    using access = odma::detail::lease_access;
    return odma_lease{access::owner(l), access::slot(l), access::generation(l)};
}

/// The C request as the allocator's; false when its text pointer is inconsistent.
bool to_cpp(const odma_request& r, odma::request& out) noexcept {
    if (!r.prompt_text && r.prompt_text_len != 0) return false;
    out.id = r.id;
    out.prompt_tokens = r.prompt_tokens;
    out.max_new_tokens = r.max_new_tokens;
    out.prompt_text =
        r.prompt_text ? std::string_view(r.prompt_text, r.prompt_text_len) : std::string_view();
    out.tag = r.tag;
    return true;
}

odma_status bad_text(std::string_view fn) noexcept {
    return fail(fn, ODMA_INVALID_ARGUMENT,
                "odma_request.prompt_text is NULL but prompt_text_len is not 0");
}

}  // namespace

extern "C" {

const char* odma_status_name(odma_status status) {
    switch (status) {
        case ODMA_OK:
            return "ok";
        case ODMA_INVALID_REQUEST:
            return "invalid_request";
        case ODMA_NO_MEMORY:
            return "no_memory";
        case ODMA_INVALID_LEASE:
            return "invalid_lease";
        case ODMA_INVARIANT_VIOLATION:
            return "invariant_violation";
        case ODMA_DEVICE_ERROR:
            return "device_error";
        case ODMA_IO_ERROR:
            return "io_error";
        case ODMA_BAD_FORMAT:
            return "bad_format";
        case ODMA_INVALID_ARGUMENT:
            return "invalid_argument";
        case ODMA_OUT_OF_HOST_MEMORY:
            return "out_of_host_memory";
        case ODMA_INTERNAL_ERROR:
            return "internal_error";
        case ODMA_UNSUPPORTED:
            return "unsupported";
    }
    return "unknown";
}

const char* odma_last_error(void) {
    return last_error.c_str();
}

uint32_t odma_tag_of(const char* name, size_t len) {
    if (!name) return 0;
    return odma::tag_of(std::string_view(name, len));
}

void odma_config_init(odma_config* config) {
    if (!config) return;
    *config = odma_config{};
    config->struct_size = sizeof(odma_config);
    config->planes = 1;
    config->max_runs = 1;
    config->run_alignment = 1;
    config->lend_reserved = 0;
    config->demand_limit = 0.0;
    config->safety_pool_fraction = 0.10;
    config->overflow_risk = 0.05;
    config->predictor = ODMA_PREDICT_CONSTANT;
    config->buckets = ODMA_BUCKETS_ONLINE_HISTOGRAM;
    config->bucket_count = 16;
    config->bucket_min_tokens = 16;
    config->bucket_ratio = 2.0;
    config->backing = ODMA_BACKING_HOST;
}

odma_status odma_create(const odma_config* config, odma_allocator** out) {
    constexpr std::string_view fn = "odma_create";
    if (!out) return null_argument(fn, "out");
    *out = nullptr;
    if (!config) return null_argument(fn, "config");
    try {
        auto a = std::make_unique<odma_allocator>();
        a->impl = odma_capi::make_runtime_allocator(*config);
        *out = a.release();
        return ODMA_OK;
    } catch (const std::invalid_argument& e) {
        // config_error, or a policy refusing its parameters.
        return fail(fn, ODMA_INVALID_ARGUMENT, e.what());
    } catch (...) {
        return from_exception(fn);
    }
}

void odma_destroy(odma_allocator* allocator) {
    if (!live(allocator)) return;
    allocator->tag = 0;
    allocator->impl.reset();
    graves().bury(allocator);
}

odma_status odma_admit(odma_allocator* a, const odma_request* request, odma_lease* out) {
    constexpr std::string_view fn = "odma_admit";
    runtime_allocator* kv = live(a);
    if (!kv) return bad_handle(fn, a);
    if (!request) return null_argument(fn, "request");
    if (!out) return null_argument(fn, "out");
    odma::request r;
    if (!to_cpp(*request, r)) return bad_text(fn);
    try {
        const auto l = kv->admit(r);
        if (!l) return fail(fn, l.error());
        *out = to_c(*l);
        return ODMA_OK;
    } catch (...) {
        return from_exception(fn);
    }
}

odma_status odma_resume(odma_allocator* a, const odma_request* original, uint32_t generated,
                        odma_lease* out) {
    constexpr std::string_view fn = "odma_resume";
    runtime_allocator* kv = live(a);
    if (!kv) return bad_handle(fn, a);
    if (!original) return null_argument(fn, "original");
    if (!out) return null_argument(fn, "out");
    odma::request r;
    if (!to_cpp(*original, r)) return bad_text(fn);
    try {
        const auto l = kv->resume(r, generated);
        if (!l) return fail(fn, l.error());
        *out = to_c(*l);
        return ODMA_OK;
    } catch (...) {
        return from_exception(fn);
    }
}

odma_status odma_extend(odma_allocator* a, odma_lease lease, uint32_t total_tokens,
                        odma_growth* growth) {
    constexpr std::string_view fn = "odma_extend";
    runtime_allocator* kv = live(a);
    if (!kv) return bad_handle(fn, a);
    try {
        const auto g = kv->extend(to_cpp(lease), total_tokens);
        if (!g) return fail(fn, g.error());
        if (growth) *growth = static_cast<odma_growth>(*g);
        return ODMA_OK;
    } catch (...) {
        return from_exception(fn);
    }
}

odma_status odma_release(odma_allocator* a, odma_lease lease, uint32_t generated_tokens) {
    constexpr std::string_view fn = "odma_release";
    runtime_allocator* kv = live(a);
    if (!kv) return bad_handle(fn, a);
    try {
        const auto r = kv->release(to_cpp(lease), generated_tokens);
        return r ? ODMA_OK : fail(fn, r.error());
    } catch (...) {
        return from_exception(fn);
    }
}

odma_status odma_abandon(odma_allocator* a, odma_lease lease) {
    constexpr std::string_view fn = "odma_abandon";
    runtime_allocator* kv = live(a);
    if (!kv) return bad_handle(fn, a);
    try {
        const auto r = kv->abandon(to_cpp(lease));
        return r ? ODMA_OK : fail(fn, r.error());
    } catch (...) {
        return from_exception(fn);
    }
}

odma_status odma_runs(const odma_allocator* a, odma_lease lease, uint32_t plane, odma_run* out,
                      size_t capacity, size_t* count) {
    constexpr std::string_view fn = "odma_runs";
    const runtime_allocator* kv = live(a);
    if (!kv) return bad_handle(fn, a);
    if (!count) return null_argument(fn, "count");
    if (!out && capacity != 0) return null_argument(fn, "out (with capacity > 0)");
    try {
        const auto n = kv->runs(to_cpp(lease), plane, out, capacity);
        if (!n) return fail(fn, n.error());
        *count = *n;
        return ODMA_OK;
    } catch (...) {
        return from_exception(fn);
    }
}

odma_status odma_block_table(const odma_allocator* a, odma_lease lease,
                             uint32_t kernel_block_tokens, uint32_t* out, size_t capacity,
                             size_t* count) {
    constexpr std::string_view fn = "odma_block_table";
    const runtime_allocator* kv = live(a);
    if (!kv) return bad_handle(fn, a);
    if (!count) return null_argument(fn, "count");
    if (!out && capacity != 0) return null_argument(fn, "out (with capacity > 0)");
    try {
        const auto n = kv->block_table(to_cpp(lease), kernel_block_tokens,
                                       std::span<std::uint32_t>(out, out ? capacity : 0));
        if (!n) return fail(fn, n.error());
        *count = *n;
        return ODMA_OK;
    } catch (...) {
        return from_exception(fn);
    }
}

odma_status odma_data(const odma_allocator* a, odma_lease lease, uint32_t plane, void** out) {
    constexpr std::string_view fn = "odma_data";
    const runtime_allocator* kv = live(a);
    if (!kv) return bad_handle(fn, a);
    if (!out) return null_argument(fn, "out");
    if (!kv->has_bytes())
        return fail(fn, ODMA_INVALID_ARGUMENT,
                    "ODMA_BACKING_OFFSETS has no addresses: use odma_runs for offsets");
    try {
        const auto p = kv->data(to_cpp(lease), plane);
        if (!p.has_value()) return fail(fn, p.error());
        *out = p.get();
        return ODMA_OK;
    } catch (...) {
        return from_exception(fn);
    }
}

odma_status odma_resize(odma_allocator* a, size_t arena_bytes, size_t copy_budget_bytes,
                        size_t* freeable_bytes) {
    constexpr std::string_view fn = "odma_resize";
    if (freeable_bytes) *freeable_bytes = 0;
    runtime_allocator* kv = live(a);
    if (!kv) return bad_handle(fn, a);
    if (!kv->resizable())
        return fail(fn, ODMA_UNSUPPORTED,
                    "only ODMA_BACKING_HOST_VMM can resize its arena (memory reserved as "
                    "address space, backed on demand)");
    try {
        const auto r = kv->resize(arena_bytes, copy_budget_bytes);
        if (r) return ODMA_OK;
        if (freeable_bytes) *freeable_bytes = r.freeable_bytes();
        if (r.error() != odma::errc::no_memory) return fail(fn, r.error());
        char why[160];  // no allocation on this path
        std::snprintf(why, sizeof why,
                      "no_memory (live leases are in the way; %zu bytes can be freed now within "
                      "this copy budget)",
                      r.freeable_bytes());
        return fail(fn, ODMA_NO_MEMORY, why);
    } catch (...) {
        return from_exception(fn);
    }
}

odma_status odma_arena(const odma_allocator* a, void** base, size_t* bytes) {
    constexpr std::string_view fn = "odma_arena";
    const runtime_allocator* kv = live(a);
    if (!kv) return bad_handle(fn, a);
    if (!base) return null_argument(fn, "base");
    if (!bytes) return null_argument(fn, "bytes");
    *base = kv->base();
    *bytes = kv->arena_bytes();
    return ODMA_OK;
}

odma_status odma_get_stats(const odma_allocator* a, odma_stats* out) {
    constexpr std::string_view fn = "odma_get_stats";
    const runtime_allocator* kv = live(a);
    if (!kv) return bad_handle(fn, a);
    if (!out) return null_argument(fn, "out");
    try {
        const odma::stats& s = kv->stats();
        odma_stats c{};
        c.arena_bytes = s.arena_bytes;
        c.safety_pool_bytes = s.safety_pool_bytes;
        c.reserved_bytes = s.reserved_bytes;
        c.used_bytes = s.used_bytes;
        c.free_bytes = s.free_bytes;
        c.largest_free_bytes = s.largest_free_bytes;
        c.live_leases = s.live_leases;
        c.peak_live_leases = s.peak_live_leases;
        c.peak_used_bytes = s.peak_used_bytes;
        c.admissions = s.admissions;
        c.resumptions = s.resumptions;
        c.releases = s.releases;
        c.in_place_growths = s.in_place_growths;
        c.appended_runs = s.appended_runs;
        c.migrations = s.migrations;
        c.migrated_bytes = s.migrated_bytes;
        c.lending_passes = s.lending_passes;
        c.lent_bytes = s.lent_bytes;
        c.safety_pool_admissions = s.safety_pool_admissions;
        c.safety_pool_migrations = s.safety_pool_migrations;
        c.rejected_invalid_request = s.rejected.invalid_request;
        c.rejected_admit_no_memory = s.rejected.admit_no_memory;
        c.rejected_extend_no_memory = s.rejected.extend_no_memory;
        c.rejected_invalid_lease = s.rejected.invalid_lease;
        c.utilization = s.utilization();
        c.reserved_utilization = s.reserved_utilization();
        c.external_fragmentation = s.external_fragmentation;
        c.max_arena_bytes = s.max_arena_bytes;
        c.resizes = s.resizes;
        c.resize_copied_bytes = s.resize_copied_bytes;
        *out = c;
        return ODMA_OK;
    } catch (...) {
        return from_exception(fn);
    }
}

odma_status odma_check(const odma_allocator* a) {
    constexpr std::string_view fn = "odma_check";
    const runtime_allocator* kv = live(a);
    if (!kv) return bad_handle(fn, a);
    try {
        const auto r = kv->check();
        return r ? ODMA_OK : fail(fn, r.error());
    } catch (...) {
        return from_exception(fn);
    }
}

}  // extern "C"
