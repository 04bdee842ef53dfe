// The C interface (capi/include/odma_c.h): every call, every error path, through the C entry
// points only (odma headers are used just to write an n-gram model file and to compare with
// odma::tag_of).
#include <doctest/doctest.h>

#include "odma_c.h"

#include <odma/predict/ngram.hpp>
#include <odma/request.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t bpt = 16;            // bytes per token
constexpr std::uint32_t max_tokens = 256;  // buckets 64, 128, 192, 256 (uniform, 4)

/// A small allocator's configuration: 1,024 tokens, no safety pool, a constant prediction of
/// one new token, so every admission of a short prompt reserves one 64-token bucket.
odma_config small_config(odma_backing_kind backing = ODMA_BACKING_HOST) {
    odma_config c;
    odma_config_init(&c);
    c.arena_bytes = 1024 * bpt;
    c.bytes_per_token = bpt;
    c.max_tokens = max_tokens;
    c.safety_pool_fraction = 0.0;
    c.constant_tokens = 1;
    c.buckets = ODMA_BUCKETS_UNIFORM;
    c.bucket_count = 4;
    c.backing = backing;
    return c;
}

/// Owns an allocator for one test.
struct handle {
    odma_allocator* a = nullptr;
    explicit handle(const odma_config& c) {
        const odma_status s = odma_create(&c, &a);
        INFO(odma_last_error());
        REQUIRE(s == ODMA_OK);
        REQUIRE(a != nullptr);
    }
    handle(const handle&) = delete;
    handle& operator=(const handle&) = delete;
    ~handle() { odma_destroy(a); }
    operator odma_allocator*() const { return a; }
};

odma_request req(std::uint64_t id, std::uint32_t prompt, std::uint32_t max_new = 200) {
    return odma_request{id, prompt, max_new, nullptr, 0, 0};
}

odma_lease admit(odma_allocator* a, std::uint32_t prompt, std::uint64_t id = 1) {
    const odma_request r = req(id, prompt);
    odma_lease l{};
    const odma_status s = odma_admit(a, &r, &l);
    INFO(odma_last_error());
    REQUIRE(s == ODMA_OK);
    return l;
}

odma_stats stats_of(const odma_allocator* a) {
    odma_stats s{};
    REQUIRE(odma_get_stats(a, &s) == ODMA_OK);
    return s;
}

std::vector<odma_run> runs_of(const odma_allocator* a, odma_lease l, std::uint32_t plane = 0) {
    std::size_t n = 0;
    REQUIRE(odma_runs(a, l, plane, nullptr, 0, &n) == ODMA_OK);
    std::vector<odma_run> runs(n);
    std::size_t again = 0;
    REQUIRE(odma_runs(a, l, plane, runs.data(), runs.size(), &again) == ODMA_OK);
    REQUIRE(again == n);
    return runs;
}

/// Stores an int in a C enum field as a C caller may (any int), without a C++ enum cast.
template <class E>
void set_raw(E& field, int value) {
    static_assert(sizeof field == sizeof value);
    std::memcpy(&field, &value, sizeof value);
}

bool contains(std::string_view text, std::string_view part) {
    return text.find(part) != std::string_view::npos;
}

/// A model file odma::predict::ngram::load reads (an untrained model is a valid one).
const std::string& ngram_model() {
    static const std::string path = [] {
        const std::string p = "odma_capi_test_ngram.bin";
        odma::predict::ngram().save(p);
        return p;
    }();
    return path;
}

struct copy_log {
    struct copy {
        std::size_t dst, src, bytes;
    };
    std::vector<copy> copies;
    int fail_with = 0;
};

int record_copy(void* user, std::size_t dst, std::size_t src, std::size_t bytes) {
    auto* log = static_cast<copy_log*>(user);
    if (log->fail_with) return log->fail_with;
    log->copies.push_back({dst, src, bytes});
    return 0;
}

struct callback_state {
    int predicted = 0, observed = 0;
    std::int64_t answer = 10;
    std::uint32_t last_generated = 0;
    std::uint64_t last_id = 0;
    std::string last_text;
};

std::int64_t predict_cb(void* user, const odma_request* r) {
    auto* s = static_cast<callback_state*>(user);
    ++s->predicted;
    s->last_id = r->id;
    s->last_text.assign(r->prompt_text ? r->prompt_text : "", r->prompt_text_len);
    return s->answer;
}

void observe_cb(void* user, const odma_request* r, std::uint32_t generated) {
    auto* s = static_cast<callback_state*>(user);
    ++s->observed;
    s->last_id = r->id;
    s->last_generated = generated;
}

}  // namespace

TEST_CASE("capi: odma_status_name names every status") {
    CHECK(std::string_view(odma_status_name(ODMA_OK)) == "ok");
    CHECK(std::string_view(odma_status_name(ODMA_INVALID_REQUEST)) == "invalid_request");
    CHECK(std::string_view(odma_status_name(ODMA_NO_MEMORY)) == "no_memory");
    CHECK(std::string_view(odma_status_name(ODMA_INVALID_LEASE)) == "invalid_lease");
    CHECK(std::string_view(odma_status_name(ODMA_INVARIANT_VIOLATION)) == "invariant_violation");
    CHECK(std::string_view(odma_status_name(ODMA_DEVICE_ERROR)) == "device_error");
    CHECK(std::string_view(odma_status_name(ODMA_IO_ERROR)) == "io_error");
    CHECK(std::string_view(odma_status_name(ODMA_BAD_FORMAT)) == "bad_format");
    CHECK(std::string_view(odma_status_name(ODMA_INVALID_ARGUMENT)) == "invalid_argument");
    CHECK(std::string_view(odma_status_name(ODMA_OUT_OF_HOST_MEMORY)) == "out_of_host_memory");
    CHECK(std::string_view(odma_status_name(ODMA_INTERNAL_ERROR)) == "internal_error");
    CHECK(std::string_view(odma_status_name(ODMA_UNSUPPORTED)) == "unsupported");
    CHECK(std::string_view(odma_status_name(static_cast<odma_status>(42))) == "unknown");
}

TEST_CASE("capi: odma_config_init sets the documented defaults") {
    odma_config c;
    std::memset(&c, 0xab, sizeof c);
    odma_config_init(&c);
    CHECK(c.struct_size == sizeof(odma_config));
    CHECK(c.arena_bytes == 0);
    CHECK(c.bytes_per_token == 0);
    CHECK(c.max_tokens == 0);
    CHECK(c.planes == 1);
    CHECK(c.max_runs == 1);
    CHECK(c.run_alignment == 1);
    CHECK(c.lend_reserved == 0);
    CHECK(c.safety_pool_fraction == doctest::Approx(0.10));
    CHECK(c.overflow_risk == doctest::Approx(0.05));
    CHECK(c.predictor == ODMA_PREDICT_CONSTANT);
    CHECK(c.constant_tokens == 0);
    CHECK(c.ngram_model_path == nullptr);
    CHECK(bool(c.predict_fn) == false);
    CHECK(c.buckets == ODMA_BUCKETS_ONLINE_HISTOGRAM);
    CHECK(c.bucket_count == 16);
    CHECK(c.bucket_min_tokens == 16);
    CHECK(c.bucket_ratio == doctest::Approx(2.0));
    CHECK(c.bucket_list == nullptr);
    CHECK(c.backing == ODMA_BACKING_HOST);
    CHECK(bool(c.copy_fn) == false);
    CHECK(c.max_arena_bytes == 0);
    odma_config_init(nullptr);  // ignored
}

TEST_CASE("capi: odma_tag_of is odma::tag_of") {
    CHECK(odma_tag_of("chat", 4) == odma::tag_of("chat"));
    CHECK(odma_tag_of("chat", 2) == odma::tag_of("ch"));
    CHECK(odma_tag_of("", 0) == 0);
    CHECK(odma_tag_of(nullptr, 5) == 0);
}

TEST_CASE("capi: every predictor, bucket and backing kind admits, grows and releases") {
    const std::uint32_t explicit_list[] = {32, 100, max_tokens};
    callback_state cb;
    copy_log log;
    const odma_predictor_kind predictors[] = {ODMA_PREDICT_CONSTANT, ODMA_PREDICT_PROMPT_QUANTILE,
                                              ODMA_PREDICT_NGRAM, ODMA_PREDICT_CALLBACK};
    const odma_bucket_kind buckets[] = {ODMA_BUCKETS_UNIFORM, ODMA_BUCKETS_GEOMETRIC,
                                        ODMA_BUCKETS_EXPLICIT, ODMA_BUCKETS_ONLINE_HISTOGRAM};
    const odma_backing_kind backings[] = {ODMA_BACKING_HOST, ODMA_BACKING_HOST_VMM,
                                          ODMA_BACKING_OFFSETS};
    int created = 0;
    for (const auto p : predictors)
        for (const auto b : buckets)
            for (const auto m : backings) {
                CAPTURE(p);
                CAPTURE(b);
                CAPTURE(m);
                odma_config c = small_config(m);
                c.predictor = p;
                c.constant_tokens = 0;  // max_new_tokens
                c.ngram_model_path = ngram_model().c_str();
                c.predict_fn = predict_cb;
                c.observe_fn = observe_cb;
                c.predict_user = &cb;
                c.buckets = b;
                c.bucket_list = explicit_list;
                c.bucket_list_len = 3;
                c.copy_fn = record_copy;
                c.copy_user = &log;
                handle a(c);
                const odma_request r = req(7, 20, 30);
                odma_lease l{};
                REQUIRE(odma_admit(a, &r, &l) == ODMA_OK);
                CHECK(l.owner != 0);
                odma_growth g = ODMA_GROWTH_MIGRATED;
                REQUIRE(odma_extend(a, l, 21, &g) == ODMA_OK);
                CHECK(g == ODMA_GROWTH_UNCHANGED);
                REQUIRE(odma_extend(a, l, 50, nullptr) == ODMA_OK);
                CHECK(odma_check(a) == ODMA_OK);
                const auto runs = runs_of(a, l);
                REQUIRE(runs.size() == 1);
                CHECK(runs[0].bytes == 50 * bpt);
                const odma_stats s = stats_of(a);
                CHECK(s.live_leases == 1);
                CHECK(s.used_bytes == 50 * bpt);
                CHECK(s.arena_bytes == 1024 * bpt);
                REQUIRE(odma_release(a, l, 30) == ODMA_OK);
                CHECK(odma_check(a) == ODMA_OK);
                CHECK(stats_of(a).live_leases == 0);
                CHECK(stats_of(a).releases == 1);
                ++created;
            }
    CHECK(created == 48);
    CHECK(cb.predicted == 12);  // one admission per callback allocator
    CHECK(cb.observed == 12);
    CHECK(cb.last_generated == 30);
    std::remove(ngram_model().c_str());
}

TEST_CASE("capi: the constant predictor reserves constant_tokens, or max_new_tokens") {
    odma_config c = small_config();
    c.constant_tokens = 70;  // prompt 10 + 70 = 80 -> bucket 128
    {
        handle a(c);
        admit(a, 10);
        CHECK(stats_of(a).reserved_bytes == 128 * bpt);
    }
    c.constant_tokens = 0;  // prompt 10 + max_new 200 = 210 -> bucket 256, capped at 210
    handle a(c);
    admit(a, 10);
    CHECK(stats_of(a).reserved_bytes == 210 * bpt);
}

TEST_CASE("capi: the callback predictor sees the request and learns the true length") {
    callback_state cb;
    odma_config c = small_config();
    c.predictor = ODMA_PREDICT_CALLBACK;
    c.predict_fn = predict_cb;
    c.observe_fn = observe_cb;
    c.predict_user = &cb;
    handle a(c);
    const char text[] = "tell me a story";
    odma_request r{41, 10, 200, text, sizeof text - 1, odma_tag_of("chat", 4)};
    odma_lease l{};
    cb.answer = 100;  // 110 tokens -> bucket 128
    REQUIRE(odma_admit(a, &r, &l) == ODMA_OK);
    CHECK(cb.predicted == 1);
    CHECK(cb.last_id == 41);
    CHECK(cb.last_text == "tell me a story");
    CHECK(stats_of(a).reserved_bytes == 128 * bpt);
    REQUIRE(odma_release(a, l, 57) == ODMA_OK);
    CHECK(cb.observed == 1);
    CHECK(cb.last_generated == 57);

    cb.answer = -1;  // no idea: max_new_tokens, 210 tokens (the request's own limit)
    REQUIRE(odma_admit(a, &r, &l) == ODMA_OK);
    CHECK(stats_of(a).reserved_bytes == 210 * bpt);
    REQUIRE(odma_abandon(a, l) == ODMA_OK);
    CHECK(cb.observed == 1);  // abandon teaches nothing

    // Without an observe_fn, release works and calls nothing.
    c.observe_fn = nullptr;
    handle b(c);
    cb.answer = 5;
    REQUIRE(odma_admit(b, &r, &l) == ODMA_OK);
    REQUIRE(odma_release(b, l, 5) == ODMA_OK);
    CHECK(cb.observed == 1);
}

TEST_CASE("capi: extend reports each kind of growth") {
    odma_config c = small_config();
    handle a(c);
    const odma_lease first = admit(a, 10, 1);   // [0, 64)
    const odma_lease second = admit(a, 10, 2);  // right after it
    odma_growth g{};
    REQUIRE(odma_extend(a, first, 64, &g) == ODMA_OK);
    CHECK(g == ODMA_GROWTH_UNCHANGED);
    REQUIRE(odma_extend(a, second, 100, &g) == ODMA_OK);  // the room after it is free
    CHECK(g == ODMA_GROWTH_IN_PLACE);
    REQUIRE(odma_extend(a, first, 65, &g) == ODMA_OK);  // its neighbour is in the way
    CHECK(g == ODMA_GROWTH_MIGRATED);
    odma_stats s = stats_of(a);
    CHECK(s.migrations == 1);
    CHECK(s.migrated_bytes == 64 * bpt);
    CHECK(s.in_place_growths == 1);
    CHECK(odma_check(a) == ODMA_OK);

    // Shrinking within the reservation is allowed; 0 and past max_tokens are not.
    REQUIRE(odma_extend(a, second, 20, &g) == ODMA_OK);
    CHECK(g == ODMA_GROWTH_UNCHANGED);
    CHECK(odma_extend(a, second, 0, &g) == ODMA_INVALID_REQUEST);
    CHECK(odma_extend(a, second, max_tokens + 1, &g) == ODMA_INVALID_REQUEST);
    CHECK(contains(odma_last_error(), "odma_extend"));
    CHECK(contains(odma_last_error(), "invalid_request"));

    // With two runs allowed, the blocked lease takes a second run instead of moving.
    c.max_runs = 2;
    handle b(c);
    const odma_lease x = admit(b, 10, 1);
    admit(b, 10, 2);
    REQUIRE(odma_extend(b, x, 65, &g) == ODMA_OK);
    CHECK(g == ODMA_GROWTH_APPENDED);
    CHECK(runs_of(b, x).size() == 2);
    CHECK(stats_of(b).appended_runs == 1);
    CHECK(odma_check(b) == ODMA_OK);
}

TEST_CASE("capi: admit and resume refuse impossible sizes and report a full arena") {
    odma_config c = small_config();
    handle a(c);
    odma_lease l{};
    odma_request r = req(1, 0);
    CHECK(odma_admit(a, &r, &l) == ODMA_INVALID_REQUEST);
    r = req(1, 10, 0);
    CHECK(odma_admit(a, &r, &l) == ODMA_INVALID_REQUEST);
    r = req(1, max_tokens);
    CHECK(odma_admit(a, &r, &l) == ODMA_INVALID_REQUEST);
    CHECK(l.owner == 0);  // untouched on failure
    CHECK(stats_of(a).rejected_invalid_request == 3);

    // 1,024 tokens hold 16 leases of 64.
    std::vector<odma_lease> leases;
    for (int i = 0; i < 16; ++i)
        leases.push_back(admit(a, 10, std::uint64_t(i)));
    r = req(99, 10);
    CHECK(odma_admit(a, &r, &l) == ODMA_NO_MEMORY);
    CHECK(contains(odma_last_error(), "no_memory"));
    CHECK(odma_extend(a, leases[0], 65, nullptr) == ODMA_NO_MEMORY);
    CHECK(stats_of(a).rejected_admit_no_memory == 1);
    CHECK(stats_of(a).rejected_extend_no_memory == 1);
    CHECK(runs_of(a, leases[0])[0].bytes == 10 * bpt);  // kept its size

    // Preempt one after 30 generated tokens and resume it: it holds 40 tokens again.
    REQUIRE(odma_extend(a, leases[3], 40, nullptr) == ODMA_OK);
    REQUIRE(odma_abandon(a, leases[3]) == ODMA_OK);
    const odma_request original = req(3, 10);
    odma_lease back{};
    REQUIRE(odma_resume(a, &original, 30, &back) == ODMA_OK);
    CHECK(runs_of(a, back)[0].bytes == 40 * bpt);
    CHECK(stats_of(a).resumptions == 1);
    CHECK(odma_resume(a, &original, 200, &back) == ODMA_INVALID_REQUEST);  // nothing left
    CHECK(odma_resume(a, &original, 30, &back) == ODMA_NO_MEMORY);
    CHECK(odma_release(a, back, 35) == ODMA_OK);
    for (int i = 0; i < 16; ++i)
        if (i != 3) CHECK(odma_release(a, leases[std::size_t(i)], 1) == ODMA_OK);
    const odma_stats s = stats_of(a);
    CHECK(s.live_leases == 0);
    CHECK(s.peak_live_leases == 16);
    CHECK(s.admissions == 17);
    CHECK(s.releases == 17);  // release() and abandon() alike
    CHECK(s.free_bytes == s.arena_bytes);
    CHECK(odma_check(a) == ODMA_OK);
}

TEST_CASE("capi: soft reservations lend unused tails under pressure") {
    odma_config c = small_config();
    c.lend_reserved = 1;
    c.max_runs = 2;
    handle a(c);
    std::vector<odma_lease> leases;
    for (int i = 0; i < 16; ++i)  // the arena is fully reserved, 10 of each 64 tokens used
        leases.push_back(admit(a, 10, std::uint64_t(i)));
    odma_growth g{};
    REQUIRE(odma_extend(a, leases[0], 65, &g) == ODMA_OK);  // fits in lent tails
    CHECK(g != ODMA_GROWTH_UNCHANGED);
    const odma_stats s = stats_of(a);
    CHECK(s.lending_passes >= 1);
    CHECK(s.lent_bytes > 0);
    CHECK(odma_check(a) == ODMA_OK);

    c.lend_reserved = 0;  // without lending the same growth finds no room
    handle b(c);
    leases.clear();
    for (int i = 0; i < 16; ++i)
        leases.push_back(admit(b, 10, std::uint64_t(i)));
    CHECK(odma_extend(b, leases[0], 65, &g) == ODMA_NO_MEMORY);
    CHECK(stats_of(b).lending_passes == 0);
}

TEST_CASE("capi: runs and block tables") {
    odma_config c = small_config();
    c.run_alignment = 16;
    c.max_runs = 4;
    c.planes = 2;
    handle a(c);
    const odma_lease x = admit(a, 40, 1);
    admit(a, 10, 2);
    REQUIRE(odma_extend(a, x, 70, nullptr) == ODMA_OK);  // a second run

    for (std::uint32_t plane = 0; plane < 2; ++plane) {
        const auto runs = runs_of(a, x, plane);
        REQUIRE(runs.size() == 2);
        CHECK(runs[0].bytes + runs[1].bytes == 70 * bpt / 2);
        CHECK(runs[0].offset % (16 * bpt / 2) == 0);
        CHECK(runs[1].offset % (16 * bpt / 2) == 0);
    }
    // A buffer too small gets what fits, and the count says how many there are.
    odma_run one[1] = {{123, 456}};
    std::size_t n = 0;
    REQUIRE(odma_runs(a, x, 0, one, 1, &n) == ODMA_OK);
    CHECK(n == 2);
    CHECK(one[0].offset == runs_of(a, x)[0].offset);
    CHECK(odma_runs(a, x, 2, one, 1, &n) == ODMA_INVALID_REQUEST);  // no plane 2

    // Block tables: 70 tokens in blocks of 16 are 5 blocks (4 + 1, over two runs).
    std::size_t count = 99;
    REQUIRE(odma_block_table(a, x, 16, nullptr, 0, &count) == ODMA_OK);
    CHECK(count == 5);
    std::vector<std::uint32_t> table(count, 0xffffffffu);
    REQUIRE(odma_block_table(a, x, 16, table.data(), table.size(), &count) == ODMA_OK);
    const auto runs = runs_of(a, x);
    const std::size_t plane_token = bpt / 2;
    CHECK(table[0] == runs[0].offset / plane_token / 16);
    CHECK(table[1] == table[0] + 1);
    CHECK(table[4] == runs[1].offset / plane_token / 16);
    std::uint32_t small[2] = {7, 7};
    REQUIRE(odma_block_table(a, x, 16, small, 2, &count) == ODMA_OK);
    CHECK(count == 5);
    CHECK(small[0] == table[0]);
    CHECK(small[1] == table[1]);
    // K = 8 divides 16: twice as many blocks. K = 5 or 32 or 0 does not.
    REQUIRE(odma_block_table(a, x, 8, nullptr, 0, &count) == ODMA_OK);
    CHECK(count == 9);  // 64 + 6 tokens -> 8 + 1 blocks
    count = 42;
    CHECK(odma_block_table(a, x, 5, nullptr, 0, &count) == ODMA_INVALID_REQUEST);
    CHECK(odma_block_table(a, x, 32, nullptr, 0, &count) == ODMA_INVALID_REQUEST);
    CHECK(odma_block_table(a, x, 0, nullptr, 0, &count) == ODMA_INVALID_REQUEST);
    CHECK(count == 42);  // untouched on failure
    CHECK(contains(odma_last_error(), "odma_block_table"));
}

TEST_CASE("capi: data and arena give host bytes that survive a migration") {
    odma_config c = small_config();
    c.planes = 2;
    handle a(c);
    void* base = nullptr;
    std::size_t bytes = 0;
    REQUIRE(odma_arena(a, &base, &bytes) == ODMA_OK);
    REQUIRE(base != nullptr);
    CHECK(bytes == 1024 * bpt);

    const odma_lease x = admit(a, 10, 1);
    admit(a, 10, 2);
    const std::size_t plane_token = bpt / 2;
    for (std::uint32_t p = 0; p < 2; ++p) {
        void* data = nullptr;
        REQUIRE(odma_data(a, x, p, &data) == ODMA_OK);
        CHECK(static_cast<unsigned char*>(data) ==
              static_cast<unsigned char*>(base) + runs_of(a, x, p)[0].offset);
        for (std::size_t i = 0; i < 10 * plane_token; ++i)
            static_cast<unsigned char*>(data)[i] = static_cast<unsigned char>(i * 3 + p);
    }
    odma_growth g{};
    REQUIRE(odma_extend(a, x, 65, &g) == ODMA_OK);
    REQUIRE(g == ODMA_GROWTH_MIGRATED);
    for (std::uint32_t p = 0; p < 2; ++p) {
        const auto runs = runs_of(a, x, p);
        const auto* at = static_cast<const unsigned char*>(base) + runs[0].offset;
        bool same = true;
        for (std::size_t i = 0; i < 10 * plane_token; ++i)
            same = same && at[i] == static_cast<unsigned char>(i * 3 + p);
        CHECK(same);
    }
    void* data = nullptr;
    CHECK(odma_data(a, x, 2, &data) == ODMA_INVALID_REQUEST);  // no plane 2
}

TEST_CASE("capi: host_vmm backing gives writable bytes") {
    handle a(small_config(ODMA_BACKING_HOST_VMM));
    const odma_lease x = admit(a, 10);
    void* data = nullptr;
    REQUIRE(odma_data(a, x, 0, &data) == ODMA_OK);
    std::memset(data, 0x5a, 10 * bpt);
    CHECK(static_cast<unsigned char*>(data)[10 * bpt - 1] == 0x5a);
    CHECK(odma_check(a) == ODMA_OK);
}

TEST_CASE("capi: odma_resize grows and shrinks a host_vmm arena, moving leases within budget") {
    odma_config c = small_config(ODMA_BACKING_HOST_VMM);
    c.max_arena_bytes = 4096 * bpt;  // room to grow; the arena starts at 1,024 tokens
    handle a(c);
    odma_stats s = stats_of(a);
    CHECK(s.arena_bytes == 1024 * bpt);
    CHECK(s.max_arena_bytes == 4096 * bpt);
    void* base = nullptr;
    std::size_t reserved = 0;
    REQUIRE(odma_arena(a, &base, &reserved) == ODMA_OK);
    CHECK(reserved == 4096 * bpt);

    // 16 leases of one 64-token bucket fill it.
    std::vector<odma_lease> leases;
    for (std::uint64_t id = 0; id < 16; ++id)
        leases.push_back(admit(a, 40, id));
    const odma_request more = req(99, 40);
    odma_lease extra{};
    CHECK(odma_admit(a, &more, &extra) == ODMA_NO_MEMORY);

    // Grow: the same request fits at once.
    std::size_t freeable = 123;
    REQUIRE(odma_resize(a, 2048 * bpt, 0, &freeable) == ODMA_OK);
    CHECK(freeable == 0);
    CHECK(stats_of(a).arena_bytes == 2048 * bpt);
    for (std::uint64_t id = 16; id < 20; ++id)
        leases.push_back(admit(a, 40, id));  // [1024, 1280)

    // Stamp every lease, then free the first four: a 256-token hole low in the arena.
    auto stamp = [&](std::size_t i, bool verify) {
        bool ok = true;
        for (const odma_run& run : runs_of(a, leases[i])) {
            auto* bytes = static_cast<unsigned char*>(base) + run.offset;
            for (std::size_t b = 0; b < run.bytes; ++b) {
                const auto v = static_cast<unsigned char>(i * 7 + b);
                if (verify)
                    ok = ok && bytes[b] == v;
                else
                    bytes[b] = v;
            }
        }
        return ok;
    };
    for (std::size_t i = 0; i < leases.size(); ++i)
        stamp(i, false);
    for (std::size_t i = 0; i < 4; ++i)
        REQUIRE(odma_release(a, leases[i], 1) == ODMA_OK);

    // Back to 1,024 tokens: leases 16..19 must move, 4 x 40 tokens. Not with no budget...
    REQUIRE(odma_resize(a, 1024 * bpt, 0, &freeable) == ODMA_NO_MEMORY);
    CHECK(contains(odma_last_error(), "odma_resize"));
    CHECK(freeable == (2048 - 1280) * bpt);  // the free tail only
    CHECK(stats_of(a).arena_bytes == 2048 * bpt);
    for (std::size_t i = 4; i < leases.size(); ++i)
        CHECK(stamp(i, true));
    // ... but with one.
    REQUIRE(odma_resize(a, 1024 * bpt, 4 * 40 * bpt, &freeable) == ODMA_OK);
    s = stats_of(a);
    CHECK(s.arena_bytes == 1024 * bpt);
    CHECK(s.resizes == 2);
    CHECK(s.resize_copied_bytes == 4 * 40 * bpt);
    for (std::size_t i = 4; i < leases.size(); ++i) {
        CHECK(stamp(i, true));
        CHECK(runs_of(a, leases[i])[0].offset < 1024 * bpt);
    }
    CHECK(odma_check(a) == ODMA_OK);

    // Sizes that cannot work; other backings cannot resize at all.
    CHECK(odma_resize(a, 4097 * bpt, 0, &freeable) == ODMA_INVALID_REQUEST);
    CHECK(odma_resize(a, 255 * bpt, 0, nullptr) == ODMA_INVALID_REQUEST);
    for (const auto kind : {ODMA_BACKING_HOST, ODMA_BACKING_OFFSETS}) {
        odma_config other = small_config(kind);
        other.copy_fn = record_copy;
        handle fixed(other);
        freeable = 7;
        CHECK(odma_resize(fixed, 512 * bpt, 0, &freeable) == ODMA_UNSUPPORTED);
        CHECK(freeable == 0);
        CHECK(contains(odma_last_error(), "ODMA_BACKING_HOST_VMM"));
    }
}

TEST_CASE("capi: the offsets backing copies through copy_fn and survives its failure") {
    copy_log log;
    odma_config c = small_config(ODMA_BACKING_OFFSETS);
    c.copy_fn = record_copy;
    c.copy_user = &log;
    handle a(c);
    void* base = &log;
    std::size_t bytes = 0;
    REQUIRE(odma_arena(a, &base, &bytes) == ODMA_OK);
    CHECK(base == nullptr);
    CHECK(bytes == 1024 * bpt);

    const odma_lease x = admit(a, 10, 1);
    const odma_lease y = admit(a, 10, 2);
    void* data = nullptr;
    CHECK(odma_data(a, x, 0, &data) == ODMA_INVALID_ARGUMENT);
    CHECK(contains(odma_last_error(), "odma_runs"));

    REQUIRE(odma_extend(a, x, 30, nullptr) == ODMA_OK);
    const auto before = runs_of(a, x);
    odma_growth g{};
    REQUIRE(odma_extend(a, x, 65, &g) == ODMA_OK);
    REQUIRE(g == ODMA_GROWTH_MIGRATED);
    const auto after = runs_of(a, x);
    REQUIRE(log.copies.size() == 1);
    CHECK(log.copies[0].src == before[0].offset);
    CHECK(log.copies[0].dst == after[0].offset);
    CHECK(log.copies[0].bytes == 30 * bpt);  // only the tokens it held

    // A failing copy: ODMA_DEVICE_ERROR, and the lease keeps its runs, size and life.
    log.fail_with = -7;
    const auto held = runs_of(a, y);
    const odma_stats s0 = stats_of(a);
    CHECK(odma_extend(a, y, 65, &g) == ODMA_DEVICE_ERROR);
    CHECK(contains(odma_last_error(), "copy_fn returned -7"));
    const auto kept = runs_of(a, y);
    REQUIRE(kept.size() == 1);
    CHECK(kept[0].offset == held[0].offset);
    CHECK(kept[0].bytes == held[0].bytes);
    CHECK(odma_check(a) == ODMA_OK);
    const odma_stats s1 = stats_of(a);
    CHECK(s1.reserved_bytes == s0.reserved_bytes);
    CHECK(s1.migrations == s0.migrations);
    CHECK(s1.live_leases == 2);
    REQUIRE(odma_extend(a, y, 64, &g) == ODMA_OK);  // still usable
    CHECK(g == ODMA_GROWTH_UNCHANGED);
    log.fail_with = 0;
    REQUIRE(odma_extend(a, y, 65, &g) == ODMA_OK);
    CHECK(g != ODMA_GROWTH_UNCHANGED);
    REQUIRE(odma_release(a, y, 1) == ODMA_OK);
    REQUIRE(odma_release(a, x, 1) == ODMA_OK);
    CHECK(odma_check(a) == ODMA_OK);
}

TEST_CASE("capi: a null or destroyed allocator is refused by every call") {
    odma_allocator* dead = nullptr;
    odma_config c = small_config();
    REQUIRE(odma_create(&c, &dead) == ODMA_OK);
    odma_lease l = admit(dead, 10);
    odma_destroy(dead);  // the handle stays readable (tag cleared) for a while

    for (odma_allocator* a : {static_cast<odma_allocator*>(nullptr), dead}) {
        CAPTURE(a);
        const odma_request r = req(1, 10);
        odma_lease out{};
        void* p = nullptr;
        std::size_t n = 0;
        odma_run run{};
        std::uint32_t block = 0;
        odma_stats s{};
        CHECK(odma_admit(a, &r, &out) == ODMA_INVALID_ARGUMENT);
        CHECK(contains(odma_last_error(), a ? "destroyed" : "NULL"));
        CHECK(odma_resume(a, &r, 1, &out) == ODMA_INVALID_ARGUMENT);
        CHECK(odma_extend(a, l, 11, nullptr) == ODMA_INVALID_ARGUMENT);
        CHECK(odma_release(a, l, 1) == ODMA_INVALID_ARGUMENT);
        CHECK(odma_abandon(a, l) == ODMA_INVALID_ARGUMENT);
        CHECK(odma_runs(a, l, 0, &run, 1, &n) == ODMA_INVALID_ARGUMENT);
        CHECK(odma_block_table(a, l, 1, &block, 1, &n) == ODMA_INVALID_ARGUMENT);
        CHECK(odma_data(a, l, 0, &p) == ODMA_INVALID_ARGUMENT);
        CHECK(odma_arena(a, &p, &n) == ODMA_INVALID_ARGUMENT);
        CHECK(odma_get_stats(a, &s) == ODMA_INVALID_ARGUMENT);
        CHECK(odma_check(a) == ODMA_INVALID_ARGUMENT);
        CHECK(odma_resize(a, 1024 * bpt, 0, &n) == ODMA_INVALID_ARGUMENT);
        CHECK(n == 0);
        odma_destroy(a);  // NULL and destroyed handles are ignored
    }
}

TEST_CASE("capi: null outputs and inputs are refused") {
    handle a(small_config());
    const odma_lease l = admit(a, 10);
    const odma_request r = req(1, 10);
    odma_lease out{};
    CHECK(odma_admit(a, nullptr, &out) == ODMA_INVALID_ARGUMENT);
    CHECK(contains(odma_last_error(), "request is NULL"));
    CHECK(odma_admit(a, &r, nullptr) == ODMA_INVALID_ARGUMENT);
    CHECK(contains(odma_last_error(), "out is NULL"));
    CHECK(odma_resume(a, nullptr, 1, &out) == ODMA_INVALID_ARGUMENT);
    CHECK(odma_resume(a, &r, 1, nullptr) == ODMA_INVALID_ARGUMENT);
    odma_run run{};
    std::uint32_t block = 0;
    CHECK(odma_runs(a, l, 0, &run, 1, nullptr) == ODMA_INVALID_ARGUMENT);
    std::size_t n = 0;
    CHECK(odma_runs(a, l, 0, nullptr, 1, &n) == ODMA_INVALID_ARGUMENT);
    CHECK(odma_block_table(a, l, 1, &block, 1, nullptr) == ODMA_INVALID_ARGUMENT);
    CHECK(odma_block_table(a, l, 1, nullptr, 1, &n) == ODMA_INVALID_ARGUMENT);
    void* p = nullptr;
    CHECK(odma_data(a, l, 0, nullptr) == ODMA_INVALID_ARGUMENT);
    CHECK(odma_arena(a, nullptr, &n) == ODMA_INVALID_ARGUMENT);
    CHECK(odma_arena(a, &p, nullptr) == ODMA_INVALID_ARGUMENT);
    CHECK(odma_get_stats(a, nullptr) == ODMA_INVALID_ARGUMENT);
    // prompt_text NULL with a length is inconsistent.
    odma_request bad = req(2, 10);
    bad.prompt_text_len = 4;
    CHECK(odma_admit(a, &bad, &out) == ODMA_INVALID_ARGUMENT);
    CHECK(contains(odma_last_error(), "prompt_text"));
    CHECK(stats_of(a).live_leases == 1);
    CHECK(odma_check(a) == ODMA_OK);
}

TEST_CASE("capi: stale, foreign and zero leases are refused by every lease call") {
    handle a(small_config());
    handle other(small_config());
    const odma_lease live = admit(a, 10, 1);
    const odma_lease stale = admit(a, 10, 2);
    REQUIRE(odma_release(a, stale, 1) == ODMA_OK);
    const odma_lease foreign = admit(other, 10, 3);
    const odma_lease zero{};
    odma_lease forged = live;
    forged.generation += 1;

    for (const odma_lease& l : {stale, foreign, zero, forged}) {
        void* p = nullptr;
        std::size_t n = 7;
        odma_run run{};
        std::uint32_t block = 0;
        odma_growth g = ODMA_GROWTH_APPENDED;
        CHECK(odma_extend(a, l, 11, &g) == ODMA_INVALID_LEASE);
        CHECK(g == ODMA_GROWTH_APPENDED);
        CHECK(contains(odma_last_error(), "invalid_lease"));
        CHECK(odma_release(a, l, 1) == ODMA_INVALID_LEASE);
        CHECK(odma_abandon(a, l) == ODMA_INVALID_LEASE);
        CHECK(odma_runs(a, l, 0, &run, 1, &n) == ODMA_INVALID_LEASE);
        CHECK(odma_block_table(a, l, 1, &block, 1, &n) == ODMA_INVALID_LEASE);
        CHECK(odma_data(a, l, 0, &p) == ODMA_INVALID_LEASE);
        CHECK(n == 7);
    }
    CHECK(stats_of(a).rejected_invalid_lease == 4 * 6);
    CHECK(stats_of(a).live_leases == 1);
    CHECK(odma_check(a) == ODMA_OK);
    CHECK(odma_check(other) == ODMA_OK);
}

TEST_CASE("capi: a configuration that cannot work names its field") {
    const std::uint32_t not_ascending[] = {64, 32, max_tokens};
    const std::uint32_t short_list[] = {64, 128};
    struct bad_case {
        const char* field;
        void (*edit)(odma_config&);
    };
    static const std::uint32_t* lists[] = {not_ascending, short_list};
    static const std::uint32_t** list_ptr = lists;
    list_ptr = lists;
    const bad_case cases[] = {
        {"struct_size", [](odma_config& c) { c.struct_size = sizeof(odma_config) - 8; }},
        {"struct_size", [](odma_config& c) { c.struct_size = 0; }},
        {"bytes_per_token", [](odma_config& c) { c.bytes_per_token = 0; }},
        {"max_tokens", [](odma_config& c) { c.max_tokens = 0; }},
        {"planes", [](odma_config& c) { c.planes = 0; }},
        {"planes", [](odma_config& c) { c.planes = 3; }},  // does not divide 16 bytes
        {"max_runs", [](odma_config& c) { c.max_runs = 0; }},
        {"max_runs", [](odma_config& c) { c.max_runs = 17; }},
        {"run_alignment", [](odma_config& c) { c.run_alignment = 0; }},
        {"safety_pool_fraction", [](odma_config& c) { c.safety_pool_fraction = 1.0; }},
        {"safety_pool_fraction", [](odma_config& c) { c.safety_pool_fraction = 0.9; }},
        {"overflow_risk", [](odma_config& c) { c.overflow_risk = -0.1; }},
        {"arena_bytes", [](odma_config& c) { c.arena_bytes = 0; }},
        {"max_arena_bytes", [](odma_config& c) { c.max_arena_bytes = 4096 * bpt; }},  // host
        {"max_arena_bytes",
         [](odma_config& c) {
             c.backing = ODMA_BACKING_HOST_VMM;
             c.max_arena_bytes = 512 * bpt;  // less than arena_bytes
         }},
        {"arena_bytes",
         [](odma_config& c) {
             c.backing = ODMA_BACKING_HOST_VMM;
             c.max_arena_bytes = 4096 * bpt;
             c.arena_bytes = 100 * bpt;  // < max_tokens
         }},
        {"backing", [](odma_config& c) { c.arena_bytes = 100 * bpt; }},  // < max_tokens
        {"backing", [](odma_config& c) { set_raw(c.backing, 9); }},
        {"copy_fn", [](odma_config& c) { c.backing = ODMA_BACKING_OFFSETS; }},
        {"predictor", [](odma_config& c) { set_raw(c.predictor, 9); }},
        {"predict_fn", [](odma_config& c) { c.predictor = ODMA_PREDICT_CALLBACK; }},
        {"ngram_model_path", [](odma_config& c) { c.predictor = ODMA_PREDICT_NGRAM; }},
        {"buckets", [](odma_config& c) { set_raw(c.buckets, 9); }},
        {"bucket_count", [](odma_config& c) { c.bucket_count = 0; }},
        {"bucket_count", [](odma_config& c) { c.bucket_count = max_tokens + 1; }},
        {"bucket_count",
         [](odma_config& c) {
             c.buckets = ODMA_BUCKETS_ONLINE_HISTOGRAM;
             c.bucket_count = 0;
         }},
        {"bucket_min_tokens",
         [](odma_config& c) {
             c.buckets = ODMA_BUCKETS_GEOMETRIC;
             c.bucket_min_tokens = 0;
         }},
        {"bucket_ratio",
         [](odma_config& c) {
             c.buckets = ODMA_BUCKETS_GEOMETRIC;
             c.bucket_ratio = 1.0;
         }},
        {"bucket_list", [](odma_config& c) { c.buckets = ODMA_BUCKETS_EXPLICIT; }},
        {"bucket_list",
         [](odma_config& c) {
             c.buckets = ODMA_BUCKETS_EXPLICIT;
             c.bucket_list = list_ptr[0];
             c.bucket_list_len = 3;
         }},
        {"bucket_list",
         [](odma_config& c) {
             c.buckets = ODMA_BUCKETS_EXPLICIT;
             c.bucket_list = list_ptr[1];
             c.bucket_list_len = 2;
         }},
    };
    for (const bad_case& bad : cases) {
        CAPTURE(bad.field);
        odma_config c = small_config();
        bad.edit(c);
        odma_allocator* a = reinterpret_cast<odma_allocator*>(&c);  // must become NULL
        CHECK(odma_create(&c, &a) == ODMA_INVALID_ARGUMENT);
        CHECK(a == nullptr);
        const std::string message = odma_last_error();
        CAPTURE(message);
        CHECK(contains(message, bad.field));
        CHECK(contains(message, "odma_create"));
        odma_destroy(a);
    }
    odma_config c = small_config();
    odma_allocator* a = nullptr;
    CHECK(odma_create(nullptr, &a) == ODMA_INVALID_ARGUMENT);
    CHECK(odma_create(&c, nullptr) == ODMA_INVALID_ARGUMENT);
}

TEST_CASE("capi: n-gram model files that cannot be read or are not models") {
    odma_config c = small_config();
    c.predictor = ODMA_PREDICT_NGRAM;
    odma_allocator* a = nullptr;
    c.ngram_model_path = "/nonexistent/odma/model.bin";
    CHECK(odma_create(&c, &a) == ODMA_IO_ERROR);
    CHECK(a == nullptr);
    CHECK(std::string_view(odma_last_error()).size() > 0);
    const char* garbage = "odma_capi_test_not_a_model.bin";
    if (std::FILE* f = std::fopen(garbage, "wb")) {
        std::fputs("this is not an odma model file, just some text padding it out", f);
        std::fclose(f);
    }
    c.ngram_model_path = garbage;
    CHECK(odma_create(&c, &a) == ODMA_BAD_FORMAT);
    CHECK(a == nullptr);
    std::remove(garbage);
}

#if defined(__SANITIZE_ADDRESS__)
#define ODMA_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ODMA_TEST_ASAN 1
#endif
#endif
#ifndef ODMA_TEST_ASAN
TEST_CASE("capi: an arena the host cannot allocate is ODMA_OUT_OF_HOST_MEMORY") {
    odma_config c = small_config();
    c.arena_bytes = std::size_t(1) << 62;
    odma_allocator* a = nullptr;
    CHECK(odma_create(&c, &a) == ODMA_OUT_OF_HOST_MEMORY);
    CHECK(a == nullptr);
}
#endif

TEST_CASE("capi: odma_last_error is per thread and keeps the last failure") {
    handle a(small_config());
    const odma_lease zero{};
    CHECK(odma_abandon(a, zero) == ODMA_INVALID_LEASE);
    const std::string mine = odma_last_error();
    CHECK(contains(mine, "odma_abandon"));
    std::string theirs;
    std::thread t([&] {
        theirs = odma_last_error();  // nothing failed on this thread yet
        odma_check(nullptr);
    });
    t.join();
    CHECK(theirs.empty());
    CHECK(odma_last_error() == mine);
    CHECK(odma_check(a) == ODMA_OK);  // a success leaves the message alone
    CHECK(odma_last_error() == mine);
}
