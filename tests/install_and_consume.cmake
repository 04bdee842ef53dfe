# ctest script: install odma to a scratch prefix and build examples/consumer against it.
# Inputs: ODMA_BUILD_DIR, ODMA_SOURCE_DIR, WORK_DIR, CXX_COMPILER.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

include(${CMAKE_CURRENT_LIST_DIR}/run_command.cmake)

run(${CMAKE_COMMAND} --install ${ODMA_BUILD_DIR} --prefix ${prefix})

foreach(f include/odma/odma.hpp share/cmake/odma/odmaConfig.cmake
          share/cmake/odma/odmaConfigVersion.cmake share/cmake/odma/odmaTargets.cmake
          share/pkgconfig/odma.pc)
    if(NOT EXISTS ${prefix}/${f})
        message(FATAL_ERROR "install tree lacks ${f}")
    endif()
endforeach()

run(${CMAKE_COMMAND} -S ${ODMA_SOURCE_DIR}/examples/consumer -B ${WORK_DIR}/consumer
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer)
run(${WORK_DIR}/consumer/odma_consumer)
message(STATUS "consumer says: ${last_output}")

find_program(PKG_CONFIG pkg-config)
if(PKG_CONFIG)
    set(ENV{PKG_CONFIG_PATH} ${prefix}/share/pkgconfig)
    run(${PKG_CONFIG} --cflags odma)
    string(STRIP "${last_output}" cflags)
    string(REGEX REPLACE "^-I" "" include_dir "${cflags}")
    file(REAL_PATH "${include_dir}" include_dir)
    file(REAL_PATH "${prefix}/include" expected)
    if(NOT include_dir STREQUAL expected)
        message(FATAL_ERROR "pkg-config --cflags odma gave '${cflags}', expected -I${expected}")
    endif()
    message(STATUS "pkg-config --cflags odma: ${last_output}")
endif()
