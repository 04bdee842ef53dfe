// odma/backing/memory_model.hpp - compatibility: the cost model moved to odma/memory/.
#pragma once

#include <odma/memory/access_report.hpp>
#include <odma/memory/memory_model.hpp>

namespace odma::backing {

// The cost model's types under the names they had in odma::backing, where they lived before
// the cost model became its own subsystem. backing::accounted speaks in them, so its header
// includes this one.
using memory::access_kind;
using memory::access_kinds;
using memory::access_report;
using memory::access_totals;
using memory::address_mapping;
using memory::dram_location;
using memory::memory_model;

}  // namespace odma::backing
