# ctest driver: every header under INCLUDE_DIR/odma includes only headers of its own layer or of
# a layer below it (docs/architecture.md draws the layers), and a subsystem's private detail/
# headers only from that subsystem.
#
#   cmake -DINCLUDE_DIR=<dir that holds odma/> -P check_layers.cmake
#
# Prints every breach on one line, "breach: file: includes <header> (layer A may not include
# layer B)", and fails when there is one.
cmake_minimum_required(VERSION 3.21)

# The layer of a header, from its path relative to INCLUDE_DIR.
function(layer_of path out)
    if(path MATCHES "^odma/support/")
        set(layer support)
    elseif(path MATCHES "^odma/memory/")
        set(layer memory)
    elseif(path MATCHES "^odma/predict/")
        set(layer predict)
    elseif(path MATCHES "^odma/bucket/")
        set(layer bucket)
    elseif(path MATCHES "^odma/backing/")
        set(layer backing)
    elseif(path MATCHES "^odma/detail/")
        set(layer core_detail)
    elseif(path MATCHES "^odma/(allocator|paged|synchronized|swap)\\.hpp$")
        set(layer composition)
    elseif(path MATCHES "^odma/(odma|fwd)\\.hpp$")
        set(layer umbrella)
    elseif(path MATCHES "^odma/[^/]+\\.hpp$")
        set(layer vocabulary)
    else()
        set(layer unknown)
    endif()
    set(${out} ${layer} PARENT_SCOPE)
endfunction()

# What each layer may include (itself included).
set(allowed_support support)
set(allowed_vocabulary support vocabulary)
set(allowed_memory support vocabulary memory)
set(allowed_predict support vocabulary predict)
set(allowed_bucket support vocabulary bucket)
set(allowed_backing support vocabulary memory backing)
set(allowed_core_detail support vocabulary core_detail)
set(allowed_composition support vocabulary core_detail composition)
set(allowed_umbrella support vocabulary memory predict bucket backing core_detail composition
    umbrella)

# The subsystem a private header belongs to: the folder holding its detail/ folder.
function(owner_of_private path out)
    string(REGEX REPLACE "/detail/.*$" "" owner "${path}")
    set(${out} ${owner} PARENT_SCOPE)
endfunction()

file(GLOB_RECURSE headers RELATIVE ${INCLUDE_DIR} ${INCLUDE_DIR}/odma/*.hpp)
if(NOT headers)
    message(FATAL_ERROR "no headers under ${INCLUDE_DIR}/odma")
endif()
set(breaches 0)
set(edges 0)
foreach(header IN LISTS headers)
    layer_of(${header} from)
    if(from STREQUAL "unknown")
        message(NOTICE "breach: ${header}: in no layer (add it to tests/layers/check_layers.cmake "
                       "and docs/architecture.md)")
        math(EXPR breaches "${breaches} + 1")
        continue()
    endif()
    file(STRINGS ${INCLUDE_DIR}/${header} lines REGEX "^[ \t]*#[ \t]*include[ \t]*<odma/")
    foreach(line IN LISTS lines)
        string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*<([^>]+)>.*$" "\\1" target "${line}")
        math(EXPR edges "${edges} + 1")
        layer_of(${target} to)
        if(NOT to IN_LIST allowed_${from})
            message(NOTICE "breach: ${header}: includes <${target}> "
                           "(layer ${from} may not include layer ${to})")
            math(EXPR breaches "${breaches} + 1")
        endif()
        if(target MATCHES "/detail/")
            owner_of_private(${target} owner)
            get_filename_component(includer_dir ${header} DIRECTORY)
            string(REGEX REPLACE "/detail(/.*)?$" "" includer_dir "${includer_dir}")
            if(NOT from STREQUAL "umbrella" AND NOT includer_dir STREQUAL owner)
                message(NOTICE "breach: ${header}: includes <${target}>, private to ${owner}/")
                math(EXPR breaches "${breaches} + 1")
            endif()
        endif()
    endforeach()
endforeach()
list(LENGTH headers count)
if(breaches GREATER 0)
    message(FATAL_ERROR "${breaches} layering breach(es) in ${count} headers")
endif()
message(STATUS "${count} headers, ${edges} odma includes, all downward or within their layer")
