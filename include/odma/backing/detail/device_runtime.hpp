// odma/backing/detail/device_runtime.hpp - what the device backings do the same way on every
// vendor runtime: word a failed call, throw it as odma::device_error, select the backing's
// device around a call, copy device to device on an optional queue.
//
// Vendor-free: each vendor supplies a Runtime binding (cuda_support.hpp: cuda_runtime,
// cnrt_support.hpp: cnrt_runtime), so the CUDA and CNRT backings cannot drift apart in how
// they report errors or restore the caller's device.
#pragma once

#include <odma/errc.hpp>

#include <cstddef>
#include <new>
#include <string>
#include <string_view>

namespace odma::detail {

/// "<who>: <what> failed: [<name>: ]<text> (<code_type> <code>)", the one wording of every
/// device error odma raises, so logs read the same on every vendor. `name` may be null (CNRT
/// and CNDrv have no symbolic error names).
inline std::string failure_message(std::string_view who, std::string_view what, const char* name,
                                   const char* text, std::string_view code_type, long long code) {
    std::string s;
    s.reserve(who.size() + what.size() + 64);
    s.append(who).append(": ").append(what).append(" failed: ");
    if (name) s.append(name).append(": ");
    s.append(text).append(" (").append(code_type).append(" ").append(std::to_string(code));
    s.append(")");
    return s;
}

// A Runtime binding is a struct of static members over one vendor runtime API:
//
//   status, queue_type                      the vendor's error code and stream/queue types
//   success                                 the status of a call that worked
//   message(who, what, status) -> string    failure_message with the vendor's text
//   get_device(int&), set_device(int)       the calling thread's current device
//   malloc(void*&, bytes), free(void*)      one plain device allocation
//   copy(dst, src, bytes)                   synchronous device-to-device copy
//   copy_async(dst, src, bytes, queue)      the same, enqueued on `queue`
//   synchronize(queue)                      wait for `queue`
//   memory_info(size_t& free, size_t& total)
//   *_name                                  the calls' names for messages; device_noun
//
// Every call returns `status` and is noexcept; the helpers below turn a failure into
// device_error where the backing's contract says it throws.

/// Throws odma::device_error carrying the vendor code and text unless `code` is success.
template <class Runtime>
void runtime_check(typename Runtime::status code, std::string_view who, std::string_view what) {
    if (code != Runtime::success)
        throw device_error(static_cast<int>(code), Runtime::message(who, what, code));
}

/// Makes `device` the calling thread's current device for the scope and restores the previous
/// one after, so a backing bound to one device works from a thread that uses another. Costs
/// one get_device when the device is already current.
template <class Runtime>
class device_scope {
public:
    /// Throws device_error when the device cannot be selected.
    device_scope(int device, std::string_view who) {
        runtime_check<Runtime>(Runtime::get_device(previous_), who, Runtime::get_device_name);
        if (previous_ != device) {
            runtime_check<Runtime>(
                Runtime::set_device(device), who,
                std::string(Runtime::set_device_name) + "(" + std::to_string(device) + ")");
            switched_ = true;
        }
    }
    /// For noexcept paths (destructors, commit): `ok()` tells whether the device is current.
    device_scope(int device, std::nothrow_t) noexcept : ok_(false) {
        if (Runtime::get_device(previous_) != Runtime::success) return;
        if (previous_ == device) {
            ok_ = true;
        } else if (Runtime::set_device(device) == Runtime::success) {
            ok_ = switched_ = true;
        }
    }
    ~device_scope() {
        if (switched_) (void)Runtime::set_device(previous_);
    }
    device_scope(const device_scope&) = delete;
    device_scope& operator=(const device_scope&) = delete;

    bool ok() const noexcept { return ok_; }

private:
    int previous_ = 0;
    bool switched_ = false;
    bool ok_ = true;
};

/// The device a backing binds to: `requested` when it is >= 0, else the current device.
template <class Runtime>
int resolve_device(int requested, std::string_view who) {
    if (requested >= 0) return requested;
    int current = 0;
    runtime_check<Runtime>(Runtime::get_device(current), who, Runtime::get_device_name);
    return current;
}

/// Device-to-device copy of `bytes` bytes on the current device: synchronous without a queue;
/// with one, enqueued and waited for only when `wait` (an on-demand backing unmaps the source
/// as soon as copy() returns, a plain arena can leave the copy ordered on the queue). Throws
/// device_error.
template <class Runtime>
void copy_device_to_device(void* dst, void* src, std::size_t bytes,
                           typename Runtime::queue_type queue, bool wait, std::string_view who) {
    if (!queue) {
        runtime_check<Runtime>(Runtime::copy(dst, src, bytes), who, Runtime::copy_name);
        return;
    }
    runtime_check<Runtime>(Runtime::copy_async(dst, src, bytes, queue), who,
                           Runtime::copy_async_name);
    if (wait) runtime_check<Runtime>(Runtime::synchronize(queue), who, Runtime::synchronize_name);
}

}  // namespace odma::detail
