// odma/version.hpp - library version, kept in step with CMakeLists.txt project(VERSION).
#pragma once

#define ODMA_VERSION_MAJOR 0
#define ODMA_VERSION_MINOR 1
#define ODMA_VERSION_PATCH 0

namespace odma {
/// major * 10000 + minor * 100 + patch.
inline constexpr int version =
    ODMA_VERSION_MAJOR * 10000 + ODMA_VERSION_MINOR * 100 + ODMA_VERSION_PATCH;
}  // namespace odma
