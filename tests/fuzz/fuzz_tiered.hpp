// The fuzz target's tiered mode (fuzz_tiered.cpp), reached from run_one().
#pragma once

#include "byte_reader.hpp"

namespace odma_fuzz {

/// Reads a two-tier configuration and a sequence of operations from `in` and runs them,
/// aborting with a message on any contract breach.
void run_tiered(byte_reader& in);

/// Prints the tiered mode's totals (to stderr).
void print_tiered_totals();

}  // namespace odma_fuzz
