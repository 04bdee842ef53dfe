// odma-replay: replays a request trace through a continuous-batching serving model with each
// KV-cache allocation policy on the same device memory, and prints how they compare.
// See --help, and odma_internal/replay/serving_engine.hpp and policies.hpp for the model.
#include <odma_internal/replay/policies.hpp>
#include <odma_internal/replay/presets.hpp>
#include <odma_internal/replay/serving_engine.hpp>
#include <odma_internal/replay/workload.hpp>
#include <odma_internal/svg.hpp>
#include <odma_internal/table.hpp>
#include <odma_internal/trace.hpp>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#ifndef ODMA_REPLAY_DATA_DIR
#define ODMA_REPLAY_DATA_DIR "data"
#endif

namespace {

using namespace odma::replay;
namespace tools = odma::tools;

// The default trace: AlpacaEval. Its prompt text lets the learned predictor work as ODMA's does,
// and its short prompts with long answers make the answer, which must be predicted, the bulk of
// the KV cache. It has no arrival times, so the default is an offline throughput run (every
// request at time 0). The Azure trace (real arrivals, long prompts, no text) is one flag away.
constexpr const char* default_trace = "alpaca_eval_lengths.csv";

struct cli {
    std::string trace;
    std::vector<std::string> devices{"mlu370-x4"};
    std::string model;  // empty: each device's default_model
    std::vector<std::string> policies = policy_names();
    bool policies_given = false;  // else a device with a slow tier replays the tier rows
    // Set on the command line (else a Mooncake trace picks its own defaults).
    bool max_context_given = false, max_new_given = false, prefill_given = false;
    workload_options wo;
    serving_options so;
    policy_options po;
    double compute_efficiency = -1;  // < 0: the preset's
    double run_cost_ns = -1;         // < 0: the preset's memory_model::discontinuity_ns
    std::uint32_t tensor_parallel = 1;
    bool parallel = true;
    std::string plot_dir;
    bool json = false;
    bool break_even = false;
    bool swap_crossover = false;
    double host_link_gbps = -1;  // < 0: the preset's
    bool progress = true;
};

void print_help() {
    std::cout << R"(odma-replay - replay a request trace through a serving model, once per KV-cache
allocation policy, on the same device memory, and compare them.

usage: odma-replay [options]

With no options it replays the bundled AlpacaEval trace (data/alpaca_eval_lengths.csv with
its prompts: half of the prompts train the length predictor, the answers to the other half are
replayed, all arriving at time 0: an offline throughput run) on one Cambricon MLU370-X4
serving DeepSeek-R1-Distill-Qwen-7B, with the policies static, s3, paged-16, paged-128,
odma-strict, odma and oracle. For real arrival times use --trace data/azure2023_conv.csv; for
reasoning traffic --trace data/servegen_r1.csv --max-context 32768 --max-new-tokens 32768.

trace and workload
  --trace PATH            trace CSV: AlpacaEval, Azure, ServeGen R1, NQ (bundled in data/) or a
                          generic CSV with prompt_tokens, output_tokens and optional arrival_s,
                          prompt_id, tag, prompt_text columns; or a Mooncake JSON-lines trace
                          (*.jsonl: timestamp ms, input_length, output_length, hash_ids, e.g.
                          data/mooncake_synthetic.jsonl), whose defaults are --max-context
                          131072 --max-new-tokens 1024 --prefill remote, as Mooncake serves it
                          (default data/alpaca_eval_lengths.csv)
  --test-fraction F       share of the trace replayed; the rest trains the predictor. Traces
                          with arrival times are split in time (train on the earlier part),
                          others by prompt (default 0.5)
  --requests N            replay at most the first N requests of the replayed part (0 = all;
                          default 0)
  --rate R                traces without arrival times: Poisson arrivals at R requests/s
                          (0 = all at time 0: an offline throughput run; default 0)
  --speedup X             traces with arrival times: replay X times faster (default 1)
  --order file|shuffle    traces without arrival times: replay order (default shuffle)
  --seed S                split, shuffle, arrivals and predictor training (default 1)
  --max-new-tokens N      the engine's cap on generated tokens; longer answers are cut here
                          (default 1024)
  --max-context N         longest sequence served (allocator max_tokens); prompts that leave
                          no room are skipped and counted, answers that would overflow are cut
                          (default 8192)

serving engine (vLLM names)
  --model NAME            the model of every device: r1-distill-qwen-7b (28 layers, 4 KV heads, head_dim 128, bf16:
                          57,344 B/token; 7.6 B parameters, 15.2 GB) or llama-3.1-8b (32
                          layers, 8 KV heads, head_dim 128, bf16: 131,072 B/token; 8.03 B
                          parameters, 16.1 GB) (default: llama-3.1-8b on gh200, as Fang et
                          al. serve it, r1-distill-qwen-7b elsewhere)
  --device LIST           comma-separated device presets: mlu370-x4 (24 GB LPDDR5,
                          307.2 GB/s, 96 TFLOPS BF16), h100-hbm3 (80 GB HBM3, 3.35 TB/s,
                          989 TFLOPS), host-epyc (this 2-vCPU host as the device; run cost
                          measured by bench/bench_attention.cpp) (default mlu370-x4).
                          With a slow KV tier (docs/tiers.md): gh200 (96 GB HBM3 at 4 TB/s +
                          480 GB LPDDR5X over NVLink-C2C, 450 GB/s per direction),
                          h100-host-ddr5 (h100-hbm3 + 512 GiB host DDR5 over PCIe 5.0 x16,
                          63 GB/s), mlu370-x4-host (mlu370-x4 + 256 GiB host DDR5 over PCIe 4.0
                          x16, 31.5 GB/s); these replay the tier rows unless --policies says
                          otherwise
  --max-num-seqs N        most requests per batch (default 256)
  --max-batched-tokens N  token budget per iteration, chunked prefill (default 2048)
  --prefill local|remote  local: this instance prefills (chunked, within the token budget);
                          remote: the decode instance of a disaggregated deployment (Mooncake,
                          DistServe): requests arrive with their prompt's KV computed
                          elsewhere, its transfer not charged (default local; remote for a
                          Mooncake trace)
  --preemption MODE       recompute (drop a preempted request's KV and prefill it again: vLLM
                          V1) or swap (copy it to host memory over the device's host link and
                          back, charged serially: vLLM V0's swap space) (default recompute)
  --compute-efficiency F  sustained share of peak FLOPS (default: the preset's, 0.5)
  --kv-planes N           planes whose KV reads are costed, scaled to all (0 = all 56;
                          default 2, one layer's K and V: every layer has the same layout)
  --tensor-parallel N     split the model over N cards of the device (Megatron-style): each
                          card holds 1/N of the weights and of the KV heads (so 1/N of the KV
                          bytes per token), does 1/N of the FLOPs and has its own memory; one
                          card is simulated. N must divide the KV heads (4). All-reduce
                          traffic between cards is not modelled (default 1)
  --run-cost-ns X         accelerator-side cost of one discontinuity (run start) in ns,
                          overriding the device's memory model (memory_model::discontinuity_ns:
                          20 on mlu370-x4's LPDDR5, 0.25 on h100-hbm3's HBM3)

policies
  --policies LIST         comma-separated policies (default: static, s3, paged-16, paged-128,
                          odma-strict, odma, oracle; on a device with a slow tier: tier-static,
                          tier-dynamic, tier-bound); also paged (= paged-<--block-size>),
                          paged-N for any block size N, and odma-balloon (odma sharing a pool
                          with the activations, eLLM-style: docs/tiers.md)
  --safety-pool F         odma's safety pool share of the arena (default 0.10)
  --overflow-risk R       odma reserves the predictor's (1 - R) quantile (default 0.5, the
                          median, as s3; the library's own default is 0.05)
  --buckets N             odma's learned buckets (default 16)
  --max-runs N            runs per lease of the odma row (config::max_runs, 1-16; default 16;
                          odma-strict always 1)
  --demand-limit F        the odma row's config::demand_limit (default 1.0; 0 = off)
  --lend                  the odma row lends unused reservations under pressure
                          (config::lend_reserved; default off)
  --s3-buckets N          s3's uniform buckets (default 10)
  --block-size N          block size of the `paged` alias, in tokens (default 16)
  --free-order fifo|lifo  paged free-list order (default fifo, as vLLM v1)
  --watermark F           paged: share of blocks admissions leave free (default 0)

output
  --json                  print the results as JSON instead of tables
  --plot DIR              write SVG plots to DIR: utilization over time per policy, odma's
                          bucket boundaries over time (one pair per device)
  --no-progress           no progress bar (it is shown only when stderr is a terminal)
  --break-even            instead of the table: for each device and each paged policy of
                          --policies (default paged-16, paged-128), the run cost (ns per
                          discontinuity) at which odma-strict and odma (those of --policies,
                          else both) tie it on TPS, by bisection
  --swap-crossover        instead of the table: for each device and policy of --policies, the
                          host-link bandwidth (GB/s per direction) above which --preemption
                          swap beats recompute on TPS, by bisection
  --host-link-gbps X      the device's host link (swap mode), overriding the preset's
  --sequential            replay the policies one after another instead of one thread each
                          (same results: the simulator is deterministic)
  --help                  this text

Columns: util = time-averaged used KV bytes / KV capacity; resv util = used / reserved bytes;
resv = reserved / capacity; batch = mean requests in the batch; RPS, TPS = finished requests
and output tokens per second, over the loaded window (until the queue drains after the last
arrival); vs static = TPS relative to static; TTFT (s) and TPOT (ms) p50/p99 over all
requests (TTFT includes the wait in the queue); preempt = preemptions (recompute mode),
recomp = tokens prefilled again; swap GB = KV swapped to host and back (--preemption swap); migr, migr GB = migrations and bytes they copied; pool =
safety-pool admissions + migrations; KV GB/s = effective KV read bandwidth; KV dram / KV disc =
share of memory time spent on KV reads in the DRAM-timing and per-run (discontinuity) layers
of the cost model; cbound = share of time in compute-bound iterations; KV runs = mean
contiguous runs read per request and plane per decode step (1 for a one-run lease,
ceil(context / block) for paging). Tier rows add slow KV = share of KV bytes read from the
slow tier, and moved GB = bytes moved between the tiers. With odma-balloon: resizes = arena
resizes, act spill GB = activation bytes spilled to host memory and back.
)";
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    std::string cur;
    for (const char c : s) {
        if (c == ',') {
            if (!cur.empty()) out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    if (!cur.empty()) out.push_back(cur);
    return out;
}

template <class T>
T parse(std::string_view flag, const std::string& v) {
    std::istringstream in(v);
    T x{};
    if (!(in >> x) || !in.eof())
        throw std::invalid_argument(std::string(flag) + ": '" + v + "' is not a valid value");
    return x;
}

cli parse_args(int argc, char** argv) {
    cli c;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
            return argv[++i];
        };
        if (a == "--help" || a == "-h") {
            print_help();
            std::exit(0);
        } else if (a == "--trace") {
            c.trace = value();
        } else if (a == "--test-fraction") {
            c.wo.test_fraction = parse<double>(a, value());
        } else if (a == "--requests") {
            c.wo.max_requests = parse<std::size_t>(a, value());
        } else if (a == "--rate") {
            c.wo.rate = parse<double>(a, value());
        } else if (a == "--speedup") {
            c.wo.speedup = parse<double>(a, value());
        } else if (a == "--order") {
            const std::string v = value();
            if (v != "file" && v != "shuffle")
                throw std::invalid_argument("--order: file or shuffle");
            c.wo.shuffle = v == "shuffle";
        } else if (a == "--seed") {
            c.wo.seed = parse<std::uint64_t>(a, value());
        } else if (a == "--max-new-tokens") {
            c.wo.max_new_tokens = parse<std::uint32_t>(a, value());
            c.max_new_given = true;
        } else if (a == "--max-context") {
            c.wo.max_context = parse<std::uint32_t>(a, value());
            c.max_context_given = true;
        } else if (a == "--model") {
            c.model = value();
        } else if (a == "--device") {
            c.devices = split_list(value());
        } else if (a == "--max-num-seqs") {
            c.so.max_num_seqs = parse<std::uint32_t>(a, value());
        } else if (a == "--max-batched-tokens") {
            c.so.max_batched_tokens = parse<std::uint32_t>(a, value());
        } else if (a == "--compute-efficiency") {
            c.compute_efficiency = parse<double>(a, value());
        } else if (a == "--tensor-parallel") {
            c.tensor_parallel = parse<std::uint32_t>(a, value());
            if (c.tensor_parallel == 0) throw std::invalid_argument("--tensor-parallel: N >= 1");
        } else if (a == "--run-cost-ns") {
            c.run_cost_ns = parse<double>(a, value());
            if (!(c.run_cost_ns >= 0)) throw std::invalid_argument("--run-cost-ns: X >= 0");
        } else if (a == "--sequential") {
            c.parallel = false;
        } else if (a == "--kv-planes") {
            c.so.kv_planes_sampled = parse<std::uint32_t>(a, value());
        } else if (a == "--policies") {
            c.policies = split_list(value());
            c.policies_given = true;
        } else if (a == "--safety-pool") {
            c.po.safety_pool_fraction = parse<double>(a, value());
        } else if (a == "--overflow-risk") {
            c.po.overflow_risk = parse<double>(a, value());
        } else if (a == "--buckets") {
            c.po.odma_buckets = parse<std::uint32_t>(a, value());
        } else if (a == "--s3-buckets") {
            c.po.s3_buckets = parse<std::uint32_t>(a, value());
        } else if (a == "--block-size") {
            c.po.block_tokens = parse<std::uint32_t>(a, value());
        } else if (a == "--free-order") {
            const std::string v = value();
            if (v != "fifo" && v != "lifo")
                throw std::invalid_argument("--free-order: fifo or lifo");
            c.po.paged_order = v == "fifo" ? odma::free_order::fifo : odma::free_order::lifo;
        } else if (a == "--max-runs") {
            c.po.max_runs = parse<std::uint32_t>(a, value());
        } else if (a == "--demand-limit") {
            c.po.demand_limit = parse<double>(a, value());
        } else if (a == "--preemption") {
            const std::string v = value();
            if (v != "recompute" && v != "swap")
                throw std::invalid_argument("--preemption: recompute or swap");
            c.so.preemption = v == "swap" ? odma::replay::preemption_mode::swap
                                          : odma::replay::preemption_mode::recompute;
        } else if (a == "--prefill") {
            const std::string v = value();
            if (v != "local" && v != "remote")
                throw std::invalid_argument("--prefill: local or remote");
            c.so.remote_prefill = v == "remote";
            c.prefill_given = true;
        } else if (a == "--lend") {
            c.po.lend_reserved = true;
        } else if (a == "--watermark") {
            c.po.paged_watermark = parse<double>(a, value());
        } else if (a == "--break-even") {
            c.break_even = true;
        } else if (a == "--swap-crossover") {
            c.swap_crossover = true;
        } else if (a == "--host-link-gbps") {
            c.host_link_gbps = parse<double>(a, value());
            if (!(c.host_link_gbps > 0)) throw std::invalid_argument("--host-link-gbps: X > 0");
        } else if (a == "--json") {
            c.json = true;
        } else if (a == "--plot") {
            c.plot_dir = value();
        } else if (a == "--no-progress") {
            c.progress = false;
        } else {
            throw std::invalid_argument("unknown option " + a + " (see --help)");
        }
    }
    if (c.devices.empty()) throw std::invalid_argument("--device: no device given");
    if (c.policies.empty()) throw std::invalid_argument("--policies: no policy given");
    for (const auto& p : c.policies)
        if (!is_policy_name(p))
            throw std::invalid_argument("--policies: unknown policy '" + p + "'");
    if ((c.break_even || c.swap_crossover) && c.json)
        throw std::invalid_argument("--break-even and --swap-crossover print a table, not --json");
    if (c.break_even && c.swap_crossover)
        throw std::invalid_argument("--break-even or --swap-crossover, not both");
    for (const auto& d : c.devices) {
        const device_preset dev = find_device(d);  // throws for an unknown name
        try {
            (void)tensor_parallel_slice(find_model(c.model.empty() ? dev.default_model : c.model),
                                        c.tensor_parallel);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(std::string("--tensor-parallel: ") + e.what());
        }
    }
    return c;
}

/// The model replayed on `dev`: --model, else the device's default.
std::string model_for(const cli& c, const device_preset& dev) {
    return c.model.empty() ? dev.default_model : c.model;
}

/// The bundled trace: ./data/<file> when run from the source tree, else the build's data dir.
std::string resolve_trace(const std::string& given) {
    if (!given.empty()) return given;
    const std::string local = std::string("data/") + default_trace;
    if (std::filesystem::exists(local)) return local;
    return std::string(ODMA_REPLAY_DATA_DIR) + "/" + default_trace;
}

class progress_bar {
public:
    explicit progress_bar(bool enabled) : on_(enabled && ::isatty(::fileno(stderr))) {}
    void show(const std::string& label, double f) const {
        if (!on_) return;
        const int width = 32, filled = static_cast<int>(f * width + 0.5);
        std::fprintf(stderr, "\r  %-22s [%s%s] %3.0f%%", label.c_str(),
                     std::string(std::size_t(filled), '#').c_str(),
                     std::string(std::size_t(width - filled), '.').c_str(), 100.0 * f);
        std::fflush(stderr);
    }
    void clear() const {
        if (on_) std::fprintf(stderr, "\r%72s\r", "");
    }

private:
    bool on_;
};

tools::table results_table(const std::vector<replay_result>& results) {
    std::vector<std::string> columns{
        "policy",  "util",      "resv util",  "resv",       "batch",       "RPS",
        "TPS",     "vs static", "TTFT p50 s", "TTFT p99 s", "TPOT p50 ms", "TPOT p99 ms",
        "preempt", "recomp",    "swap GB",    "migr",       "migr GB",     "pool",
        "KV GB/s", "KV dram",   "KV disc",    "cbound",     "KV runs"};
    bool tiers = false;
    for (const auto& r : results)
        tiers = tiers || is_tier_policy(r.policy);
    if (tiers) {
        columns.push_back("slow KV");
        columns.push_back("moved GB");
    }
    bool balloon = false;
    for (const auto& r : results)
        balloon = balloon || r.policy == "odma-balloon";
    if (balloon) {
        columns.push_back("resizes");
        columns.push_back("act spill GB");
    }
    tools::table t(columns);
    double static_tps = 0;
    for (const auto& r : results)
        if (r.policy == "static" || r.policy == "tier-static") static_tps = r.metrics.tps;
    for (const auto& r : results) {
        const replay_metrics& m = r.metrics;
        const double mem = m.memory_ns();
        t.row()
            .add(r.policy)
            .add_percent(m.utilization, 1)
            .add_percent(m.reserved_utilization, 1)
            .add_percent(m.reserved_share, 1)
            .add(m.mean_running, 1)
            .add(m.rps, 2)
            .add(m.tps, 0);
        if (static_tps > 0) {
            char b[32];
            std::snprintf(b, sizeof b, "%+.1f%%", 100.0 * (m.tps / static_tps - 1.0));
            t.add(b);
        } else {
            t.add("-");
        }
        t.add(m.ttft_p50_s, 2)
            .add(m.ttft_p99_s, 2)
            .add(m.tpot_p50_s * 1e3, 1)
            .add(m.tpot_p99_s * 1e3, 1)
            .add(double(m.preemptions), 0)
            .add(double(m.recomputed_tokens), 0)
            .add(double(m.swapped_bytes) * 1e-9, 2)
            .add(double(m.migrations), 0)
            .add(double(m.migrated_bytes) * 1e-9, 2)
            .add(double(m.safety_pool_hits), 0)
            .add(m.kv_gbps(), 1)
            .add_percent(mem > 0 ? m.kv_dram_ns / mem : 0.0, 1)
            .add_percent(mem > 0 ? m.kv_discontinuity_ns / mem : 0.0, 1)
            .add_percent(m.total_ns > 0 ? m.compute_bound_ns / m.total_ns : 0.0, 0)
            .add(m.runs_per_decode_read(), 2);
        if (tiers)
            t.add_percent(m.kv_bytes ? double(m.slow_kv_bytes) / double(m.kv_bytes) : 0.0, 1)
                .add(double(m.tier_moved_bytes) * 1e-9, 1);
        if (balloon)
            t.add(double(m.balloon_resizes), 0).add(double(m.spilled_activation_bytes) * 1e-9, 2);
    }
    return t;
}

void write_plots(const std::string& dir, const std::string& device,
                 const std::vector<replay_result>& results, const workload& w) {
    std::filesystem::create_directories(dir);
    tools::svg::chart util;
    util.title = "KV-cache utilization over time - " + device + ", " + w.name;
    util.x_label = "simulated time (s)";
    util.y_label = "used KV bytes / KV capacity";
    util.y_percent = true;
    util.y_min = 0;
    util.y_max = 1;
    double x_max = 0;
    for (const auto& r : results) {
        tools::svg::series s;
        s.name = r.policy;
        for (const auto& p : r.utilization)
            s.points.emplace_back(p.t, p.value);
        x_max = std::max(x_max, r.metrics.makespan_s);
        util.lines.push_back(std::move(s));
    }
    util.x_max = x_max;
    tools::svg::write(util, dir + "/utilization-" + device + ".svg");

    for (const auto& r : results) {
        if (r.policy != "odma" || r.boundaries.empty()) continue;
        // The largest bucket is always max_context; it is left out so the learned ones show.
        tools::svg::chart b;
        b.title = "odma bucket boundaries over time - " + device + ", " + w.name;
        b.x_label = "simulated time (s)";
        b.y_label = "bucket capacity (tokens; " + std::to_string(w.max_context) + " not shown)";
        b.x_max = r.metrics.makespan_s;
        b.y_min = 0;
        std::size_t most = 0;
        double top = 0;
        for (const auto& snap : r.boundaries) {
            most = std::max(most, snap.capacities.size());
            if (snap.capacities.size() > 1 && snap.t > 0)
                top = std::max(top, double(snap.capacities[snap.capacities.size() - 2]));
        }
        if (top > 0) b.y_max = top * 1.15;
        for (std::size_t k = 1; k < most; ++k) {  // k-th largest, skipping max_context
            tools::svg::series s;
            s.name = "learned buckets";
            s.color = "#0072B2";
            s.step = true;
            s.stroke_width = 1.2;
            s.in_legend = k == 1;
            for (const auto& snap : r.boundaries)
                if (k < snap.capacities.size())
                    s.points.emplace_back(snap.t, snap.capacities[snap.capacities.size() - 1 - k]);
            b.lines.push_back(std::move(s));
        }
        tools::svg::write(b, dir + "/boundaries-" + device + ".svg");
    }
}

std::string num(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%g", v);
    return b;
}

std::string gb(double bytes) {
    char b[32];
    std::snprintf(b, sizeof b, "%.2f GB", bytes * 1e-9);
    return b;
}

/// Two TPS figures compared at one setting: the candidate's and the baseline's.
struct tps_pair {
    double candidate = 0, baseline = 0;
};

/// Where a candidate catches up with a baseline as a setting x grows (the candidate gaining
/// with x): the verdict, the pair at the tie, and the replays it took.
struct tie_search {
    std::string verdict;
    tps_pair tie;
    int replays = 0;
};

/// Finds the smallest x >= `first` at which at(x).candidate >= at(x).baseline, assuming the
/// candidate's advantage grows with x: evaluated at `first`, bracketed by growing fourfold from
/// `start` up to `limit`, then bisected (geometric mean) until the bracket is within 2%.
/// `unit` names x in the verdicts.
template <class At>
tie_search find_tie(At&& at, double first, double start, double limit, const std::string& unit) {
    tie_search out;
    const auto eval = [&](double x) {
        ++out.replays;
        return at(x);
    };
    const tps_pair low = eval(first);
    out.tie = low;
    if (low.candidate >= low.baseline) {
        out.verdict = "<= " + num(first) + " (ahead at " + num(first) + " " + unit + ")";
        return out;
    }
    double lo = first, hi = std::max(start, first);
    tps_pair h = eval(hi);
    while (h.candidate < h.baseline && hi < limit) {
        lo = hi;
        hi *= 4;
        h = eval(hi);
    }
    out.tie = h;
    if (h.candidate < h.baseline) {
        out.verdict = "> " + num(limit) + " (behind at every " + unit + " tried)";
        return out;
    }
    while (hi > 1.02 * lo && hi - lo > 0.01) {
        const double mid = lo > 0 ? std::sqrt(lo * hi) : hi / 2;
        const tps_pair m = eval(mid);
        if (m.candidate < m.baseline) {
            lo = mid;
        } else {
            hi = mid;
            out.tie = m;
        }
    }
    out.verdict = num(std::round(hi * 100) / 100);
    return out;
}

/// The TPS of two policies on `dev` with the serving options `so`.
tps_pair tps_of(const cli& c, const device_preset& dev, const serving_options& so,
                const std::string& candidate, const std::string& baseline, const workload& w,
                const odma::predict::ngram* trained) {
    const serving_model sm =
        make_serving_model(find_model(model_for(c, dev)), dev, c.tensor_parallel);
    const auto r = run_policies({candidate, baseline}, w, sm, so, c.po, trained, {}, c.parallel);
    return {r[0].metrics.tps, r[1].metrics.tps};
}

/// The TPS of one policy on `dev` with the serving options `so`.
double tps_of(const cli& c, const device_preset& dev, const serving_options& so,
              const std::string& policy, const workload& w, const odma::predict::ngram* trained) {
    const serving_model sm =
        make_serving_model(find_model(model_for(c, dev)), dev, c.tensor_parallel);
    return run_policy(policy, w, sm, so, c.po, trained).metrics.tps;
}

/// --break-even: the run cost at which odma-strict and odma (those of --policies, else both) tie
/// each paged policy on TPS. Paging's TPS falls as runs get dearer, odma-strict's (one run per
/// request and plane) barely moves and odma's (a few) moves less; the tie is searched from
/// 0 ns, bracketed from the preset's cost (find_tie).
void print_break_even(const cli& c, const device_preset& dev, const workload& w,
                      const odma::predict::ngram* trained) {
    std::vector<std::string> paged;
    for (const auto& p : c.policies)
        if (paged_block_tokens(p, c.po.block_tokens)) paged.push_back(p);
    if (paged.empty()) paged = {"paged-16", "paged-128"};
    std::vector<std::string> contiguous;
    for (const auto& p : c.policies)
        if (p == "odma-strict" || p == "odma") contiguous.push_back(p);
    if (contiguous.empty()) contiguous = {"odma-strict", "odma"};
    tools::table t({"device", "TP", "policy", "baseline", "preset ns", "break-even ns",
                    "policy TPS", "paged TPS", "replays"});
    for (const auto& o : contiguous)
        for (const auto& p : paged) {
            const auto at = [&](double run_cost_ns) {
                device_preset d = dev;
                d.memory.discontinuity_ns = run_cost_ns;
                return tps_of(c, d, c.so, o, p, w, trained);
            };
            const tie_search s =
                find_tie(at, 0.0, std::max(1.0, dev.memory.discontinuity_ns), 1e6, "ns");
            t.row()
                .add(dev.name)
                .add(double(c.tensor_parallel), 0)
                .add(o)
                .add(p)
                .add(dev.memory.discontinuity_ns, 2)
                .add(s.verdict)
                .add(s.tie.candidate, 0)
                .add(s.tie.baseline, 0)
                .add(double(s.replays), 0);
        }
    t.print(std::cout);
}

/// --swap-crossover: for each policy of --policies, the host-link bandwidth (GB/s per
/// direction) above which swap preemption beats recompute on TPS. Recompute does not use the
/// link, so it is replayed once; swap gains with the bandwidth (find_tie from 0.01 GB/s,
/// bracketed from 1 GB/s). The preset's own link is shown beside it.
void print_swap_crossover(const cli& c, const device_preset& dev, const workload& w,
                          const odma::predict::ngram* trained) {
    tools::table t({"device", "policy", "preset GB/s", "crossover GB/s", "swap TPS",
                    "recompute TPS", "recomputed / output", "replays"});
    serving_options recompute = c.so, swap = c.so;
    recompute.preemption = preemption_mode::recompute;
    swap.preemption = preemption_mode::swap;
    for (const auto& p : c.policies) {
        const serving_model sm =
            make_serving_model(find_model(model_for(c, dev)), dev, c.tensor_parallel);
        const replay_result base = run_policy(p, w, sm, recompute, c.po, trained);
        const auto at = [&](double gbps) {
            device_preset d = dev;
            d.host_link_gbps = gbps;
            return tps_pair{tps_of(c, d, swap, p, w, trained), base.metrics.tps};
        };
        const tie_search s = find_tie(at, 0.01, 1.0, 1e5, "GB/s");
        t.row()
            .add(dev.name)
            .add(p)
            .add(dev.host_link_gbps, 1)
            .add(s.verdict)
            .add(s.tie.candidate, 0)
            .add(s.tie.baseline, 0)
            .add_percent(double(base.metrics.recomputed_tokens) /
                             double(std::max<std::uint64_t>(1, base.metrics.generated_tokens)),
                         1)
            .add(double(s.replays + 1), 0);
    }
    t.print(std::cout);
}

}  // namespace

int main(int argc, char** argv) try {
    cli c = parse_args(argc, argv);
    const auto started = std::chrono::steady_clock::now();
    const std::string path = resolve_trace(c.trace);
    const tools::trace tr = tools::load_trace(path);
    // A Mooncake trace: long contexts served by the decode instances of a disaggregated
    // deployment, as Mooncake itself serves them; flags given on the command line win.
    const bool mooncake = tools::ends_with(path, ".jsonl");
    if (mooncake) {
        if (!c.max_context_given) c.wo.max_context = 131072;
        if (!c.max_new_given) c.wo.max_new_tokens = 1024;
        if (!c.prefill_given) c.so.remote_prefill = true;
    }
    const workload w = make_workload(tr, c.wo);
    if (w.requests.empty()) throw std::invalid_argument(path + ": no request to replay");

    bool need_model = c.break_even || c.swap_crossover;
    for (const auto& p : c.policies)
        need_model = need_model || policy_uses_predictor(p);
    std::optional<odma::predict::ngram> trained;
    if (need_model) trained = train_ngram(w, c.wo.seed);

    const progress_bar bar(c.progress);
    std::ostringstream json;
    json << "{\n  \"trace\": " << tools::table::json_string(path)
         << ",\n  \"replayed_requests\": " << w.requests.size()
         << ",\n  \"training_requests\": " << w.training.size()
         << ",\n  \"output_tokens\": " << w.output_tokens()
         << ",\n  \"skipped_prompts\": " << w.skipped_prompts
         << ",\n  \"clipped_outputs\": " << w.clipped_outputs << ",\n  \"devices\": [";

    if (!c.json) {
        std::cout << "trace      " << path << ": " << w.requests.size() << " requests replayed ("
                  << w.output_tokens() << " output tokens), " << w.training.size()
                  << " train the predictor\n"
                  << "           "
                  << (w.real_arrivals ? "real arrival times, speedup " + num(w.speedup)
                      : w.rate > 0    ? "Poisson arrivals at " + num(w.rate) + " req/s"
                                      : std::string("all requests at time 0 (offline throughput)"))
                  << "; max_new_tokens " << w.max_new_tokens << ", max context " << w.max_context
                  << "; " << w.skipped_prompts << " prompts skipped, " << w.clipped_outputs
                  << " answers cut (over train and replay)\n";
        if (c.so.remote_prefill)
            std::cout << "           prefill remote: the decode instance of a disaggregated "
                         "deployment (prompts arrive prefilled"
                      << (mooncake && !c.prefill_given ? ", as Mooncake serves this trace" : "")
                      << "; --prefill local to prefill here)\n";
    }

    for (std::size_t d = 0; d < c.devices.size(); ++d) {
        device_preset dev = find_device(c.devices[d]);
        if (c.compute_efficiency > 0) dev.compute_efficiency = c.compute_efficiency;
        if (c.host_link_gbps > 0) dev.host_link_gbps = c.host_link_gbps;
        if (c.swap_crossover) {
            std::cout << "\n";
            print_swap_crossover(c, dev, w, trained ? &*trained : nullptr);
            continue;
        }
        if (c.break_even) {
            std::cout << "\n";
            print_break_even(c, dev, w, trained ? &*trained : nullptr);
            continue;
        }
        if (c.run_cost_ns >= 0) dev.memory.discontinuity_ns = c.run_cost_ns;
        const serving_model sm =
            make_serving_model(find_model(model_for(c, dev)), dev, c.tensor_parallel);
        const std::vector<std::string> policies =
            dev.slow_tier && !c.policies_given ? tier_policy_names() : c.policies;
        const std::string label = dev.name + " " + std::to_string(policies.size()) + " policies";
        bar.show(label, 0.0);
        const std::vector<replay_result> results = run_policies(
            policies, w, sm, c.so, c.po, trained ? &*trained : nullptr,
            [&](double f) { bar.show(label, f); }, c.parallel);
        bar.clear();
        const tools::table t = results_table(results);
        if (c.json) {
            json << (d ? "," : "") << "\n    {\"device\": " << tools::table::json_string(dev.name)
                 << ", \"tensor_parallel\": " << sm.tensor_parallel
                 << ", \"run_cost_ns\": " << sm.device.memory.discontinuity_ns
                 << ", \"kv_bytes\": " << sm.kv_bytes()
                 << ", \"kv_tokens\": " << sm.kv_bytes() / sm.model.bytes_per_token()
                 << ", \"weights_read_ms\": " << sm.weights_ns * 1e-6 << ", \"results\": ";
            std::ostringstream rows;
            t.to_json(rows, 6);
            json << rows.str() << "}";
        } else {
            std::cout << "\ndevice     " << dev.name << " (" << dev.source << ")\n"
                      << "           run cost " << num(sm.device.memory.discontinuity_ns)
                      << " ns per discontinuity"
                      << (c.run_cost_ns >= 0 ? " (--run-cost-ns)" : " (the preset's)")
                      << "; tensor parallel " << sm.tensor_parallel
                      << (sm.tensor_parallel > 1 ? " cards (one simulated; all-reduce not modelled)"
                                                 : " card")
                      << "\n"
                      << "           model " << sm.model.name << "; KV cache "
                      << gb(double(sm.kv_bytes())) << " = "
                      << sm.kv_bytes() / sm.model.bytes_per_token() << " tokens; weights read "
                      << sm.weights_ns * 1e-6 << " ms per iteration; max_num_seqs "
                      << c.so.max_num_seqs << ", max_batched_tokens " << c.so.max_batched_tokens
                      << "\n";
            if (dev.slow_tier)
                std::cout << "           slow tier " << dev.slow_tier->name << ": KV "
                          << gb(double(dev.slow_tier->kv_bytes())) << " = "
                          << dev.slow_tier->kv_bytes() / sm.model.bytes_per_token()
                          << " tokens; read at "
                          << num(std::min(dev.slow_tier->memory.peak_bytes_per_ns(),
                                          dev.slow_tier->link_gbps))
                          << " GB/s; tier-dynamic's slow read share " << num(slow_read_share(dev))
                          << "\n";
            std::cout << "\n";
            t.print(std::cout);
            bool slow_tier_used = false;
            for (const auto& r : results)
                slow_tier_used =
                    slow_tier_used || r.metrics.slow_kv_bytes > 0 || r.metrics.tier_moved_bytes > 0;
            if (dev.slow_tier && !slow_tier_used)
                std::cout << "\nnote: the fast tier held every lease, so the tier policies had "
                             "nothing to decide; a heavier load (--speedup) makes them differ "
                             "(docs/tiers.md)\n";
        }
        if (!c.plot_dir.empty()) write_plots(c.plot_dir, dev.name, results, w);
    }
    if (c.json) {
        json << "\n  ]\n}\n";
        std::cout << json.str();
    } else {
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::cout << "\n(simulated in " << std::fixed << std::setprecision(1) << s << " s";
        if (!c.plot_dir.empty()) std::cout << "; plots in " << c.plot_dir;
        std::cout << ")\n";
    }
    return 0;
} catch (const std::exception& e) {
    std::cerr << "odma-replay: " << e.what() << "\n";
    return 2;
}
