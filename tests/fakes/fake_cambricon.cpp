// tests/fakes/fake_cambricon.cpp - CNRT / CNDrv functions over host memory, for tests only.
// See fake_cambricon.hpp for the rules it enforces.
#include "fake_cambricon.hpp"

#include <cn_api.h>
#include <cnrt.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <map>
#include <type_traits>

namespace {

struct allocation {
    std::size_t size;
    int device;
};
struct physical {
    std::size_t size;
    int device;
    int mappings = 0;
    bool released = false;
};
struct reservation {
    std::size_t size;
};
struct mapping {
    std::size_t size;
    CNmemGenericAllocationHandle handle;
    bool accessible = false;
};
struct injection {
    std::string function;
    int code;
    int skip;
    int times;
};

struct fake_state {
    odma_fake::machine machine;
    int current = 0;
    std::vector<bool> active;
    std::vector<std::size_t> used;
    std::map<std::uintptr_t, allocation> allocations;
    std::map<CNmemGenericAllocationHandle, physical> handles;
    CNmemGenericAllocationHandle next_handle = 0x100;
    std::map<std::uintptr_t, reservation> reservations;
    std::map<std::uintptr_t, mapping> mappings;
    std::map<std::uintptr_t, std::size_t> queues;  // queue -> pending async copies
    std::size_t pending_default = 0;
    std::uintptr_t next_queue = 0x7000;
    std::vector<odma_fake::call> log;
    std::vector<injection> injections;
};

fake_state& state() {
    static fake_state s = [] {
        fake_state init;
        init.active.assign(std::size_t(init.machine.devices), false);
        init.used.assign(std::size_t(init.machine.devices), 0);
        return init;
    }();
    return s;
}

// CNdev handles are not ordinals in the fake, so an adapter that mixes them up fails.
constexpr CNdev device_handle_base = 0xD000;

template <class T>
std::uint64_t arg(T v) {
    if constexpr (std::is_pointer_v<T>)
        return reinterpret_cast<std::uintptr_t>(v);
    else
        return static_cast<std::uint64_t>(v);
}

// Logs the call; returns an injected failure code, or 0.
int enter(const char* name, std::initializer_list<std::uint64_t> args) {
    auto& s = state();
    s.log.push_back({name, args, 0});
    for (auto it = s.injections.begin(); it != s.injections.end(); ++it) {
        if (it->function != name) continue;
        if (it->skip > 0) {
            --it->skip;
            continue;
        }
        const int code = it->code;
        if (--it->times == 0) s.injections.erase(it);
        s.log.back().result = code;
        return code;
    }
    return 0;
}
template <class R>
R done(R code) {
    state().log.back().result = static_cast<int>(code);
    return code;
}

bool is_allocated(const void* p, std::size_t bytes) {
    const auto& s = state();
    const auto addr = reinterpret_cast<std::uintptr_t>(p);
    auto it = s.allocations.upper_bound(addr);
    if (it == s.allocations.begin()) return false;
    --it;
    return addr + bytes <= it->first + it->second.size;
}

// [addr, addr + bytes) lies in accessible mappings, one after another without gaps.
bool is_mapped_accessible(std::uintptr_t addr, std::size_t bytes) {
    const auto& s = state();
    while (bytes > 0) {
        auto it = s.mappings.upper_bound(addr);
        if (it == s.mappings.begin()) return false;
        --it;
        const std::uintptr_t end = it->first + it->second.size;
        if (addr >= end || !it->second.accessible) return false;
        const std::size_t here = std::min<std::size_t>(bytes, end - addr);
        addr += here;
        bytes -= here;
    }
    return true;
}

bool is_device(const void* p, std::size_t bytes) {
    return is_allocated(p, bytes) ||
           is_mapped_accessible(reinterpret_cast<std::uintptr_t>(p), bytes);
}

bool context_ok() {
    return state().active[std::size_t(state().current)];
}
// Any runtime call but device selection activates the current device's context.
void touch_runtime() {
    state().active[std::size_t(state().current)] = true;
}

bool valid_prop(const CNmemAllocationProp* prop) {
    return prop && prop->type == CN_MEM_ALLOCATION_TYPE_DEFAULT &&
           prop->location.type == CN_MEM_LOCATION_TYPE_DEVICE &&
           prop->location.id < std::uint32_t(state().machine.devices);
}

bool granular(std::uint64_t v) {
    return v % state().machine.granularity_minimum == 0;
}

void free_physical(std::map<CNmemGenericAllocationHandle, physical>::iterator it) {
    state().used[std::size_t(it->second.device)] -= it->second.size;
    state().handles.erase(it);
}

cnrtRet_t copy_checked(void* dst, void* src, std::size_t bytes, cnrtMemTransDir_t dir) {
    if (!dst || !src) return cnrtErrorArgsInvalid;
    bool ok = false;
    switch (dir) {
        case cnrtMemcpyDevToDev:
        case cnrtMemcpyPeerToPeer:
            ok = is_device(dst, bytes) && is_device(src, bytes);
            break;
        case cnrtMemcpyHostToDev:
            ok = is_device(dst, bytes) && !is_device(src, 1);
            break;
        case cnrtMemcpyDevToHost:
            ok = !is_device(dst, 1) && is_device(src, bytes);
            break;
        case cnrtMemcpyHostToHost:
            ok = !is_device(dst, 1) && !is_device(src, 1);
            break;
        case cnrtMemcpyNoDirection:
            ok = true;
            break;
        default:
            return cnrtErrorMemcpyDirectionInvalid;
    }
    if (!ok) return cnrtErrorArgsInvalid;
    if (bytes) std::memmove(dst, src, bytes);
    return cnrtSuccess;
}

}  // namespace

// --- control ---------------------------------------------------------------------------------

namespace odma_fake {

void reset(const machine& m) {
    auto& s = state();
    for (auto& [addr, a] : s.allocations)
        ::munmap(reinterpret_cast<void*>(addr), a.size);
    for (auto& [addr, r] : s.reservations)
        ::munmap(reinterpret_cast<void*>(addr), r.size);
    s = fake_state{};
    s.machine = m;
    s.active.assign(std::size_t(m.devices), false);
    s.used.assign(std::size_t(m.devices), 0);
}

const std::vector<call>& log() {
    return state().log;
}
void clear_log() {
    state().log.clear();
}

std::vector<call> calls(std::string_view name) {
    std::vector<call> out;
    std::copy_if(state().log.begin(), state().log.end(), std::back_inserter(out),
                 [&](const call& c) { return c.name == name; });
    return out;
}

std::vector<std::string> names() {
    std::vector<std::string> out;
    for (const auto& c : state().log)
        out.push_back(c.name);
    return out;
}

void fail(std::string_view function, int code, int skip, int times) {
    state().injections.push_back({std::string(function), code, skip, times});
}

usage in_use() {
    const auto& s = state();
    usage u;
    for (auto b : s.used)
        u.device_bytes += b;
    u.allocations = s.allocations.size();
    u.handles = s.handles.size();
    u.mappings = s.mappings.size();
    u.reservations = s.reservations.size();
    u.pending_async = s.pending_default;
    for (auto& [q, pending] : s.queues)
        u.pending_async += pending;
    u.queues = s.queues.size();
    return u;
}

std::size_t device_bytes(int device) {
    return state().used.at(std::size_t(device));
}
int current_device() {
    return state().current;
}
bool context_active(int device) {
    return state().active.at(std::size_t(device));
}

}  // namespace odma_fake

// --- CNRT ------------------------------------------------------------------------------------

extern "C" {

const char* cnrtGetErrorStr(cnrtRet_t error) {
    switch (error) {
        case cnrtSuccess:
            return "fake CNRT: success";
        case cnrtErrorNoMem:
            return "fake CNRT: insufficient MLU device memory";
        case cnrtErrorArgsInvalid:
            return "fake CNRT: invalid argument";
        case cnrtErrorDeviceInvalid:
            return "fake CNRT: invalid device ordinal";
        case cnrtErrorNoDevice:
            return "fake CNRT: no MLU device";
        case cnrtErrorQueue:
            return "fake CNRT: queue failure";
        case cnrtErrorMemcpyDirectionInvalid:
            return "fake CNRT: invalid copy direction";
        case cnrtErrorNoCnrtContext:
            return "fake CNRT: no context";
        default:
            return "fake CNRT: unknown error";
    }
}

cnrtRet_t cnrtGetDeviceCount(unsigned int* count) {
    if (int e = enter("cnrtGetDeviceCount", {arg(count)})) return cnrtRet_t(e);
    if (!count) return done(cnrtErrorArgsInvalid);
    *count = unsigned(state().machine.devices);
    return done(cnrtSuccess);
}

cnrtRet_t cnrtSetDevice(int device) {
    if (int e = enter("cnrtSetDevice", {arg(device)})) return cnrtRet_t(e);
    if (device < 0 || device >= state().machine.devices) return done(cnrtErrorDeviceInvalid);
    state().current = device;  // the context stays inactive until the runtime is used
    return done(cnrtSuccess);
}

cnrtRet_t cnrtGetDevice(int* device) {
    if (int e = enter("cnrtGetDevice", {arg(device)})) return cnrtRet_t(e);
    if (!device) return done(cnrtErrorArgsInvalid);
    *device = state().current;
    return done(cnrtSuccess);
}

cnrtRet_t cnrtMalloc(void** ptr, size_t bytes) {
    if (int e = enter("cnrtMalloc", {arg(ptr), arg(bytes)})) return cnrtRet_t(e);
    touch_runtime();
    auto& s = state();
    if (!ptr || bytes == 0) return done(cnrtErrorArgsInvalid);
    const auto dev = std::size_t(s.current);
    if (bytes > s.machine.memory_per_device - s.used[dev]) return done(cnrtErrorNoMem);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return done(cnrtErrorSysNoMem);
    s.allocations[reinterpret_cast<std::uintptr_t>(p)] = {bytes, s.current};
    s.used[dev] += bytes;
    *ptr = p;
    s.log.back().args.push_back(arg(p));
    return done(cnrtSuccess);
}

cnrtRet_t cnrtFree(void* ptr) {
    if (int e = enter("cnrtFree", {arg(ptr)})) return cnrtRet_t(e);
    touch_runtime();
    if (!ptr) return done(cnrtSuccess);  // the usual way to initialise the context
    auto& s = state();
    auto it = s.allocations.find(reinterpret_cast<std::uintptr_t>(ptr));
    if (it == s.allocations.end()) return done(cnrtErrorArgsInvalid);
    ::munmap(ptr, it->second.size);
    s.used[std::size_t(it->second.device)] -= it->second.size;
    s.allocations.erase(it);
    return done(cnrtSuccess);
}

cnrtRet_t cnrtMemGetInfo(size_t* free, size_t* total) {
    if (int e = enter("cnrtMemGetInfo", {arg(free), arg(total)})) return cnrtRet_t(e);
    touch_runtime();
    auto& s = state();
    if (!free || !total) return done(cnrtErrorArgsInvalid);
    *total = s.machine.memory_per_device;
    *free = s.machine.memory_per_device - s.used[std::size_t(s.current)];
    return done(cnrtSuccess);
}

cnrtRet_t cnrtMemset(void* ptr, int value, size_t bytes) {
    if (int e = enter("cnrtMemset", {arg(ptr), arg(value), arg(bytes)})) return cnrtRet_t(e);
    touch_runtime();
    if (!ptr || !is_device(ptr, bytes)) return done(cnrtErrorArgsInvalid);
    std::memset(ptr, value, bytes);
    return done(cnrtSuccess);
}

cnrtRet_t cnrtMemcpy(void* dst, void* src, size_t bytes, cnrtMemTransDir_t dir) {
    if (int e = enter("cnrtMemcpy", {arg(dst), arg(src), arg(bytes), arg(dir)}))
        return cnrtRet_t(e);
    touch_runtime();
    return done(copy_checked(dst, src, bytes, dir));
}

cnrtRet_t cnrtMemcpyAsync(void* dst, void* src, size_t bytes, cnrtQueue_t queue,
                          cnrtMemTransDir_t dir) {
    if (int e = enter("cnrtMemcpyAsync", {arg(dst), arg(src), arg(bytes), arg(queue), arg(dir)}))
        return cnrtRet_t(e);
    touch_runtime();
    auto& s = state();
    std::size_t* pending = &s.pending_default;
    if (queue) {
        auto it = s.queues.find(reinterpret_cast<std::uintptr_t>(queue));
        if (it == s.queues.end()) return done(cnrtErrorQueue);
        pending = &it->second;
    }
    const cnrtRet_t r = copy_checked(dst, src, bytes, dir);
    if (r == cnrtSuccess) ++*pending;  // done at once, but "in flight" until a sync
    return done(r);
}

cnrtRet_t cnrtQueueCreate(cnrtQueue_t* queue) {
    if (int e = enter("cnrtQueueCreate", {arg(queue)})) return cnrtRet_t(e);
    touch_runtime();
    if (!queue) return done(cnrtErrorArgsInvalid);
    auto& s = state();
    const std::uintptr_t q = s.next_queue += 0x10;
    s.queues[q] = 0;
    *queue = reinterpret_cast<cnrtQueue_t>(q);
    return done(cnrtSuccess);
}

cnrtRet_t cnrtQueueSync(cnrtQueue_t queue) {
    if (int e = enter("cnrtQueueSync", {arg(queue)})) return cnrtRet_t(e);
    auto& s = state();
    if (!queue) {
        s.pending_default = 0;
        return done(cnrtSuccess);
    }
    auto it = s.queues.find(reinterpret_cast<std::uintptr_t>(queue));
    if (it == s.queues.end()) return done(cnrtErrorQueue);
    it->second = 0;
    return done(cnrtSuccess);
}

cnrtRet_t cnrtQueueDestroy(cnrtQueue_t queue) {
    if (int e = enter("cnrtQueueDestroy", {arg(queue)})) return cnrtRet_t(e);
    if (state().queues.erase(reinterpret_cast<std::uintptr_t>(queue)) == 0)
        return done(cnrtErrorQueue);
    return done(cnrtSuccess);
}

// --- CNDrv -----------------------------------------------------------------------------------

CNresult cnGetErrorString(CNresult error, const char** pStr) {
    if (!pStr) return CN_ERROR_INVALID_VALUE;
    switch (error) {
        case CN_SUCCESS:
            *pStr = "fake CNDrv: success";
            break;
        case CN_MEMORY_ERROR_OUT_OF_MEMORY:
            *pStr = "fake CNDrv: out of MLU memory";
            break;
        case CN_ERROR_INVALID_VALUE:
            *pStr = "fake CNDrv: invalid value";
            break;
        case CN_OPS_ERROR_NOT_SUPPORTED:
            *pStr = "fake CNDrv: operation not supported";
            break;
        case CN_CONTEXT_ERROR_INVALID:
            *pStr = "fake CNDrv: no current context";
            break;
        case CN_MEMORY_ERROR_INVALID_ADDRESS:
            *pStr = "fake CNDrv: invalid MLU address";
            break;
        default:
            *pStr = "fake CNDrv: unknown error";
    }
    return CN_SUCCESS;
}

CNresult cnDeviceGet(CNdev* pdev, int ordinal) {
    if (int e = enter("cnDeviceGet", {arg(pdev), arg(ordinal)})) return CNresult(e);
    if (!pdev) return done(CN_ERROR_INVALID_VALUE);
    if (ordinal < 0 || ordinal >= state().machine.devices) return done(CN_ERROR_INVALID_DEVICE);
    *pdev = device_handle_base + CNdev(ordinal);
    return done(CN_SUCCESS);
}

CNresult cnDeviceGetAttribute(int* pi, CNdevice_attribute attrib, CNdev dev) {
    if (int e = enter("cnDeviceGetAttribute", {arg(pi), arg(attrib), arg(dev)})) return CNresult(e);
    if (!pi) return done(CN_ERROR_INVALID_VALUE);
    if (dev < device_handle_base || dev >= device_handle_base + CNdev(state().machine.devices))
        return done(CN_ERROR_INVALID_DEVICE);
    if (attrib != CN_DEVICE_ATTRIBUTE_VIRTUAL_ADDRESS_MANAGEMENT_SUPPORTED)
        return done(CN_ERROR_INVALID_VALUE);
    *pi = state().machine.virtual_memory_supported ? 1 : 0;
    return done(CN_SUCCESS);
}

CNresult cnMemGetAllocationGranularity(cn_uint64_t* granularity, CNmemAllocationProp* prop,
                                       CNmemAllocationGranularity options) {
    if (int e = enter("cnMemGetAllocationGranularity", {arg(granularity), arg(prop), arg(options)}))
        return CNresult(e);
    auto& s = state();
    if (!context_ok()) return done(CN_CONTEXT_ERROR_INVALID);
    if (!s.machine.virtual_memory_supported) return done(CN_OPS_ERROR_NOT_SUPPORTED);
    if (!granularity || !valid_prop(prop)) return done(CN_ERROR_INVALID_VALUE);
    if (options == CN_MEM_ALLOC_GRANULARITY_MINIMUM)
        *granularity = s.machine.granularity_minimum;
    else if (options == CN_MEM_ALLOC_GRANULARITY_RECOMMENDED)
        *granularity = s.machine.granularity_recommended;
    else
        return done(CN_ERROR_INVALID_VALUE);
    return done(CN_SUCCESS);
}

CNresult cnMemAddressReserve(CNaddr* pmluAddr, cn_uint64_t size, cn_uint64_t alignment,
                             CNaddr start, cn_uint64_t flags) {
    if (int e = enter("cnMemAddressReserve",
                      {arg(pmluAddr), arg(size), arg(alignment), arg(start), arg(flags)}))
        return CNresult(e);
    auto& s = state();
    if (!context_ok()) return done(CN_CONTEXT_ERROR_INVALID);
    if (!s.machine.virtual_memory_supported) return done(CN_OPS_ERROR_NOT_SUPPORTED);
    if (!pmluAddr || size == 0 || !granular(size) || flags != 0 || start != 0 ||
        (alignment != 0 && !granular(alignment)))
        return done(CN_ERROR_INVALID_VALUE);
    // Over-reserve so the range can start on a granule boundary, then trim.
    const std::size_t g = s.machine.granularity_minimum;
    void* p =
        ::mmap(nullptr, size + g, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return done(CN_MEMORY_ERROR_OUT_OF_MEMORY);
    const auto raw = reinterpret_cast<std::uintptr_t>(p);
    const std::uintptr_t base = (raw + g - 1) / g * g;
    if (base > raw) ::munmap(p, base - raw);
    if (raw + g > base) ::munmap(reinterpret_cast<void*>(base + size), raw + g - base);
    s.reservations[base] = {size};
    *pmluAddr = base;
    s.log.back().args.push_back(base);
    return done(CN_SUCCESS);
}

CNresult cnMemAddressFree(CNaddr mluAddr, cn_uint64_t size) {
    if (int e = enter("cnMemAddressFree", {arg(mluAddr), arg(size)})) return CNresult(e);
    auto& s = state();
    if (!context_ok()) return done(CN_CONTEXT_ERROR_INVALID);
    auto it = s.reservations.find(mluAddr);
    if (it == s.reservations.end() || it->second.size != size)
        return done(CN_MEMORY_ERROR_INVALID_ADDRESS);
    auto m = s.mappings.lower_bound(mluAddr);
    if (m != s.mappings.end() && m->first < mluAddr + size)
        return done(CN_ERROR_INVALID_VALUE);  // still mapped inside
    ::munmap(reinterpret_cast<void*>(mluAddr), size);
    s.reservations.erase(it);
    return done(CN_SUCCESS);
}

CNresult cnMemCreate(CNmemGenericAllocationHandle* phandle, cn_uint64_t size,
                     CNmemAllocationProp* prop, cn_uint64_t flags) {
    if (int e = enter("cnMemCreate", {arg(phandle), arg(size), arg(prop), arg(flags)}))
        return CNresult(e);
    auto& s = state();
    if (!context_ok()) return done(CN_CONTEXT_ERROR_INVALID);
    if (!phandle || size == 0 || !granular(size) || flags != 0 || !valid_prop(prop))
        return done(CN_ERROR_INVALID_VALUE);
    const auto dev = std::size_t(prop->location.id);
    if (size > s.machine.memory_per_device - s.used[dev])
        return done(CN_MEMORY_ERROR_OUT_OF_MEMORY);
    s.used[dev] += size;
    const auto h = s.next_handle++;
    s.handles[h] = {size, int(dev)};
    *phandle = h;
    s.log.back().args.push_back(h);
    return done(CN_SUCCESS);
}

CNresult cnMemRelease(CNmemGenericAllocationHandle handle) {
    if (int e = enter("cnMemRelease", {arg(handle)})) return CNresult(e);
    auto& s = state();
    auto it = s.handles.find(handle);
    if (it == s.handles.end() || it->second.released) return done(CN_ERROR_INVALID_VALUE);
    it->second.released = true;
    if (it->second.mappings == 0) free_physical(it);  // else freed at the last unmap
    return done(CN_SUCCESS);
}

CNresult cnMemMap(CNaddr mluAddr, cn_uint64_t size, cn_uint64_t offset,
                  CNmemGenericAllocationHandle handle, cn_uint64_t flags) {
    if (int e = enter("cnMemMap", {arg(mluAddr), arg(size), arg(offset), arg(handle), arg(flags)}))
        return CNresult(e);
    auto& s = state();
    if (!context_ok()) return done(CN_CONTEXT_ERROR_INVALID);
    auto h = s.handles.find(handle);
    if (h == s.handles.end() || h->second.released || offset != 0 || flags != 0 ||
        size != h->second.size || !granular(mluAddr))
        return done(CN_ERROR_INVALID_VALUE);
    // Inside one reservation, over no existing mapping.
    auto r = s.reservations.upper_bound(mluAddr);
    if (r == s.reservations.begin()) return done(CN_MEMORY_ERROR_INVALID_ADDRESS);
    --r;
    if (mluAddr + size > r->first + r->second.size) return done(CN_MEMORY_ERROR_INVALID_ADDRESS);
    auto next = s.mappings.lower_bound(mluAddr);
    if (next != s.mappings.end() && next->first < mluAddr + size)
        return done(CN_ERROR_INVALID_VALUE);
    if (next != s.mappings.begin()) {
        auto prev = std::prev(next);
        if (prev->first + prev->second.size > mluAddr) return done(CN_ERROR_INVALID_VALUE);
    }
    s.mappings[mluAddr] = {size, handle, false};
    ++h->second.mappings;
    return done(CN_SUCCESS);
}

CNresult cnMemSetAccess(CNaddr mluAddr, cn_uint64_t size, CNmemAccessDesc* desc,
                        cn_uint64_t count) {
    if (int e = enter("cnMemSetAccess", {arg(mluAddr), arg(size), arg(desc), arg(count)}))
        return CNresult(e);
    auto& s = state();
    if (!desc || count != 1 || desc->location.type != CN_MEM_LOCATION_TYPE_DEVICE ||
        desc->location.id >= std::uint32_t(s.machine.devices) ||
        (desc->accessFlags != CN_MEM_ACCESS_FLAGS_PROT_READWRITE &&
         desc->accessFlags != CN_MEM_ACCESS_FLAGS_PROT_READONLY))
        return done(CN_ERROR_INVALID_VALUE);
    // The range must be made of whole mappings, without gaps.
    std::vector<std::map<std::uintptr_t, mapping>::iterator> covered;
    for (std::uintptr_t a = mluAddr; a < mluAddr + size;) {
        auto m = s.mappings.find(a);
        if (m == s.mappings.end()) return done(CN_MEMORY_ERROR_INVALID_ADDRESS);
        covered.push_back(m);
        a += m->second.size;
        if (a > mluAddr + size) return done(CN_ERROR_INVALID_VALUE);
    }
    if (covered.empty()) return done(CN_ERROR_INVALID_VALUE);
    const int prot = desc->accessFlags == CN_MEM_ACCESS_FLAGS_PROT_READWRITE
                         ? PROT_READ | PROT_WRITE
                         : PROT_READ;
    ::mprotect(reinterpret_cast<void*>(mluAddr), size, prot);
    for (auto m : covered)
        m->second.accessible = true;
    return done(CN_SUCCESS);
}

CNresult cnMemUnmap(CNaddr mluAddr, cn_uint64_t size) {
    if (int e = enter("cnMemUnmap", {arg(mluAddr), arg(size)})) return CNresult(e);
    auto& s = state();
    if (!context_ok()) return done(CN_CONTEXT_ERROR_INVALID);
    auto m = s.mappings.find(mluAddr);
    if (m == s.mappings.end() || m->second.size != size)  // no sub-ranges, no several at once
        return done(CN_ERROR_INVALID_VALUE);
    void* p = reinterpret_cast<void*>(mluAddr);
    ::madvise(p, size, MADV_DONTNEED);  // the physical pages are gone, as on the device
    ::mprotect(p, size, PROT_NONE);
    auto h = s.handles.find(m->second.handle);
    s.mappings.erase(m);
    if (--h->second.mappings == 0 && h->second.released) free_physical(h);
    return done(CN_SUCCESS);
}

}  // extern "C"
