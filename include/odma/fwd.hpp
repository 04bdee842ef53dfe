// odma/fwd.hpp - forward declarations, for headers that only name odma types.
//
// odma.hpp includes this header before the definitions, so every test that includes the
// umbrella checks that these declarations still agree with the real ones. The class templates
// constrained by concepts (allocator, paged, synchronized) are not declared here: a forward
// declaration would have to repeat their constraints.
#pragma once

#include <cstdint>

namespace odma {

enum class errc : int;
enum class growth : std::uint8_t;
template <class T>
class result;
template <class Pointer>
class address;
struct config;
struct request;
class lease;
struct region;
class resize_result;
class prediction;
struct stats;

namespace predict {
struct constant;
class oracle;
struct training_sample;
class length_classes;
class length_distribution;
class quantile_calibration;
struct ngram_options;
class ngram;
struct prompt_quantile_options;
class prompt_quantile;
struct ignore_observations;
template <class F, class Observe>
class callable;
}  // namespace predict

namespace bucket {
class fixed;
struct online_histogram_options;
class online_histogram;
}  // namespace bucket

namespace memory {
struct memory_model;
struct access_report;
class accountant;
}  // namespace memory

namespace backing {
class host;
class host_vmm;
class placement_only;
struct commit_counters;
// The device backings exist only where their toolkit's header is found (docs/install.md).
class cuda;
class cuda_vmm;
class cnrt;
class cndrv_vmm;
}  // namespace backing

}  // namespace odma
