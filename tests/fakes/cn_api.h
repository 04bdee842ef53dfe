/* tests/fakes/cn_api.h - a test-only stand-in for Cambricon's CNDrv header (cn_api.h).
 *
 * Written for odma's tests from the public CNDrv documentation: the virtual memory management
 * subset odma's cndrv_vmm adapter uses, with the real names, values, struct members and argument
 * orders, so the adapter compiles unchanged against either. Defined in fake_cambricon.cpp.
 * Never install this file.
 */
#ifndef ODMA_TESTS_FAKE_CN_API_H
#define ODMA_TESTS_FAKE_CN_API_H

#include <stdint.h>
#include <stdlib.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint64_t cn_uint64_t;
typedef int64_t cn_int64_t;
typedef uint32_t cn_uint32_t;

typedef enum {
    CN_SUCCESS = 0,
    CN_ERROR_NOT_INITIALIZED = 100002,
    CN_ERROR_NO_DEVICE = 100004,
    CN_ERROR_INVALID_DEVICE = 100005,
    CN_ERROR_INVALID_VALUE = 100006,
    CN_OPS_ERROR_NOT_SUPPORTED = 100050,
    CN_OPS_ERROR_NOT_PERMITTED = 100051,
    CN_MEMORY_ERROR_OUT_OF_MEMORY = 100100,
    CN_MEMORY_ERROR_INVALID_ADDRESS = 100102,
    CN_CONTEXT_ERROR_INVALID = 100201
} CNresult;

typedef cn_uint64_t CNaddr;
typedef cn_uint64_t CNdev;
typedef cn_uint64_t CNmemGenericAllocationHandle;

typedef enum {
    CN_DEVICE_ATTRIBUTE_VIRTUAL_ADDRESS_MANAGEMENT_SUPPORTED = 0x30B
} CNdevice_attribute;

typedef enum cn_memory_access_flags {
    CN_MEM_ACCESS_FLAGS_PROT_READWRITE = 0x0,
    CN_MEM_ACCESS_FLAGS_PROT_READONLY = 0x1
} CNMemoryAccessFlags;

typedef enum cn_caching_type {
    CN_MEM_NON_CACHEABLE = 0x0,
    CN_MEM_CACHEABLE_READONLY = 0x1,
    CN_MEM_CACHEABLE_WRITEONLY = 0x2,
    CN_MEM_CACHEABLE_READWRITE = 0x3
} CNMemoryCachingType;

typedef enum cn_caching_pinned {
    CN_MEM_CACHE_NON_PINNED = 0x0,
    CN_MEM_CACHE_PINNED = 0x1
} CNMemoryCachePinnedType;

typedef enum cn_mem_location_type {
    CN_MEM_LOCATION_TYPE_INVALID = 0x0,
    CN_MEM_LOCATION_TYPE_DEVICE = 0x1
} CNmemLocationType;

typedef enum cn_mem_allocation_type {
    CN_MEM_ALLOCATION_TYPE_INVALID = 0x0,
    CN_MEM_ALLOCATION_TYPE_DEFAULT = 0x1
} CNmemAllocationType;

typedef enum cn_mem_allocation_granularity {
    CN_MEM_ALLOC_GRANULARITY_MINIMUM = 0x0,
    CN_MEM_ALLOC_GRANULARITY_RECOMMENDED = 0x1
} CNmemAllocationGranularity;

typedef enum cn_mem_allocation_handle_type {
    CN_MEM_HANDLE_TYPE_NONE = 0x0,
    CN_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR = 0x1
} CNmemAllocationHandleType;

typedef struct cn_mem_location {
    CNmemLocationType type;
    cn_uint32_t id;
} CNmemLocation;

typedef struct cn_mem_access_desc {
    CNmemLocation location;
    CNMemoryAccessFlags accessFlags;
    CNMemoryCachingType cacheType;
    CNMemoryCachePinnedType pinnedType;
} CNmemAccessDesc;

typedef struct cn_mem_allocation_prop {
    CNmemAllocationType type;
    CNmemAllocationHandleType requestedHandleTypes;
    CNmemLocation location;
    struct {
        unsigned char compressionType;
        unsigned char securityType;
    } allocFlags;
} CNmemAllocationProp;

CNresult cnGetErrorString(CNresult error, const char** pStr);
CNresult cnDeviceGet(CNdev* pdev, int ordinal);
CNresult cnDeviceGetAttribute(int* pi, CNdevice_attribute attrib, CNdev dev);

CNresult cnMemGetAllocationGranularity(cn_uint64_t* granularity, CNmemAllocationProp* prop,
                                       CNmemAllocationGranularity options);
CNresult cnMemAddressReserve(CNaddr* pmluAddr, cn_uint64_t size, cn_uint64_t alignment,
                             CNaddr start, cn_uint64_t flags);
CNresult cnMemAddressFree(CNaddr mluAddr, cn_uint64_t size);
CNresult cnMemCreate(CNmemGenericAllocationHandle* phandle, cn_uint64_t size,
                     CNmemAllocationProp* prop, cn_uint64_t flags);
CNresult cnMemRelease(CNmemGenericAllocationHandle handle);
CNresult cnMemMap(CNaddr mluAddr, cn_uint64_t size, cn_uint64_t offset,
                  CNmemGenericAllocationHandle handle, cn_uint64_t flags);
CNresult cnMemSetAccess(CNaddr mluAddr, cn_uint64_t size, CNmemAccessDesc* desc, cn_uint64_t count);
CNresult cnMemUnmap(CNaddr mluAddr, cn_uint64_t size);

#ifdef __cplusplus
}
#endif

#endif /* ODMA_TESTS_FAKE_CN_API_H */
