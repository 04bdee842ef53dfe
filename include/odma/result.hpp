// odma/result.hpp - a value or an odma::errc, shaped like C++23 std::expected<T, errc>.
//
// Unlike std::expected, reading the wrong alternative is never undefined behaviour: operator*,
// operator-> and value() on an error throw odma::bad_result_access (a std::system_error carrying
// the code), and error() on a value returns errc{} ("success"). The check is one predictable
// branch; callers on a hot path test `if (r)` first anyway.
#pragma once

#include <odma/errc.hpp>

#include <concepts>
#include <system_error>
#include <type_traits>
#include <utility>

namespace odma {

/// Thrown when a result holding an error is dereferenced.
class bad_result_access : public std::system_error {
public:
    explicit bad_result_access(errc e)
        : std::system_error(make_error_code(e), "odma::result holds an error, not a value") {}
};

/// A value of type T, or the errc saying why there is none.
template <class T>
class [[nodiscard]] result {
    static_assert(!std::is_reference_v<T> && !std::is_same_v<std::remove_cv_t<T>, errc>,
                  "odma::result<T>: T must be an object type other than errc");
    static_assert(std::is_default_constructible_v<T>,
                  "odma::result<T>: T must be default constructible (it is the empty state)");

public:
    using value_type = T;

    result(const T& v) noexcept(std::is_nothrow_copy_constructible_v<T>) : value_(v) {}
    result(T&& v) noexcept(std::is_nothrow_move_constructible_v<T>) : value_(std::move(v)) {}
    /// An error. Passing errc{} (no error) is a logic error and is stored as invariant_violation.
    result(errc e) noexcept : error_(e == errc{} ? errc::invariant_violation : e) {}

    bool has_value() const noexcept { return error_ == errc{}; }
    explicit operator bool() const noexcept { return has_value(); }

    /// The error, or errc{} when the result holds a value.
    errc error() const noexcept { return error_; }

    T& value() & { return checked(); }
    const T& value() const& { return checked(); }
    T&& value() && { return std::move(checked()); }

    T& operator*() & { return checked(); }
    const T& operator*() const& { return checked(); }
    T&& operator*() && { return std::move(checked()); }
    T* operator->() { return &checked(); }
    const T* operator->() const { return &checked(); }

    template <class U>
    T value_or(U&& fallback) const& {
        return has_value() ? value_ : static_cast<T>(std::forward<U>(fallback));
    }

private:
    T& checked() {
        if (!has_value()) throw bad_result_access(error_);
        return value_;
    }
    const T& checked() const {
        if (!has_value()) throw bad_result_access(error_);
        return value_;
    }

    T value_{};
    errc error_{};
};

/// Success without a value, or an errc.
///
/// Not [[nodiscard]]: a failed release() is a caller bug that the allocator already counts in
/// stats().rejected, and the common call site `kv.release(l, n);` should read cleanly.
template <>
class result<void> {
public:
    using value_type = void;

    result() noexcept = default;
    result(errc e) noexcept : error_(e == errc{} ? errc::invariant_violation : e) {}

    bool has_value() const noexcept { return error_ == errc{}; }
    explicit operator bool() const noexcept { return has_value(); }
    errc error() const noexcept { return error_; }

    /// Throws bad_result_access if this holds an error; does nothing otherwise.
    void value() const {
        if (!has_value()) throw bad_result_access(error_);
    }

private:
    errc error_{};
};

/// The base address of a lease's region, or the reason there is none.
///
/// It converts implicitly to the backing's pointer type so the common case reads like a pointer
/// (`std::byte* p = kv.data(l);`); for an invalid lease that pointer is null and error() says
/// why. Use `if (auto p = kv.data(l); p.has_value())` where a null pointer could slip through.
template <class Pointer>
class [[nodiscard]] address {
public:
    using pointer = Pointer;

    address(Pointer p) noexcept : pointer_(p) {}
    address(errc e) noexcept : error_(e == errc{} ? errc::invariant_violation : e) {}

    bool has_value() const noexcept { return error_ == errc{}; }
    errc error() const noexcept { return error_; }

    /// The address; a value-initialised (null) Pointer when has_value() is false.
    Pointer get() const noexcept { return pointer_; }
    operator Pointer() const noexcept { return pointer_; }

private:
    Pointer pointer_{};
    errc error_{};
};

}  // namespace odma
