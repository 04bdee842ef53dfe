// The policy combinations of odma_internal/combos.hpp, plus the test-only ones: the
// counting_commit_backing of test_backings.hpp, so the fuzzer runs the CommittingBacking paths.
#pragma once

#include <odma_internal/combos.hpp>

#include "test_backings.hpp"

namespace odma_test {

/// Test-only: a host arena with commit/decommit, so the CommittingBacking paths run too.
template <>
struct policy_factory<counting_commit_backing> {
    static constexpr const char* name = "committing";
    static counting_commit_backing make(const build_context& c) {
        return counting_commit_backing(c.arena_bytes);
    }
};

// Extra combos only the fuzzer runs: the commit/decommit paths of a committing backing.
using test_only_combos =
    type_list<combo<odma::predict::constant, odma::bucket::fixed, counting_commit_backing>,
              combo<odma::predict::oracle, odma::bucket::fixed, counting_commit_backing>>;

}  // namespace odma_test
