# ctest driver: runs odma-eval in fast mode with no trace named, so on the bundled traces, and
# checks its JSON.
# Usage: cmake -DEVAL=<odma-eval> -P check_json.cmake
cmake_minimum_required(VERSION 3.21)
execute_process(
    COMMAND ${EVAL} --fast --json
    RESULT_VARIABLE rc
    OUTPUT_VARIABLE out
    ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
    message(FATAL_ERROR "odma-eval failed (${rc}): ${err}")
endif()

string(JSON traces LENGTH "${out}" traces)
if(NOT traces EQUAL 3)
    message(FATAL_ERROR "expected 3 traces in the JSON, got ${traces}:\n${out}")
endif()
math(EXPR last_trace "${traces} - 1")
foreach(t RANGE ${last_trace})
    string(JSON name GET "${out}" traces ${t} trace)
    string(JSON rows LENGTH "${out}" traces ${t} predictors)
    math(EXPR last_row "${rows} - 1")
    set(seen "")
    foreach(r RANGE ${last_row})
        string(JSON predictor GET "${out}" traces ${t} predictors ${r} predictor)
        list(APPEND seen "${predictor}")
        foreach(field acc_uniform acc_learned safe@0.05)
            string(JSON value GET "${out}" traces ${t} predictors ${r} ${field})
            if(value LESS 0 OR value GREATER 1)
                message(FATAL_ERROR "${name}/${predictor}: ${field} = ${value} is not a share")
            endif()
        endforeach()
    endforeach()
    foreach(required "majority bucket" "constant (max)" "unconditional quantile"
                     "prompt_quantile" "ngram" "oracle (upper bound)")
        if(NOT required IN_LIST seen)
            message(FATAL_ERROR "${name}: no row for '${required}'")
        endif()
    endforeach()
    # The learned predictor must beat the trivial one on the point estimate.
    string(JSON ngram_mae GET "${out}" traces ${t} predictors 4 mae)
    string(JSON base_mae GET "${out}" traces ${t} predictors 2 mae)
    if(ngram_mae GREATER base_mae)
        message(FATAL_ERROR "${name}: ngram mae ${ngram_mae} above the unconditional ${base_mae}")
    endif()
    string(JSON risks LENGTH "${out}" traces ${t} risk_tradeoff)
    if(risks LESS 3)
        message(FATAL_ERROR "${name}: risk trade-off table missing")
    endif()
    message(STATUS "${name}: ${rows} predictors, ngram mae ${ngram_mae} vs ${base_mae}")
endforeach()
