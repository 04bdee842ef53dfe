// The fuzz target's entry points, shared by the libFuzzer build and the corpus replay.
#pragma once

#include <cstddef>
#include <cstdint>

namespace odma_fuzz {

/// Runs one input: picks a policy combination and a configuration from its first bytes, then
/// turns the rest into allocator operations. Aborts with a message on any contract breach.
void run_one(const std::uint8_t* data, std::size_t size);

/// Prints how many allocator operations and inputs ran so far (to stderr).
void print_totals();

}  // namespace odma_fuzz
