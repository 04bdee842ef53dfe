// Fuzz target for the C interface (odma_c.h): bytes -> an odma_config (every predictor the
// fuzzer can run without files, every bucket and backing kind, runs, alignment, lending) and a
// sequence of admit / extend / release / abandon / resume / runs / block-table / bad-handle /
// resize calls, with odma_check() after each one.
//
// Built two ways (tests/fuzz/CMakeLists.txt), as fuzz_allocator.cpp:
//   odma_fuzz_capi         clang -fsanitize=fuzzer,address,undefined, the C API compiled in.
//   odma_fuzz_capi_replay  any compiler, with replay_main.cpp, linked with odma_c_static: runs
//                          the committed corpus and seeded random inputs as a ctest.
//
// Besides odma_check, every call is checked against a model of the live leases: the statuses
// allowed for the input, the used tokens (runs add up to them in every plane, the block table
// has exactly the blocks the runs cover), the bytes every lease holds (each carries a pattern,
// through the host pointers or, for the offsets backing, through the copy callback's own
// buffer), failed copies that leave the lease untouched, and stale, foreign, zero leases and a
// destroyed allocator refused. A breach prints the line and aborts.
#include "byte_reader.hpp"

#include "fuzz_allocator.hpp"

#include "odma_c.h"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

std::atomic<std::uint64_t> operations{0};
std::atomic<std::uint64_t> inputs{0};
std::atomic<std::uint64_t> failed_copies{0};
std::atomic<std::uint64_t> resizes{0};  // odma_resize calls that succeeded

[[noreturn]] void fail(const char* what, int line) {
    std::fprintf(stderr, "odma capi fuzz: check failed at fuzz_capi.cpp:%d: %s (last error: %s)\n",
                 line, what, odma_last_error());
    std::abort();
}
#define FUZZ_CHECK(cond) ((cond) ? void(0) : fail(#cond, __LINE__))

using odma_fuzz::byte_reader;

/// The engine's memory behind ODMA_BACKING_OFFSETS, and its copy callback.
struct device {
    std::vector<unsigned char> bytes;
    bool fail_next = false;
    std::uint64_t copies = 0;
};

int device_copy(void* user, std::size_t dst, std::size_t src, std::size_t n) {
    auto* d = static_cast<device*>(user);
    if (d->fail_next) {
        d->fail_next = false;
        return 5;
    }
    if (dst + n > d->bytes.size() || src + n > d->bytes.size() ||
        !(dst + n <= src || src + n <= dst))
        fail("copy_fn called with a range outside the arena or overlapping", __LINE__);
    std::memcpy(d->bytes.data() + dst, d->bytes.data() + src, n);
    ++d->copies;
    return 0;
}

std::int64_t predict_half(void*, const odma_request* r) {
    return r->id % 3 == 0 ? -1 : std::int64_t(r->max_new_tokens / 2);
}
void observe_nothing(void*, const odma_request*, std::uint32_t) {}

struct model_lease {
    odma_lease handle;
    std::uint64_t id;
    std::uint32_t prompt, used, max_new;
};

unsigned char pattern(std::uint64_t id, std::uint32_t plane, std::size_t i) {
    return static_cast<unsigned char>((id * 131 + plane * 17 + i * 7 + (i >> 9)) & 0xff);
}

/// A lease of another allocator (created once, never destroyed).
odma_lease foreign_lease() {
    static const odma_lease l = [] {
        odma_config c;
        odma_config_init(&c);
        c.arena_bytes = 64;
        c.bytes_per_token = 1;
        c.max_tokens = 16;
        c.safety_pool_fraction = 0.0;
        static odma_allocator* other = nullptr;
        FUZZ_CHECK(odma_create(&c, &other) == ODMA_OK);
        const odma_request r{1, 1, 1, nullptr, 0, 0};
        odma_lease out{};
        FUZZ_CHECK(odma_admit(other, &r, &out) == ODMA_OK);
        return out;
    }();
    return l;
}

void run(byte_reader& in) {
    // --- configuration ---------------------------------------------------------------------
    odma_config c;
    odma_config_init(&c);
    c.planes = 1u << (in.u8() % 3);
    c.bytes_per_token = c.planes * (1 + in.u8() % 4);
    c.max_tokens = 16 + in.u16() % 497;
    c.safety_pool_fraction = (in.u8() % 4) * 0.1;
    c.overflow_risk = (in.u8() % 4) * 0.1;
    c.max_runs = 1 + in.u8() % 4;
    c.run_alignment = 1u << (in.u8() % 4);  // 1, 2, 4 or 8 tokens
    c.lend_reserved = in.u8() % 2;
    const std::uint8_t predictor = in.u8() % 3;
    c.predictor = predictor == 0   ? ODMA_PREDICT_CONSTANT
                  : predictor == 1 ? ODMA_PREDICT_PROMPT_QUANTILE
                                   : ODMA_PREDICT_CALLBACK;
    c.constant_tokens = in.u8() % 2 ? 0 : in.u8();
    c.predict_fn = predict_half;
    c.observe_fn = in.u8() % 2 ? observe_nothing : nullptr;
    const std::uint8_t buckets = in.u8() % 4;
    c.buckets = static_cast<odma_bucket_kind>(buckets);
    c.bucket_count = 1 + in.u8() % 16;
    c.bucket_min_tokens = 1 + in.u8() % 64;
    c.bucket_ratio = 1.25 + (in.u8() % 8) * 0.25;
    std::vector<std::uint32_t> list;
    for (std::uint32_t b = 1 + in.u8() % 32; b < c.max_tokens; b += 1 + in.u16() % 128)
        list.push_back(b);
    list.push_back(c.max_tokens);
    c.bucket_list = list.data();
    c.bucket_list_len = list.size();
    c.backing = static_cast<odma_backing_kind>(in.u8() % 3);
    const std::uint32_t general = c.max_tokens * (1 + in.u8() % 6) + in.u8();
    const auto tokens = std::uint32_t(double(general) / (1.0 - c.safety_pool_fraction)) + 2;
    c.arena_bytes = std::size_t(tokens) * c.bytes_per_token;
    // host_vmm reserves room for odma_resize to grow the arena to twice its size.
    if (c.backing == ODMA_BACKING_HOST_VMM) c.max_arena_bytes = 2 * c.arena_bytes;
    device dev;
    dev.bytes.assign(c.arena_bytes, 0);
    c.copy_fn = device_copy;
    c.copy_user = &dev;
    if (c.buckets == ODMA_BUCKETS_UNIFORM && c.bucket_count > c.max_tokens)
        c.bucket_count = c.max_tokens;

    if (const std::uint8_t bad = in.u8(); bad < 8) {
        // One field broken: odma_create must refuse it and leave *out NULL.
        switch (bad % 4) {
            case 0:
                c.bytes_per_token = 0;
                break;
            case 1:
                c.run_alignment = 0;
                break;
            case 2:
                c.struct_size = 8;
                break;
            default:
                c.predict_fn = nullptr;
                c.predictor = ODMA_PREDICT_CALLBACK;
        }
        odma_allocator* a = nullptr;
        FUZZ_CHECK(odma_create(&c, &a) == ODMA_INVALID_ARGUMENT && a == nullptr);
        ++operations;
        return;
    }
    odma_allocator* kv = nullptr;
    const odma_status created = odma_create(&c, &kv);
    ++operations;
    if (created != ODMA_OK) {
        // Only sizes the policies cannot combine (alignment coarser than a bucket, an arena
        // that aligned down holds less than one max bucket) may be refused, and by name.
        FUZZ_CHECK(created == ODMA_INVALID_ARGUMENT && kv == nullptr);
        return;
    }
    void* base = nullptr;
    std::size_t arena = 0;
    FUZZ_CHECK(odma_arena(kv, &base, &arena) == ODMA_OK);
    const bool host = c.backing != ODMA_BACKING_OFFSETS;
    FUZZ_CHECK(host == (base != nullptr));
    FUZZ_CHECK(arena >= c.arena_bytes);
    auto* const bytes = host ? static_cast<unsigned char*>(base) : dev.bytes.data();
    const std::size_t plane_bytes = c.bytes_per_token / c.planes;

    std::vector<model_lease> live;
    std::vector<odma_lease> stale;
    std::uint64_t next_id = 1;
    std::vector<odma_run> runs;

    auto runs_of = [&](const model_lease& m, std::uint32_t p) {
        std::size_t n = 0;
        FUZZ_CHECK(odma_runs(kv, m.handle, p, nullptr, 0, &n) == ODMA_OK);
        FUZZ_CHECK(n >= 1 && n <= c.max_runs);
        runs.resize(n);
        std::size_t again = 0;
        FUZZ_CHECK(odma_runs(kv, m.handle, p, runs.data(), n, &again) == ODMA_OK && again == n);
        std::size_t total = 0;
        for (const odma_run& r : runs) {
            FUZZ_CHECK(r.bytes > 0 && r.bytes % plane_bytes == 0);
            FUZZ_CHECK(r.offset + r.bytes <= arena);
            total += r.bytes;
        }
        FUZZ_CHECK(total == std::size_t(m.used) * plane_bytes);
        return runs;
    };
    // Calls f(index, byte) for bytes [from, to) of lease m in plane p.
    auto each_byte = [&](const model_lease& m, std::uint32_t p, std::size_t from, std::size_t to,
                         auto&& f) {
        std::size_t i = 0;
        for (const odma_run& r : runs_of(m, p))
            for (std::size_t k = 0; k < r.bytes; ++k, ++i)
                if (i >= from && i < to) f(i, bytes[r.offset + k]);
    };
    auto write = [&](const model_lease& m, std::uint32_t from, std::uint32_t to) {
        for (std::uint32_t p = 0; p < c.planes; ++p)
            each_byte(m, p, from * plane_bytes, to * plane_bytes,
                      [&](std::size_t i, unsigned char& b) { b = pattern(m.id, p, i); });
    };
    auto intact_prefix = [&](const model_lease& m, std::uint32_t tokens) {
        bool ok = true;
        for (std::uint32_t p = 0; p < c.planes; ++p)
            each_byte(m, p, 0, tokens * plane_bytes, [&](std::size_t i, unsigned char& b) {
                ok = ok && b == pattern(m.id, p, i);
            });
        return ok;
    };
    auto intact = [&](const model_lease& m) { return intact_prefix(m, m.used); };
    auto first_offset = [&](const model_lease& m) { return runs_of(m, 0).front().offset; };
    auto expect_refused = [&](odma_lease l) {
        std::size_t n = 11;
        void* p = nullptr;
        FUZZ_CHECK(odma_extend(kv, l, 1, nullptr) == ODMA_INVALID_LEASE);
        FUZZ_CHECK(odma_release(kv, l, 1) == ODMA_INVALID_LEASE);
        FUZZ_CHECK(odma_abandon(kv, l) == ODMA_INVALID_LEASE);
        FUZZ_CHECK(odma_runs(kv, l, 0, nullptr, 0, &n) == ODMA_INVALID_LEASE && n == 11);
        FUZZ_CHECK(odma_block_table(kv, l, 1, nullptr, 0, &n) == ODMA_INVALID_LEASE);
        FUZZ_CHECK(odma_data(kv, l, 0, &p) == (host ? ODMA_INVALID_LEASE : ODMA_INVALID_ARGUMENT));
        operations += 6;
    };

    for (int step = 0; step < 2048 && !in.empty(); ++step) {
        const std::uint8_t op = in.u8();
        switch (op % 8) {
            case 0:
            case 1: {  // admit
                const std::uint32_t prompt = in.u16() % (c.max_tokens + 8);
                const std::uint32_t max_new = in.u16() % 1024;
                const odma_request r{next_id, prompt, max_new, nullptr, 0, in.u8()};
                odma_lease l{};
                const odma_status s = odma_admit(kv, &r, &l);
                ++operations;
                if (prompt == 0 || max_new == 0 || prompt >= c.max_tokens) {
                    FUZZ_CHECK(s == ODMA_INVALID_REQUEST);
                } else if (s != ODMA_OK) {
                    FUZZ_CHECK(s == ODMA_NO_MEMORY);
                } else {
                    live.push_back({l, next_id, prompt, prompt, max_new});
                    write(live.back(), 0, prompt);
                }
                ++next_id;
                break;
            }
            case 2:
            case 3: {  // extend, sometimes with a copy that fails
                if (live.empty()) break;
                model_lease& m = live[in.u8() % live.size()];
                const std::uint8_t how = in.u8();
                std::uint32_t total = how < 200 ? std::min(c.max_tokens, m.used + 1 + in.u8() % 64)
                                      : how < 240 ? 1 + in.u16() % c.max_tokens
                                                  : (how % 2 ? 0 : c.max_tokens + 1);
                dev.fail_next = !host && in.u8() < 32;
                const std::size_t before = first_offset(m);
                odma_growth g = ODMA_GROWTH_UNCHANGED;
                const odma_status s = odma_extend(kv, m.handle, total, &g);
                ++operations;
                if (total == 0 || total > c.max_tokens) {
                    FUZZ_CHECK(s == ODMA_INVALID_REQUEST);
                } else if (s != ODMA_OK) {
                    FUZZ_CHECK(s == ODMA_NO_MEMORY || (s == ODMA_DEVICE_ERROR && !host));
                    if (s == ODMA_DEVICE_ERROR) ++failed_copies;
                }
                if (s == ODMA_DEVICE_ERROR) FUZZ_CHECK(!dev.fail_next);  // it was used
                dev.fail_next = false;
                if (s != ODMA_OK) {  // nothing changed
                    FUZZ_CHECK(first_offset(m) == before);
                    FUZZ_CHECK(intact(m));
                    break;
                }
                FUZZ_CHECK(g >= ODMA_GROWTH_UNCHANGED && g <= ODMA_GROWTH_APPENDED);
                const std::uint32_t old = m.used;
                m.used = total;
                // Only a migration moves the first run; the tokens held keep their bytes
                // (copied, for a migration).
                if (g != ODMA_GROWTH_MIGRATED) FUZZ_CHECK(first_offset(m) == before);
                FUZZ_CHECK(intact_prefix(m, std::min(old, total)));
                if (total > old) write(m, old, total);
                FUZZ_CHECK(intact(m));
                break;
            }
            case 4:
            case 5: {  // release or abandon, then maybe resume
                if (live.empty()) break;
                const std::size_t i = in.u8() % live.size();
                const model_lease m = live[i];
                FUZZ_CHECK(intact(m));
                const odma_status s = op % 8 == 4 ? odma_release(kv, m.handle, m.used - m.prompt)
                                                  : odma_abandon(kv, m.handle);
                ++operations;
                FUZZ_CHECK(s == ODMA_OK);
                stale.push_back(m.handle);
                if (stale.size() > 32) stale.erase(stale.begin());
                live[i] = live.back();
                live.pop_back();
                if (op % 8 == 5 && in.u8() % 2) {
                    const std::uint32_t generated = m.used - m.prompt;
                    const odma_request original{m.id, m.prompt, m.max_new, nullptr, 0, 0};
                    odma_lease l{};
                    const odma_status r = odma_resume(kv, &original, generated, &l);
                    ++operations;
                    if (generated >= m.max_new || m.used >= c.max_tokens) {
                        FUZZ_CHECK(r == ODMA_INVALID_REQUEST);
                    } else if (r != ODMA_OK) {
                        FUZZ_CHECK(r == ODMA_NO_MEMORY);
                    } else {
                        live.push_back({l, m.id, m.prompt, m.used, m.max_new});
                        write(live.back(), 0, m.used);
                    }
                }
                break;
            }
            case 6: {  // a bad handle, plane or block size
                const std::uint8_t kind = in.u8() % 5;
                if (kind == 0 && !stale.empty()) expect_refused(stale[in.u8() % stale.size()]);
                if (kind == 1) expect_refused(foreign_lease());
                if (kind == 2) expect_refused(odma_lease{});
                if (kind == 3 && !live.empty()) {
                    const model_lease& m = live[in.u8() % live.size()];
                    std::size_t n = 0;
                    FUZZ_CHECK(odma_runs(kv, m.handle, c.planes, nullptr, 0, &n) ==
                               ODMA_INVALID_REQUEST);
                    const std::uint32_t k = 1 + in.u8() % 16;
                    const odma_status s = odma_block_table(kv, m.handle, k, nullptr, 0, &n);
                    FUZZ_CHECK(s == (c.run_alignment % k == 0 ? ODMA_OK : ODMA_INVALID_REQUEST));
                    operations += 2;
                }
                if (kind == 4) {
                    FUZZ_CHECK(odma_check(nullptr) == ODMA_INVALID_ARGUMENT);
                    FUZZ_CHECK(odma_admit(kv, nullptr, nullptr) == ODMA_INVALID_ARGUMENT);
                    operations += 2;
                }
                break;
            }
            default: {
                if (op >= 128) {  // resize: only host_vmm can; a refusal changes nothing
                    odma_stats s{};
                    FUZZ_CHECK(odma_get_stats(kv, &s) == ODMA_OK);
                    const std::size_t target =
                        std::size_t(in.u16() % (2 * tokens + 8)) * c.bytes_per_token;
                    const std::uint8_t how = in.u8() % 3;
                    const std::size_t budget = how == 0   ? 0
                                               : how == 1 ? 64 * c.bytes_per_token
                                                          : ~std::size_t{0};
                    std::vector<std::size_t> firsts;
                    for (const auto& m : live)
                        firsts.push_back(first_offset(m));
                    std::size_t freeable = 1;
                    const odma_status r = odma_resize(kv, target, budget, &freeable);
                    ++operations;
                    odma_stats after{};
                    FUZZ_CHECK(odma_get_stats(kv, &after) == ODMA_OK);
                    if (c.backing != ODMA_BACKING_HOST_VMM) {
                        FUZZ_CHECK(r == ODMA_UNSUPPORTED && freeable == 0);
                    } else if (r == ODMA_OK) {
                        FUZZ_CHECK(after.arena_bytes <= target && freeable == 0);
                        FUZZ_CHECK(after.resize_copied_bytes - s.resize_copied_bytes <= budget);
                        ++resizes;
                    } else {
                        FUZZ_CHECK(r == ODMA_NO_MEMORY || r == ODMA_INVALID_REQUEST);
                        FUZZ_CHECK(r == ODMA_NO_MEMORY || freeable == 0);
                    }
                    if (r != ODMA_OK) {  // nothing moved
                        FUZZ_CHECK(after.arena_bytes == s.arena_bytes);
                        for (std::size_t i = 0; i < live.size(); ++i)
                            FUZZ_CHECK(first_offset(live[i]) == firsts[i]);
                    }
                    if (r == ODMA_NO_MEMORY) {  // what was named can be had
                        FUZZ_CHECK(odma_resize(kv, s.arena_bytes - freeable, budget, nullptr) ==
                                   ODMA_OK);
                        ++operations;
                    }
                    for (const auto& m : live)
                        FUZZ_CHECK(intact(m));
                    break;
                }
                // Counters and block tables agree with the model.
                odma_stats s{};
                FUZZ_CHECK(odma_get_stats(kv, &s) == ODMA_OK);
                std::uint64_t used = 0;
                for (const auto& m : live)
                    used += m.used;
                FUZZ_CHECK(s.live_leases == live.size());
                FUZZ_CHECK(s.used_bytes == used * c.bytes_per_token);
                FUZZ_CHECK(s.reserved_bytes + s.free_bytes == s.arena_bytes);
                if (!live.empty()) {
                    const model_lease& m = live[in.u8() % live.size()];
                    const std::uint32_t k = c.run_alignment;
                    std::size_t expected = 0;
                    for (const odma_run& r : runs_of(m, 0)) {
                        const std::size_t first = r.offset / plane_bytes;
                        const std::size_t n = r.bytes / plane_bytes;
                        FUZZ_CHECK(first % k == 0);
                        expected += (n + k - 1) / k;
                    }
                    std::size_t count = 0;
                    FUZZ_CHECK(odma_block_table(kv, m.handle, k, nullptr, 0, &count) == ODMA_OK);
                    FUZZ_CHECK(count == expected);
                    std::vector<std::uint32_t> table(count);
                    FUZZ_CHECK(odma_block_table(kv, m.handle, k, table.data(), count, &count) ==
                               ODMA_OK);
                    FUZZ_CHECK(table.front() == first_offset(m) / plane_bytes / k);
                }
                ++operations;
            }
        }
        FUZZ_CHECK(odma_check(kv) == ODMA_OK);
    }

    for (const auto& m : live) {
        FUZZ_CHECK(intact(m));
        FUZZ_CHECK(odma_release(kv, m.handle, 0) == ODMA_OK);
        ++operations;
    }
    odma_stats s{};
    FUZZ_CHECK(odma_get_stats(kv, &s) == ODMA_OK);
    FUZZ_CHECK(s.live_leases == 0 && s.reserved_bytes == 0 && s.free_bytes == s.arena_bytes);
    FUZZ_CHECK(odma_check(kv) == ODMA_OK);
    odma_destroy(kv);
    FUZZ_CHECK(odma_check(kv) == ODMA_INVALID_ARGUMENT);  // the tag is cleared
    ++operations;
}

}  // namespace

namespace odma_fuzz {

void run_one(const std::uint8_t* data, std::size_t size) {
    byte_reader in(data, size);
    ++inputs;
    run(in);
}

void print_totals() {
    std::fprintf(stderr,
                 "odma capi fuzz: %llu C API calls over %llu inputs; %llu failed copies rolled "
                 "back, %llu resizes\n",
                 static_cast<unsigned long long>(operations.load()),
                 static_cast<unsigned long long>(inputs.load()),
                 static_cast<unsigned long long>(failed_copies.load()),
                 static_cast<unsigned long long>(resizes.load()));
}

}  // namespace odma_fuzz

#ifndef ODMA_FUZZ_REPLAY
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    std::atexit(odma_fuzz::print_totals);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    odma_fuzz::run_one(data, size);
    return 0;
}
#endif
