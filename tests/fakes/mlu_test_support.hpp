// tests/fakes/mlu_test_support.hpp - host <-> MLU copies for tests, through the CNRT API
// (works the same against the fake and a real device).
#pragma once

#include <cnrt.h>

#include <doctest/doctest.h>

#include <cstddef>
#include <vector>

namespace odma_test {

inline void mlu_write(std::byte* device, std::vector<std::byte> data) {
    REQUIRE(cnrtMemcpy(device, data.data(), data.size(), cnrtMemcpyHostToDev) == cnrtSuccess);
}

inline std::vector<std::byte> mlu_read(std::byte* device, std::size_t bytes) {
    std::vector<std::byte> out(bytes);
    REQUIRE(cnrtMemcpy(out.data(), device, bytes, cnrtMemcpyDevToHost) == cnrtSuccess);
    return out;
}

}  // namespace odma_test
