// odma/fwd.hpp - forward declarations, for headers that only name odma types.
#pragma once

namespace odma {

enum class errc : int;
template <class T>
class result;
template <class Pointer>
class address;
struct config;
struct request;
class lease;
struct region;
class prediction;
struct stats;
template <class Allocator>
class synchronized;

namespace predict {
struct constant;
class oracle;
// Learned predictors.
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
// Learned buckets.
struct online_histogram_options;
class online_histogram;
}  // namespace bucket

namespace backing {
class host;
// Device backings. Each lives in its own header; the vendor ones exist only where
// their toolkit's header is found (see docs/install.md).
class host_vmm;
class cuda;
class cuda_vmm;
class cnrt;
class cndrv_vmm;
struct commit_counters;

// The DRAM cost model (lpddr_emulated needs <odma/backing/lpddr_emulated.hpp>)
struct memory_model;
struct access_report;
class simulated;
}  // namespace backing

}  // namespace odma
