# ctest script: packaging that can be checked offline.
#   1. odma builds as a subproject, through add_subdirectory and through FetchContent, and a
#      consumer links odma::odma (examples/consumer_source).
#   2. The install tree holds every public header (device backings included) and nothing of the
#      tests (the fake vendor headers must never be installed), and pkg-config finds it.
#   3. The vcpkg port and the Conan recipe agree with the CMake project: name, version, the
#      config path the port fixes up, valid JSON.
# Inputs: ODMA_BUILD_DIR, ODMA_SOURCE_DIR, WORK_DIR, CXX_COMPILER, ODMA_VERSION.
file(REMOVE_RECURSE ${WORK_DIR})

include(${CMAKE_CURRENT_LIST_DIR}/run_command.cmake)

# 1. Source consumers.
foreach(mode add_subdirectory FetchContent)
    set(dir ${WORK_DIR}/${mode})
    run(${CMAKE_COMMAND} -S ${ODMA_SOURCE_DIR}/examples/consumer_source -B ${dir}
        -DODMA_CONSUME=${mode} -DODMA_SOURCE_DIR=${ODMA_SOURCE_DIR}
        -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
    run(${CMAKE_COMMAND} --build ${dir})
    run(${dir}/odma_consumer)
    message(STATUS "${mode} consumer says: ${last_output}")
endforeach()

# 2. Install tree.
set(prefix ${WORK_DIR}/prefix)
run(${CMAKE_COMMAND} --install ${ODMA_BUILD_DIR} --prefix ${prefix})
file(GLOB_RECURSE source_headers RELATIVE ${ODMA_SOURCE_DIR}/include ${ODMA_SOURCE_DIR}/include/*.hpp)
file(GLOB_RECURSE installed_headers RELATIVE ${prefix}/include ${prefix}/include/*)
# The C interface's header (capi/include/odma_c.h) sits beside odma/ when the C API is built.
list(REMOVE_ITEM installed_headers odma_c.h)
list(SORT source_headers)
list(SORT installed_headers)
if(NOT source_headers STREQUAL installed_headers)
    message(FATAL_ERROR "installed headers differ from include/:\n  source:    ${source_headers}\n  installed: ${installed_headers}")
endif()
foreach(h odma/backing/host_vmm.hpp odma/backing/cnrt.hpp odma/backing/cndrv_vmm.hpp
          odma/backing/cuda.hpp odma/backing/cuda_vmm.hpp)
    if(NOT EXISTS ${prefix}/include/${h})
        message(FATAL_ERROR "install tree lacks ${h}")
    endif()
endforeach()
file(GLOB_RECURSE leaked ${prefix}/*cnrt.h ${prefix}/*cn_api.h ${prefix}/*fake*)
if(leaked)
    message(FATAL_ERROR "test-only files were installed: ${leaked}")
endif()
list(LENGTH installed_headers n)
message(STATUS "install tree: ${n} headers, config in share/cmake/odma, odma.pc in share/pkgconfig")

find_program(PKG_CONFIG pkg-config)
if(PKG_CONFIG)
    set(ENV{PKG_CONFIG_PATH} ${prefix}/share/pkgconfig)
    run(${PKG_CONFIG} --modversion odma)
    string(STRIP "${last_output}" pc_version)
    if(NOT pc_version STREQUAL ODMA_VERSION)
        message(FATAL_ERROR "pkg-config says odma ${pc_version}, the project is ${ODMA_VERSION}")
    endif()
endif()

# 3. vcpkg port and Conan recipe.
file(READ ${ODMA_SOURCE_DIR}/ports/odma/vcpkg.json manifest)
string(JSON port_name GET "${manifest}" name)
string(JSON port_version GET "${manifest}" version)
if(NOT port_name STREQUAL "odma" OR NOT port_version STREQUAL ODMA_VERSION)
    message(FATAL_ERROR "ports/odma/vcpkg.json is ${port_name} ${port_version}, expected odma ${ODMA_VERSION}")
endif()
file(READ ${ODMA_SOURCE_DIR}/ports/odma/portfile.cmake portfile)
string(REGEX MATCH "CONFIG_PATH ([^ )\n]+)" _ "${portfile}")
if(NOT EXISTS ${prefix}/${CMAKE_MATCH_1}/odmaConfig.cmake)
    message(FATAL_ERROR "the port fixes up CONFIG_PATH '${CMAKE_MATCH_1}' but odma installs no odmaConfig.cmake there")
endif()
foreach(f usage)
    if(NOT EXISTS ${ODMA_SOURCE_DIR}/ports/odma/${f})
        message(FATAL_ERROR "ports/odma lacks ${f}")
    endif()
endforeach()
file(READ ${ODMA_SOURCE_DIR}/conanfile.py recipe)
foreach(expected
        "name = \"odma\""
        "version = \"${ODMA_VERSION}\""
        "package_type = \"header-library\""
        "\"cmake_file_name\", \"odma\""
        "\"cmake_target_name\", \"odma::odma\"")
    string(FIND "${recipe}" "${expected}" at)
    if(at EQUAL -1)
        message(FATAL_ERROR "conanfile.py lacks: ${expected}")
    endif()
endforeach()
message(STATUS "vcpkg port and Conan recipe agree with odma ${ODMA_VERSION}")
