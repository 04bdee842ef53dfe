/* tests/fakes/cnrt.h - a test-only stand-in for Cambricon's CNRT 6.x header.
 *
 * Written for odma's tests from the public CNRT documentation: it declares only what odma's
 * adapters and tests use, with the same names, values, argument orders and C linkage as the
 * real header, so the adapters compile unchanged against either. The functions are defined in
 * fake_cambricon.cpp over host memory (no device, no driver). Never install this file.
 */
#ifndef ODMA_TESTS_FAKE_CNRT_H
#define ODMA_TESTS_FAKE_CNRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CNRT_MAJOR_VERSION 6
#define CNRT_MINOR_VERSION 0
#define CNRT_PATCH_VERSION 0
#define CNRT_VERSION (CNRT_MAJOR_VERSION * 10000 + CNRT_MINOR_VERSION * 100 + CNRT_PATCH_VERSION)

/* Marks the fake, for tests that must know (never for the adapters). */
#define ODMA_FAKE_CAMBRICON 1

typedef enum {
    cnrtSuccess = 0,
    cnrtErrorNotReady = 1,
    cnrtErrorInit = 100002,
    cnrtErrorNoDevice = 100004,
    cnrtErrorDeviceInvalid = 100005,
    cnrtErrorArgsInvalid = 100006,
    cnrtErrorSys = 100007,
    cnrtErrorSysNoMem = 100010,
    cnrtErrorInvalidResourceHandle = 100014,
    cnrtErrorNotSupport = 100050,
    cnrtErrorQueue = 100060,
    cnrtErrorNoMem = 100100,
    cnrtErrorMemcpyDirectionInvalid = 632013,
    cnrtErrorCndrvFuncCall = 632015,
    cnrtErrorNoCnrtContext = 632019,
    cnrtErrorUnknown = 999991
} cnrtRet_t;

typedef enum {
    cnrtMemcpyHostToDev = 0,
    cnrtMemcpyDevToDev,
    cnrtMemcpyDevToHost,
    cnrtMemcpyHostToHost,
    cnrtMemcpyPeerToPeer,
    cnrtMemcpyNoDirection
} cnrtMemTransDir_t;

struct cnrtQueue;
typedef struct cnrtQueue* cnrtQueue_t;

const char* cnrtGetErrorStr(cnrtRet_t error);

cnrtRet_t cnrtGetDeviceCount(unsigned int* count);
cnrtRet_t cnrtSetDevice(int device);
cnrtRet_t cnrtGetDevice(int* device);

cnrtRet_t cnrtMalloc(void** ptr, size_t bytes);
cnrtRet_t cnrtFree(void* ptr);
cnrtRet_t cnrtMemGetInfo(size_t* free, size_t* total);
cnrtRet_t cnrtMemset(void* ptr, int value, size_t bytes);
cnrtRet_t cnrtMemcpy(void* dst, void* src, size_t bytes, cnrtMemTransDir_t dir);
cnrtRet_t cnrtMemcpyAsync(void* dst, void* src, size_t bytes, cnrtQueue_t queue,
                          cnrtMemTransDir_t dir);

cnrtRet_t cnrtQueueCreate(cnrtQueue_t* queue);
cnrtRet_t cnrtQueueSync(cnrtQueue_t queue);
cnrtRet_t cnrtQueueDestroy(cnrtQueue_t queue);

#ifdef __cplusplus
}
#endif

#endif /* ODMA_TESTS_FAKE_CNRT_H */
