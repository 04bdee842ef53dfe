// odma_internal/replay/presets.hpp - the model and device presets the serving engine uses.
//
// Every figure carries its source. Where a figure is an assumption rather than a published
// number (the sustained share of peak compute, the activation reserve), it says so, and the
// command line can change it.
#pragma once

#include <odma/memory/memory_model.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace odma::replay {

/// A decoder-only transformer, as far as serving cost goes.
struct model_preset {
    std::string name;
    std::uint32_t layers = 0;
    std::uint32_t q_heads = 0;
    std::uint32_t kv_heads = 0;
    std::uint32_t head_dim = 0;
    std::uint32_t dtype_bytes = 2;
    double params = 0;               ///< parameters (all of them are read once per forward pass)
    double weight_bytes = 0;         ///< bytes of weights on the device
    std::uint32_t hidden = 0;        ///< hidden size (activations)
    std::uint32_t intermediate = 0;  ///< MLP intermediate size (activations)
    std::uint32_t vocab = 0;         ///< vocabulary (logits of sampled tokens)

    /// KV bytes of one token: K and V, every layer, every KV head.
    std::size_t bytes_per_token() const {
        return std::size_t(2) * layers * kv_heads * head_dim * dtype_bytes;
    }
    /// One plane per (layer, K/V): each is one contiguous run per request in odma.
    std::uint32_t planes() const { return 2 * layers; }
    /// Matmul FLOPs of one token through the whole model (2 per multiply-add).
    double linear_flops_per_token() const { return 2.0 * params; }
    /// Peak activation bytes of one forward pass over `tokens` batched tokens of which
    /// `sampled` produce logits: per token the MLP's live tensors (input, gate, up and their
    /// product: hidden + 3 x intermediate) and the residual stream (hidden), in the model's
    /// dtype; per sampled token its fp32 logits. An estimate of what a profiling run measures
    /// (vLLM sizes its activation reserve with one), not a measurement; docs/tiers.md.
    double activation_bytes(double tokens, double sampled) const {
        return tokens * (2.0 * hidden + 3.0 * intermediate) * dtype_bytes + sampled * 4.0 * vocab;
    }
    /// Attention FLOPs of one token attending to `context` earlier tokens: QK^T and AV over
    /// every query head and layer, 2 x 2 x heads x head_dim per context token.
    double attention_flops(double context) const {
        return 4.0 * double(layers) * q_heads * head_dim * context;
    }
};

/// DeepSeek-R1-Distill-Qwen-7B (Qwen2 architecture): 28 layers, 28 query heads, 4 KV heads,
/// head_dim 128, bf16 -> 57,344 KV bytes per token; about 7.6 B parameters, ~15.2 GB in bf16
/// (model card / config.json of deepseek-ai/DeepSeek-R1-Distill-Qwen-7B).
inline model_preset r1_distill_qwen_7b() {
    model_preset m;
    m.name = "r1-distill-qwen-7b";
    m.layers = 28;
    m.q_heads = 28;
    m.kv_heads = 4;
    m.head_dim = 128;
    m.dtype_bytes = 2;
    m.params = 7.6e9;
    m.weight_bytes = 15.2e9;
    m.hidden = 3584;  // config.json: hidden_size, intermediate_size, vocab_size
    m.intermediate = 18944;
    m.vocab = 152064;
    return m;
}

/// Llama 3.1 8B (the model Fang et al. serve on the GH200): 32 layers, 32 query heads, 8 KV
/// heads, head_dim 128, bf16 -> 131,072 KV bytes per token; 8.03 B parameters, ~16.1 GB in bf16
/// (config.json of meta-llama/Llama-3.1-8B; Llama 3 herd paper, Table 3).
inline model_preset llama_31_8b() {
    model_preset m;
    m.name = "llama-3.1-8b";
    m.layers = 32;
    m.q_heads = 32;
    m.kv_heads = 8;
    m.head_dim = 128;
    m.dtype_bytes = 2;
    m.params = 8.03e9;
    m.weight_bytes = 16.06e9;
    m.hidden = 4096;  // config.json: hidden_size, intermediate_size, vocab_size
    m.intermediate = 14336;
    m.vocab = 128256;
    return m;
}

/// One card's slice of `m` under tensor parallelism over `cards` (Megatron-style: attention
/// split by heads, MLP by columns/rows): each card holds 1/cards of the query and KV heads,
/// so 1/cards of the KV bytes per token, 1/cards of the weights, and does 1/cards of the
/// FLOPs. The all-reduces between cards are not modelled. Throws std::invalid_argument unless
/// `cards` divides the KV heads and the query heads. cards == 1 returns `m` unchanged.
inline model_preset tensor_parallel_slice(model_preset m, std::uint32_t cards) {
    if (cards == 0 || m.kv_heads % cards != 0 || m.q_heads % cards != 0)
        throw std::invalid_argument("tensor parallelism " + std::to_string(cards) + ": " + m.name +
                                    " has " + std::to_string(m.kv_heads) + " KV heads and " +
                                    std::to_string(m.q_heads) +
                                    " query heads; the card count must divide both");
    if (cards == 1) return m;
    m.name += " (1/" + std::to_string(cards) + " per card)";
    m.q_heads /= cards;
    m.kv_heads /= cards;
    m.params /= cards;
    m.weight_bytes /= cards;
    m.intermediate /= cards;  // column/row-split MLP; the hidden stream is replicated
    m.vocab /= cards;         // vocabulary-parallel logits
    return m;
}

/// A second, larger and slower memory the accelerator reads KV from directly: LPDDR5X behind
/// NVLink-C2C on a GH200, host DDR behind PCIe. The accelerator reads it at the lower of the
/// tier's DRAM rate (its cost model) and the link's rate, and moves between the tiers cross the
/// link (docs/tiers.md).
struct slow_tier_preset {
    std::string name;             ///< e.g. "LPDDR5X over NVLink-C2C"
    memory::memory_model memory;  ///< the tier's DRAM; capacity_bytes is its size
    double link_gbps = 0;         ///< link bandwidth per direction, bytes per ns (= GB/s)
    /// Share of the tier given to KV (an assumption: the host OS and the CPU's own work keep
    /// the rest).
    double kv_fraction = 0.9;

    std::uint64_t kv_bytes() const {
        return static_cast<std::uint64_t>(kv_fraction * double(memory.capacity_bytes));
    }
};

/// An accelerator: its memory (capacity and cost model), its compute, and how much of its
/// memory a serving engine leaves to the KV cache.
struct device_preset {
    std::string name;
    std::string source;  ///< where the figures come from, for --help and the README
    /// The DRAM cost model; its capacity is the device memory, its peak the pin bandwidth.
    memory::memory_model memory;
    /// Dense BF16 peak, FLOP/s.
    double peak_flops = 0;
    /// Share of peak the model's matmuls sustain (an assumption: 0.5 is a typical serving MFU
    /// for prefill; decode is memory-bound and rarely reaches it anyway).
    double compute_efficiency = 0.5;
    /// Share of device memory the engine may use: vLLM's gpu_memory_utilization default.
    double memory_fraction = 0.90;
    /// Bytes kept for activations, logits and the runtime within that share (an assumption;
    /// about what a 2,048-token chunk of a 7B model needs, with headroom).
    double activation_reserve_bytes = 1024.0 * 1024 * 1024;

    /// Bandwidth of the link to host memory, one direction, bytes per ns (= GB/s): what a swap
    /// of KV to the host and back costs (serving_options::preemption = swap).
    double host_link_gbps = 0;

    /// When > 0, the KV-cache size in bytes instead of the computed one (tests, what-if runs).
    std::uint64_t kv_bytes_override = 0;

    /// The model replayed on it unless --model says otherwise.
    std::string default_model = "r1-distill-qwen-7b";

    /// A slow tier the KV cache may also live in (the tier-* policies); none for a device
    /// whose KV lives in its own memory only.
    std::optional<slow_tier_preset> slow_tier;

    std::uint64_t memory_bytes() const { return memory.capacity_bytes; }
    double compute_flops_per_ns() const { return peak_flops * compute_efficiency * 1e-9; }

    /// KV-cache memory: memory_fraction x memory - weights - activation reserve (what vLLM
    /// computes at start-up from its memory profile). Throws when nothing is left.
    std::uint64_t kv_bytes(const model_preset& m) const {
        if (kv_bytes_override) return kv_bytes_override;
        const double kv =
            memory_fraction * double(memory_bytes()) - m.weight_bytes - activation_reserve_bytes;
        if (!(kv > double(m.bytes_per_token())))
            throw std::invalid_argument("device " + name +
                                        " has no memory left for the KV cache of " + m.name);
        return static_cast<std::uint64_t>(kv);
    }
};

/// A device preset from its parts; the other fields keep their defaults.
inline device_preset make_device(std::string name, std::string source, memory::memory_model memory,
                                 double peak_flops, double host_link_gbps) {
    device_preset d;
    d.name = std::move(name);
    d.source = std::move(source);
    d.memory = std::move(memory);
    d.peak_flops = peak_flops;
    d.host_link_gbps = host_link_gbps;
    return d;
}

/// Cambricon MLU370-X4: 24 GB LPDDR5 at 307.2 GB/s (vendor spec). BF16 peak 96 TFLOPS: the
/// figure Cambricon gives for its MLUarch03 cards (the MLU370-X8 announcement lists FP32 32,
/// FP16 96 and BF16 96 TFLOPS); the X4's own sheet could not be consulted offline, so treat it
/// as the family's figure and check it against the sheet.
inline device_preset mlu370_x4() {
    return make_device("mlu370-x4",
                       "Cambricon MLU370-X4: 24 GB LPDDR5, 307.2 GB/s (vendor spec), 96 TFLOPS "
                       "BF16 (MLUarch03 family figure); "
                       "DRAM timing: odma::memory::memory_model::lpddr5_6400(); host link PCIe "
                       "4.0 x16, 31.5 GB/s per direction (16 GT/s x 16 lanes, 128b/130b)",
                       memory::memory_model::lpddr5_6400(), 96e12, 31.5);
}

/// NVIDIA H100 SXM5: 80 GB HBM3 at ~3.35 TB/s, BF16 dense 989 TFLOPS (NVIDIA H100 datasheet).
/// For contrast: HBM barely notices scattered KV.
inline device_preset h100_hbm3() {
    return make_device("h100-hbm3",
                       "NVIDIA H100 SXM5: 80 GB HBM3, 3.35 TB/s, 989 TFLOPS BF16 dense (NVIDIA "
                       "datasheet); DRAM timing: odma::memory::memory_model::hbm3(); host link "
                       "PCIe 5.0 x16, 63 GB/s per direction (32 GT/s x 16 lanes, 128b/130b)",
                       memory::memory_model::hbm3(), 989e12, 63.0);
}

/// This development machine's CPU as the accelerator: a 2-vCPU AMD EPYC virtual machine (the
/// one bench/README.md's figures come from), 23 GiB of RAM, fp32 attention on 2 cores. Measured
/// with odma_bench_attention (bench/README.md, "Decode attention on the host"): the KV stream
/// rate of the one-run layout and the cost of one more run. Its DRAM layer is
/// memory_model::host_ddr5, a DDR5-4800-class device paced to stream the measured rate.
inline device_preset host_epyc() {
    // Measured on one core (thread CPU time; 4 GiB arena, 4 KiB pages, load average 4-6), then
    // scaled to the two cores on the assumption that they overlap perfectly (the two-thread
    // wall-clock run on the shared machine was too noisy to confirm it; bench/README.md):
    constexpr double stream_gbps = 2 * 7.19;   // one_run: 7.19 GB/s of KV per core
    constexpr double per_run_ns = 2014.0 / 2;  // least squares: 2,014 ns per run per core
    constexpr double core_gflops = 151;        // FP32 FMA peak of one core (median of 7 runs)
    return make_device(
        "host-epyc",
        "this development machine's CPU as the accelerator (2-vCPU AMD EPYC VM, 23 GiB): "
        "measured by odma_bench_attention on one core: KV stream 7.19 GB/s (fp32 decode "
        "attention, one run per request), 2,014 ns per extra run (4 KiB pages), FP32 FMA peak "
        "151 GFLOP/s; assumed: 2 cores = 2x one core (14.4 GB/s, 1,007 ns per run device-wide, "
        "302 GFLOP/s), BF16 no faster than FP32 (AVX512_BF16 could double it), DDR5-4800-class "
        "DRAM timings (memory_model::host_ddr5), 23 GiB of device memory, compute efficiency "
        "0.5; swap target: host memory itself, at the measured KV stream rate (assumed)",
        memory::memory_model::host_ddr5(stream_gbps, 23ull << 30, per_run_ns),
        2 * core_gflops * 1e9, stream_gbps);
}

/// NVIDIA GH200 Grace Hopper Superchip (96 GB HBM3 version), NVIDIA's GH200 datasheet and
/// Grace Hopper architecture whitepaper: Hopper GPU with 96 GB HBM3 at 4 TB/s (six stacks:
/// 192 pseudo-channels at 5.2 Gb/s = 3.99 TB/s; the H100's HBM3 timings) and 989 TFLOPS BF16
/// dense; Grace CPU with 480 GB LPDDR5X at up to 512 GB/s (modelled as 30 x16 channels of
/// LPDDR5X-8533, 512 GB/s); NVLink-C2C 900 GB/s total, 450 GB/s per direction, between them.
/// Fang et al. study this machine with Llama 3.1 8B.
inline device_preset gh200() {
    memory::memory_model hbm = memory::memory_model::hbm3();
    hbm.name = "hbm3-gh200";
    hbm.channels = 192;
    hbm.capacity_bytes = 96ull << 30;
    memory::memory_model lpddr = memory::memory_model::lpddr5x_8533();
    lpddr.name = "lpddr5x-grace";
    lpddr.channels = 30;
    lpddr.capacity_bytes = 480ull << 30;
    device_preset d = make_device(
        "gh200",
        "NVIDIA GH200 (datasheet, Grace Hopper whitepaper): 96 GB HBM3 at 4 TB/s, 989 TFLOPS "
        "BF16 dense; slow tier: Grace's 480 GB LPDDR5X at 512 GB/s over NVLink-C2C, 450 GB/s "
        "per direction; host link for swaps: the same C2C",
        hbm, 989e12, 450.0);
    d.slow_tier = slow_tier_preset{"LPDDR5X over NVLink-C2C", lpddr, 450.0, 0.9};
    d.default_model = "llama-3.1-8b";
    return d;
}

/// A host's DDR5 as a slow tier: a server-class stream rate far above what any PCIe link
/// carries (an assumption; the link is the bottleneck), `capacity_bytes` of it, run starts
/// costing what they cost the accelerator that reads them (`discontinuity_ns`).
inline memory::memory_model host_ddr5_tier(std::uint64_t capacity_bytes, double discontinuity_ns) {
    memory::memory_model m =
        memory::memory_model::host_ddr5(200.0, capacity_bytes, discontinuity_ns);
    m.name = "host-ddr5-tier";
    return m;
}

/// `d` with `capacity_bytes` of the host's DDR5 (an assumption) as a slow tier behind `link`
/// (`link_gbps` per direction), 90% of it for KV: what h100-host-ddr5 and mlu370-x4-host add.
inline device_preset with_host_tier(device_preset d, std::string name, std::uint64_t capacity_bytes,
                                    const std::string& link, double link_gbps) {
    d.name = std::move(name);
    d.source += "; slow tier: " + std::to_string(capacity_bytes >> 30) +
                " GiB host DDR5 (assumed) over " + link;
    d.slow_tier =
        slow_tier_preset{"host DDR5 over " + link,
                         host_ddr5_tier(capacity_bytes, d.memory.discontinuity_ns), link_gbps, 0.9};
    return d;
}

/// h100-hbm3 with the host's DDR5 as a slow tier behind PCIe 5.0 x16 (63 GB/s per direction):
/// 512 GiB of host memory (an assumption: a 2-socket server's DIMMs, a share of which the
/// engine may use).
inline device_preset h100_host_ddr5() {
    return with_host_tier(h100_hbm3(), "h100-host-ddr5", 512ull << 30, "PCIe 5.0 x16, 63 GB/s",
                          63.0);
}

/// mlu370-x4 with the host's memory as a slow tier behind PCIe 4.0 x16 (31.5 GB/s per
/// direction): 256 GiB of host memory (an assumption).
inline device_preset mlu370_x4_host() {
    return with_host_tier(mlu370_x4(), "mlu370-x4-host", 256ull << 30, "PCIe 4.0 x16, 31.5 GB/s",
                          31.5);
}

inline std::vector<std::string> model_names() {
    return {"r1-distill-qwen-7b", "llama-3.1-8b"};
}
inline std::vector<std::string> device_names() {
    return {"mlu370-x4", "h100-hbm3", "host-epyc", "gh200", "h100-host-ddr5", "mlu370-x4-host"};
}

inline model_preset find_model(std::string_view name) {
    if (name == "r1-distill-qwen-7b") return r1_distill_qwen_7b();
    if (name == "llama-3.1-8b") return llama_31_8b();
    throw std::invalid_argument("unknown model preset '" + std::string(name) +
                                "' (known: r1-distill-qwen-7b, llama-3.1-8b)");
}

inline device_preset find_device(std::string_view name) {
    if (name == "mlu370-x4") return mlu370_x4();
    if (name == "h100-hbm3") return h100_hbm3();
    if (name == "host-epyc") return host_epyc();
    if (name == "gh200") return gh200();
    if (name == "h100-host-ddr5") return h100_host_ddr5();
    if (name == "mlu370-x4-host") return mlu370_x4_host();
    throw std::invalid_argument("unknown device preset '" + std::string(name) +
                                "' (known: mlu370-x4, h100-hbm3, host-epyc, gh200, "
                                "h100-host-ddr5, mlu370-x4-host)");
}

}  // namespace odma::replay
