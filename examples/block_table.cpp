// A lease read two ways: by a paged kernel through its block table, and by a run-aware kernel
// through its runs. Both must see the same tokens in the same order.
//
// The contract (allocator::block_table, config::run_alignment):
//   - With run_alignment = A, every run of every lease starts at a multiple of A tokens and
//     every run but the last holds a multiple of A tokens.
//   - For any K that divides A, block b is tokens [b*K, (b+1)*K) of each plane: its bytes in
//     plane p start at byte_offset(p, b*K). This is exactly the "KV cache = [num_blocks,
//     block_size, ...] per layer" view of a paged kernel (vLLM, FlashInfer, vllm-mlu) when one
//     plane is one layer's K or V.
//   - block_table(lease, K, out) writes the ids of the blocks holding the lease's used tokens,
//     in token order. Ids are consecutive inside each run: a lease of one run has the table
//     first, first+1, ..., first+n-1, so a kernel that detects consecutive ids can read long
//     runs, and one that does not reads the lease unchanged.
//   - Ids are valid until the next extend() that returns growth::migrated; appended runs and
//     in-place growth only add ids at the end.
#include <odma/allocator.hpp>
#include <odma/backing/host.hpp>
#include <odma/bucket/fixed.hpp>
#include <odma/predict/callable.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <span>
#include <vector>

namespace {

constexpr std::uint32_t kernel_block = 16;  // tokens per block of the paged kernel
constexpr std::size_t head_bytes = 64;      // one plane's bytes per token in this toy

// A stand-in "kernel": sums token values, reading each token's first byte.
std::uint64_t read_paged(const std::byte* plane_base, std::span<const std::uint32_t> table,
                         std::uint32_t tokens) {
    std::uint64_t sum = 0;
    for (std::uint32_t t = 0; t < tokens; ++t) {
        const std::uint32_t block = table[t / kernel_block];
        const std::size_t token_slot = std::size_t(block) * kernel_block + t % kernel_block;
        sum = sum * 31 + std::uint8_t(plane_base[token_slot * head_bytes]);
    }
    return sum;
}

}  // namespace

int main() {
    // Every request is predicted to generate 64 tokens, so the ones below outgrow it.
    const auto predict_64 = [](const odma::request&) { return 64; };
    using predictor = odma::predict::callable<decltype(predict_64)>;
    using kv_t = odma::allocator<predictor, odma::bucket::fixed, odma::backing::host>;
    const odma::config cfg{.bytes_per_token = 2 * head_bytes,  // two planes: K and V
                           .max_tokens = 1024,
                           .safety_pool_fraction = 0.0,
                           .planes = 2,
                           .max_runs = 8,
                           .run_alignment = kernel_block};
    kv_t kv(cfg, predictor(predict_64), odma::bucket::fixed::uniform(16, 1024),
            odma::backing::host(4096 * cfg.bytes_per_token));

    // Two leases side by side, so the first must grow by further runs.
    auto a = *kv.admit({.id = 1, .prompt_tokens = 30, .max_new_tokens = 900});
    auto b = *kv.admit({.id = 2, .prompt_tokens = 30, .max_new_tokens = 900});
    std::uint32_t held = 30;
    for (; held < 300; ++held) {
        if (!kv.extend(a, held + 1)) return 1;
        if (held % 50 == 0) (void)kv.extend(b, held + 1);  // b keeps blocking a's growth
    }
    // Stamp token t of lease a with byte t in plane 0, walking its runs.
    std::uint32_t t = 0;
    (void)kv.for_each_run(a, 0, [&](std::size_t offset, std::size_t bytes) {
        for (std::size_t i = 0; i < bytes / head_bytes; ++i, ++t)
            kv.backing().address(offset + i * head_bytes)[0] = std::byte(t & 0xff);
    });

    // The paged kernel: through the block table.
    std::vector<std::uint32_t> table(64);
    const std::size_t blocks = *kv.block_table(a, kernel_block, table);
    table.resize(blocks);
    const std::byte* plane0 = kv.backing().address(kv.byte_offset(0, 0));
    const std::uint64_t paged_sum = read_paged(plane0, table, held);

    // The run-aware kernel: through the runs, one contiguous stretch each.
    std::uint64_t run_sum = 0;
    std::size_t runs = 0;
    (void)kv.for_each_run(a, 0, [&](std::size_t offset, std::size_t bytes) {
        ++runs;
        for (std::size_t i = 0; i < bytes / head_bytes; ++i)
            run_sum = run_sum * 31 + std::uint8_t(kv.backing().address(offset + i * head_bytes)[0]);
    });

    // The reference: what a contiguous copy of tokens 0..held-1 would give.
    std::uint64_t reference = 0;
    for (std::uint32_t i = 0; i < held; ++i)
        reference = reference * 31 + std::uint8_t(i & 0xff);

    std::printf("lease of %u tokens: %zu runs, %zu blocks of %u tokens; table:", held, runs, blocks,
                kernel_block);
    for (const std::uint32_t id : table)
        std::printf(" %u", id);
    std::printf("\npaged read %s, run read %s\n", paged_sum == reference ? "ok" : "WRONG",
                run_sum == reference ? "ok" : "WRONG");
    const bool ok = paged_sum == reference && run_sum == reference && runs > 1 && kv.check();
    return ok ? 0 : 1;
}
