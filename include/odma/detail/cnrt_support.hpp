// odma/detail/cnrt_support.hpp - CNRT error text and device selection shared by the Cambricon
// backings (backing/cnrt.hpp, backing/cndrv_vmm.hpp). Compiles to nothing without <cnrt.h>.
#pragma once

#if __has_include(<cnrt.h>)

#include <cnrt.h>

#include <odma/errc.hpp>

#include <new>
#include <string>
#include <string_view>

namespace odma::detail {

/// "<who>: <what> failed: <cnrtGetErrorStr text> (cnrtRet_t <code>)".
inline std::string cnrt_message(std::string_view who, std::string_view what, cnrtRet_t code) {
    const char* text = cnrtGetErrorStr(code);
    return std::string(who) + ": " + std::string(what) +
           " failed: " + (text ? text : "unknown CNRT error") + " (cnrtRet_t " +
           std::to_string(static_cast<long long>(code)) + ")";
}

/// Throws odma::device_error carrying the CNRT code and text when `code` is not cnrtSuccess.
inline void cnrt_check(cnrtRet_t code, std::string_view who, std::string_view what) {
    if (code != cnrtSuccess)
        throw device_error(static_cast<int>(code), cnrt_message(who, what, code));
}

/// Makes `device` the calling thread's current MLU for the scope and restores the previous one
/// after, so a backing bound to one device works from a thread that uses another. Costs one
/// cnrtGetDevice when the device is already current.
class cnrt_device_scope {
public:
    /// Throws device_error when the device cannot be selected.
    cnrt_device_scope(int device, std::string_view who) {
        cnrt_check(cnrtGetDevice(&previous_), who, "cnrtGetDevice");
        if (previous_ != device) {
            cnrt_check(cnrtSetDevice(device), who, "cnrtSetDevice(" + std::to_string(device) + ")");
            switched_ = true;
        }
    }
    /// For noexcept paths: `ok()` tells whether the device is current.
    cnrt_device_scope(int device, std::nothrow_t) noexcept : ok_(false) {
        if (cnrtGetDevice(&previous_) != cnrtSuccess) return;
        if (previous_ == device) {
            ok_ = true;
        } else if (cnrtSetDevice(device) == cnrtSuccess) {
            ok_ = switched_ = true;
        }
    }
    ~cnrt_device_scope() {
        if (switched_) (void)cnrtSetDevice(previous_);
    }
    cnrt_device_scope(const cnrt_device_scope&) = delete;
    cnrt_device_scope& operator=(const cnrt_device_scope&) = delete;

    bool ok() const noexcept { return ok_; }

private:
    int previous_ = 0;
    bool switched_ = false;
    bool ok_ = true;
};

/// The device a backing binds to: `requested` when it is >= 0, else the current device.
inline int cnrt_resolve_device(int requested, std::string_view who) {
    if (requested >= 0) return requested;
    int current = 0;
    cnrt_check(cnrtGetDevice(&current), who, "cnrtGetDevice");
    return current;
}

}  // namespace odma::detail

#endif  // __has_include(<cnrt.h>)
