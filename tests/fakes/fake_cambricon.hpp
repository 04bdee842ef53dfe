// tests/fakes/fake_cambricon.hpp - controls of the fake CNRT / CNDrv library (tests only).
//
// The fake implements the functions declared in tests/fakes/cnrt.h and cn_api.h over host
// memory. It is strict where the real runtime is documented to be strict, so an adapter that
// passes its tests here uses the API the way the documentation says:
//   - cnrtSetDevice leaves the device's context inactive; any other runtime call activates it;
//     cn* memory calls on an inactive context fail with CN_CONTEXT_ERROR_INVALID.
//   - device memory is a budget per device: cnrtMalloc and cnMemCreate fail with
//     cnrtErrorNoMem / CN_MEMORY_ERROR_OUT_OF_MEMORY beyond it.
//   - sizes and addresses of the VMM calls must be multiples of the minimum granularity;
//     cnMemMap needs offset 0 and size == the handle's size, on unmapped reserved space;
//     cnMemSetAccess takes count 1 and only fully mapped ranges; cnMemUnmap unmaps exactly one
//     earlier mapping (no sub-range); cnMemAddressFree needs the reservation to be unmapped.
//   - mapped memory is accessible (host-writable) only after cnMemSetAccess; unmapped memory
//     faults, as on the device.
//   - copies check their direction against where the pointers really are.
// Every call is logged with its arguments, and any call can be made to fail on demand.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace odma_fake {

/// The simulated machine.
struct machine {
    int devices = 2;
    std::size_t memory_per_device = std::size_t(64) << 20;
    std::size_t granularity_minimum = std::size_t(64) << 10;
    std::size_t granularity_recommended = std::size_t(1) << 20;
    bool virtual_memory_supported = true;
};

/// One logged call: the function's name and its arguments as integers (pointers by address,
/// out-parameters after the call).
struct call {
    std::string name;
    std::vector<std::uint64_t> args;
    int result = 0;
};

/// What is alive in the fake now: for leak checks.
struct usage {
    std::size_t device_bytes = 0;   // cnrtMalloc'd + cnMemCreate'd and not yet freed
    std::size_t allocations = 0;    // live cnrtMalloc blocks
    std::size_t handles = 0;        // physical handles not yet freed
    std::size_t mappings = 0;       // live cnMemMap mappings
    std::size_t reservations = 0;   // live cnMemAddressReserve ranges
    std::size_t pending_async = 0;  // async copies not yet synchronized
    std::size_t queues = 0;         // live queues
};

/// Frees everything, clears the log and injected failures, and starts a new machine with
/// device 0 current and its context inactive.
void reset(const machine& m = {});

/// The log since the last reset or clear_log.
const std::vector<call>& log();
void clear_log();
/// The logged calls of one function, in order.
std::vector<call> calls(std::string_view name);
/// The function names of the log, in order.
std::vector<std::string> names();

/// The (skip + 1)-th next call of `function` returns `code` without doing anything, and so do
/// the `times - 1` calls after it.
void fail(std::string_view function, int code, int skip = 0, int times = 1);

usage in_use();
/// Device memory in use on one device.
std::size_t device_bytes(int device);
int current_device();
bool context_active(int device);

}  // namespace odma_fake
