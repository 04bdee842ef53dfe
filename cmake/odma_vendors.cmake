# Vendor toolkits for odma's device backings (included from the top-level CMakeLists.txt).
#
# odma itself stays header-only and toolkit-free: these targets only add the include paths and
# libraries a program needs when it uses a device backing.
#   odma::cuda      odma + CUDA::cudart + CUDA::cuda_driver  (backing/cuda.hpp, cuda_vmm.hpp)
#   odma::cambricon odma + cnrt + cndrv from Neuware          (backing/cnrt.hpp, cndrv_vmm.hpp)
# ODMA_WITH_CUDA / ODMA_WITH_CNRT turn the search on; a toolkit that is not found is reported
# and skipped, never an error, so the same build works on machines without accelerators.

if(ODMA_WITH_CUDA)
    find_package(CUDAToolkit QUIET)
    if(CUDAToolkit_FOUND)
        message(STATUS "odma: CUDA toolkit ${CUDAToolkit_VERSION} found: odma::cuda available")
        add_library(odma_cuda INTERFACE)
        add_library(odma::cuda ALIAS odma_cuda)
        target_link_libraries(odma_cuda INTERFACE odma::odma CUDA::cudart CUDA::cuda_driver)
    else()
        message(STATUS "odma: no CUDA toolkit found: CUDA backings not built or tested")
    endif()
endif()

if(ODMA_WITH_CNRT)
    set(ODMA_NEUWARE_HOME "$ENV{NEUWARE_HOME}" CACHE PATH "Cambricon Neuware SDK root")
    find_path(ODMA_CNRT_INCLUDE_DIR cnrt.h
        HINTS ${ODMA_NEUWARE_HOME}/include /usr/local/neuware/include)
    find_library(ODMA_CNRT_LIBRARY cnrt HINTS ${ODMA_NEUWARE_HOME}/lib64 /usr/local/neuware/lib64)
    find_library(ODMA_CNDRV_LIBRARY cndrv HINTS ${ODMA_NEUWARE_HOME}/lib64 /usr/local/neuware/lib64)
    if(ODMA_CNRT_INCLUDE_DIR AND ODMA_CNRT_LIBRARY AND ODMA_CNDRV_LIBRARY)
        message(STATUS "odma: Cambricon Neuware found (${ODMA_CNRT_INCLUDE_DIR}): odma::cambricon available")
        add_library(odma_cambricon INTERFACE)
        add_library(odma::cambricon ALIAS odma_cambricon)
        target_include_directories(odma_cambricon INTERFACE ${ODMA_CNRT_INCLUDE_DIR})
        target_link_libraries(odma_cambricon INTERFACE
            odma::odma ${ODMA_CNRT_LIBRARY} ${ODMA_CNDRV_LIBRARY})
    else()
        message(STATUS "odma: no Cambricon Neuware SDK found (set NEUWARE_HOME): "
                       "the Cambricon backings are tested against tests/fakes only")
    endif()
endif()
