// odma/odma.hpp - everything odma offers that needs no vendor toolkit.
//
// Include this for convenience, or include the one header you need: every header under
// odma/ compiles on its own.
#pragma once

#include <odma/version.hpp>

#include <odma/allocator.hpp>
#include <odma/concepts.hpp>
#include <odma/config.hpp>
#include <odma/errc.hpp>
#include <odma/lease.hpp>
#include <odma/paged.hpp>  // the vLLM-style paged baseline
#include <odma/prediction.hpp>
#include <odma/request.hpp>
#include <odma/result.hpp>
#include <odma/stats.hpp>
#include <odma/synchronized.hpp>

#include <odma/predict/constant.hpp>
#include <odma/predict/oracle.hpp>

#include <odma/bucket/fixed.hpp>

// Learned predictors and buckets.
#include <odma/bucket/online_histogram.hpp>
#include <odma/bucket/optimal_boundaries.hpp>
#include <odma/predict/callable.hpp>
#include <odma/predict/length_distribution.hpp>
#include <odma/predict/ngram.hpp>
#include <odma/predict/prompt_quantile.hpp>

#include <odma/backing/host.hpp>

// A DRAM cost model and the backings that account accesses on it
#include <odma/backing/lpddr_emulated.hpp>
#include <odma/backing/memory_model.hpp>
#include <odma/backing/simulated.hpp>
