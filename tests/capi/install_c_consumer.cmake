# ctest script: install odma to a scratch prefix, then build and run a C99 program against
# the installed C library two ways: a plain compiler line with pkg-config (odma_c.pc), and a
# CMake project using find_package(odma) -> odma::c.
# Inputs: ODMA_BUILD_DIR, ODMA_SOURCE_DIR, WORK_DIR, C_COMPILER, LIBDIR.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

include(${ODMA_SOURCE_DIR}/tests/run_command.cmake)

run(${CMAKE_COMMAND} --install ${ODMA_BUILD_DIR} --prefix ${prefix})

foreach(f include/odma_c.h ${LIBDIR}/libodma_c.so ${LIBDIR}/libodma_c.a
          ${LIBDIR}/pkgconfig/odma_c.pc share/cmake/odma/odmaTargets.cmake)
    if(NOT EXISTS ${prefix}/${f})
        message(FATAL_ERROR "install tree lacks ${f}")
    endif()
endforeach()
set(program ${ODMA_SOURCE_DIR}/tests/capi/c99_smoke.c)

# 1. pkg-config and a plain compiler line, against the shared library.
find_program(PKG_CONFIG pkg-config)
if(PKG_CONFIG)
    set(ENV{PKG_CONFIG_PATH} ${prefix}/${LIBDIR}/pkgconfig)
    run(${PKG_CONFIG} --cflags --libs odma_c)
    string(STRIP "${last_output}" flags)
    message(STATUS "pkg-config --cflags --libs odma_c: ${flags}")
    separate_arguments(flags UNIX_COMMAND "${flags}")
    run(${C_COMPILER} -std=c99 -Wall -Werror ${program} ${flags} -o ${WORK_DIR}/c_consumer)
    run(${CMAKE_COMMAND} -E env LD_LIBRARY_PATH=${prefix}/${LIBDIR} ${WORK_DIR}/c_consumer)
    message(STATUS "shared: ${last_output}")
    # The static library: its C++ runtime comes from Libs.private (pkg-config --static).
    run(${PKG_CONFIG} --static --cflags odma_c)
    string(STRIP "${last_output}" cflags)
    separate_arguments(cflags UNIX_COMMAND "${cflags}")
    run(${PKG_CONFIG} --static --libs odma_c)
    string(STRIP "${last_output}" libs)
    string(REPLACE "-lodma_c" "-l:libodma_c.a" libs "${libs}")
    separate_arguments(libs UNIX_COMMAND "${libs}")
    run(${C_COMPILER} -std=c99 -Wall -Werror ${program} ${cflags} ${libs}
        -o ${WORK_DIR}/c_consumer_static)
    run(${WORK_DIR}/c_consumer_static)
    message(STATUS "static: ${last_output}")
else()
    message(WARNING "pkg-config not found: the pkg-config consumer was not checked")
endif()

# 2. find_package(odma CONFIG) from a C-only CMake project.
run(${CMAKE_COMMAND} -S ${ODMA_SOURCE_DIR}/tests/capi/consumer -B ${WORK_DIR}/consumer
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_C_COMPILER=${C_COMPILER})
run(${CMAKE_COMMAND} --build ${WORK_DIR}/consumer)
run(${WORK_DIR}/consumer/odma_c_consumer)
message(STATUS "find_package consumer: ${last_output}")
