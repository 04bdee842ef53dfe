# ctest driver: a tool given a bad flag must exit 2 and say so in one line that names the flag.
# Usage: cmake -DTOOL=<exe> -DFLAG=<bad flag> [-DARGS=<more args>] -P expect_usage_error.cmake
cmake_minimum_required(VERSION 3.21)
execute_process(COMMAND ${TOOL} ${FLAG} ${ARGS}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 2)
    message(FATAL_ERROR "${TOOL} ${FLAG}: exit status ${rc}, expected 2\n${out}${err}")
endif()
string(STRIP "${err}" err)
string(FIND "${err}" "\n" newline)
if(NOT newline EQUAL -1 OR NOT out STREQUAL "")
    message(FATAL_ERROR "${TOOL} ${FLAG}: expected one line on stderr, got:\n${out}${err}")
endif()
string(FIND "${err}" "${FLAG}" named)
if(named EQUAL -1)
    message(FATAL_ERROR "${TOOL} ${FLAG}: the message does not name the flag: ${err}")
endif()
message(STATUS "${err}")
