// odma/errc.hpp - the error codes every fallible odma call reports.
//
// odma never signals a runtime condition (full arena, bad handle, bad request) with undefined
// behaviour or an exception on the hot path: it returns one of these codes inside an
// odma::result. Exceptions are kept for construction-time mistakes (odma::config_error) and for
// device runtimes that fail in ways the allocator cannot recover from (odma::device_error).
//
// errc plugs into <system_error>, so `std::error_code ec = odma::errc::no_memory;` works and
// prints a readable message.
#pragma once

#include <string>
#include <string_view>
#include <system_error>

namespace odma {

/// Why an odma operation failed. The value 0 is reserved for "no error", as in std::errc.
enum class errc : int {
    /// The request can never be served: zero tokens, a prompt that leaves no room to generate
    /// (prompt_tokens >= config::max_tokens), or a size larger than the arena.
    invalid_request = 1,
    /// Not enough contiguous free memory right now. The caller may wait, preempt or retry.
    no_memory,
    /// The lease is empty, moved-from, already released, or belongs to another allocator.
    invalid_lease,
    /// allocator::check() found corrupted bookkeeping (overlap, lost bytes, broken links).
    invariant_violation,
    /// A device runtime (CNRT, CUDA, ...) reported an error; the exception text has its message.
    device_error,
    /// A file could not be opened, read or written.
    io_error,
    /// A file was read but is not what it claims to be: wrong magic, version, size or checksum.
    bad_format,
};

/// Short, stable, human-readable name of a code ("no_memory", ...). Never returns null.
constexpr std::string_view to_string(errc e) noexcept {
    if (e == errc{}) return "success";
    switch (e) {
        case errc::invalid_request:
            return "invalid_request";
        case errc::no_memory:
            return "no_memory";
        case errc::invalid_lease:
            return "invalid_lease";
        case errc::invariant_violation:
            return "invariant_violation";
        case errc::device_error:
            return "device_error";
        case errc::io_error:
            return "io_error";
        case errc::bad_format:
            return "bad_format";
    }
    return "unknown odma error";
}

/// The std::error_category of odma::errc.
inline const std::error_category& error_category() noexcept {
    struct category final : std::error_category {
        const char* name() const noexcept override { return "odma"; }
        std::string message(int value) const override {
            return std::string(to_string(static_cast<errc>(value)));
        }
    };
    static const category instance;
    return instance;
}

/// Found by argument-dependent lookup when an errc converts to std::error_code.
inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

/// Thrown by device backings when the vendor runtime fails in a way no errc return can carry
/// (for example a failed copy in the middle of a migration). what() holds the runtime's own
/// message; vendor_code() its numeric error code.
class device_error : public std::system_error {
public:
    device_error(int vendor_code, const std::string& what)
        : std::system_error(make_error_code(errc::device_error), what), vendor_code_(vendor_code) {}

    /// The vendor runtime's error code (cnrtRet_t, cudaError_t, CUresult, ...).
    int vendor_code() const noexcept { return vendor_code_; }

private:
    int vendor_code_;
};

}  // namespace odma

template <>
struct std::is_error_code_enum<odma::errc> : std::true_type {};
