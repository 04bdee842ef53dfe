# vcpkg overlay port for odma, built from the checkout this file lives in:
#   vcpkg install odma --overlay-ports=<checkout>/ports
# Header-only: one release configuration, no binaries. The device backings need no port
# feature: their headers compile against the CUDA / Cambricon toolkits the consumer links.
set(VCPKG_BUILD_TYPE release)

get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
if(NOT EXISTS "${SOURCE_PATH}/include/odma/odma.hpp")
    message(FATAL_ERROR "odma overlay port: expected the odma checkout at ${SOURCE_PATH}")
endif()

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DODMA_BUILD_TESTS=OFF
        -DODMA_BUILD_EXAMPLES=OFF
        -DODMA_BUILD_BENCHMARKS=OFF
        -DODMA_BUILD_C_API=OFF
        -DODMA_INSTALL=ON
        -DODMA_WITH_CUDA=OFF
        -DODMA_WITH_CNRT=OFF
)
vcpkg_cmake_install()
# odma installs its CMake package to share/cmake/odma; vcpkg wants share/odma.
vcpkg_cmake_config_fixup(PACKAGE_NAME odma CONFIG_PATH share/cmake/odma)
vcpkg_fixup_pkgconfig()

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/share/doc")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
