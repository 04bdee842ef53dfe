// odma/odma.hpp - the allocator, its policies and the host backing, in one include.
//
// Include this for convenience, or include the one header you need: every header under
// odma/ compiles on its own. Two families are left out to keep this header light (it is
// included by every user's translation units) and must be included by name:
//   <odma/paged.hpp>                         the vLLM-style paged baseline
//   <odma/backing/accounted.hpp>, <odma/memory/...>   the DRAM cost model and its backings
// and so are the device backings (<odma/backing/host_vmm.hpp>, cuda.hpp, cnrt.hpp, ...).
// docs/architecture.md draws the layers.
#pragma once

#include <odma/fwd.hpp>  // first: the definitions below must agree with its declarations
#include <odma/version.hpp>

#include <odma/allocator.hpp>
#include <odma/concepts.hpp>
#include <odma/config.hpp>
#include <odma/errc.hpp>
#include <odma/growth.hpp>
#include <odma/kv_allocator.hpp>
#include <odma/lease.hpp>
#include <odma/prediction.hpp>
#include <odma/region.hpp>
#include <odma/request.hpp>
#include <odma/resize.hpp>
#include <odma/result.hpp>
#include <odma/stats.hpp>
#include <odma/synchronized.hpp>

// Predictors.
#include <odma/predict/callable.hpp>
#include <odma/predict/constant.hpp>
#include <odma/predict/length_distribution.hpp>
#include <odma/predict/ngram.hpp>
#include <odma/predict/oracle.hpp>
#include <odma/predict/prompt_quantile.hpp>

// Bucket policies.
#include <odma/bucket/fixed.hpp>
#include <odma/bucket/online_histogram.hpp>
#include <odma/bucket/optimal_boundaries.hpp>

// The host backing.
#include <odma/backing/host.hpp>
