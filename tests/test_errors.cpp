// errc, result<T>, result<void> and address<P>: the error vocabulary.
#include <odma/errc.hpp>
#include <odma/result.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <system_error>

TEST_CASE("errc has readable names and plugs into std::error_code") {
    CHECK(odma::to_string(odma::errc::no_memory) == "no_memory");
    CHECK(odma::to_string(odma::errc::invalid_lease) == "invalid_lease");
    CHECK(odma::to_string(odma::errc{}) == "success");
    std::error_code ec = odma::errc::invalid_request;
    CHECK(ec.category().name() == std::string("odma"));
    CHECK(ec.message() == "invalid_request");
    CHECK(ec == odma::errc::invalid_request);
    CHECK(ec != odma::errc::no_memory);
}

TEST_CASE("result<T> holds a value") {
    odma::result<int> r = 42;
    CHECK(r.has_value());
    CHECK(static_cast<bool>(r));
    CHECK(*r == 42);
    CHECK(r.value() == 42);
    CHECK(r.error() == odma::errc{});
    CHECK(r.value_or(7) == 42);
}

TEST_CASE("result<T> holding an error never yields a value silently") {
    odma::result<int> r = odma::errc::no_memory;
    CHECK_FALSE(r.has_value());
    CHECK_FALSE(static_cast<bool>(r));
    CHECK(r.error() == odma::errc::no_memory);
    CHECK(r.value_or(7) == 7);
    CHECK_THROWS_AS(r.value(), odma::bad_result_access);
    CHECK_THROWS_AS((void)*r, odma::bad_result_access);
    try {
        (void)r.value();
    } catch (const odma::bad_result_access& e) {
        CHECK(e.code() == odma::errc::no_memory);
    }
}

TEST_CASE("an error of errc{} is stored as invariant_violation, never as success") {
    odma::result<int> r = odma::errc{};
    CHECK_FALSE(r.has_value());
    CHECK(r.error() == odma::errc::invariant_violation);
    odma::result<void> v = odma::errc{};
    CHECK_FALSE(v.has_value());
}

TEST_CASE("result<void>") {
    odma::result<void> ok;
    CHECK(ok.has_value());
    CHECK_NOTHROW(ok.value());
    odma::result<void> bad = odma::errc::invalid_lease;
    CHECK_FALSE(bad);
    CHECK(bad.error() == odma::errc::invalid_lease);
    CHECK_THROWS_AS(bad.value(), odma::bad_result_access);
}

TEST_CASE("address<P> converts to a pointer and is null with a reason on error") {
    std::byte buffer[4]{};
    odma::address<std::byte*> good = buffer + 1;
    std::byte* p = good;
    CHECK(p == buffer + 1);
    CHECK(good.has_value());
    odma::address<std::byte*> bad = odma::errc::invalid_lease;
    std::byte* q = bad;
    CHECK(q == nullptr);
    CHECK_FALSE(bad.has_value());
    CHECK(bad.error() == odma::errc::invalid_lease);
}

TEST_CASE("device_error carries the vendor code and message") {
    const odma::device_error e(100100, "cnrtMalloc: out of memory");
    CHECK(e.vendor_code() == 100100);
    CHECK(e.code() == odma::errc::device_error);
    CHECK(std::string(e.what()).find("cnrtMalloc: out of memory") != std::string::npos);
}
