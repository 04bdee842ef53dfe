// Learned policies in the allocator: an ngram length predictor and online_histogram buckets.
// The README's "Predicting lengths" example, complete. Builds and runs in CI.
#include <odma/odma.hpp>

#include <cstdio>
#include <string>
#include <vector>

int main() {
    // 1. Train the text model on finished requests (here a toy history: "essay" prompts answer
    //    long, "yes or no" prompts answer short). A real deployment trains on its own logs, or
    //    loads a model saved by odma-eval --save-model.
    std::vector<std::string> prompts;
    std::vector<odma::predict::training_sample> history;
    for (int i = 0; i < 400; ++i)
        prompts.push_back(i % 2 ? "write an essay about topic " + std::to_string(i)
                                : "answer yes or no: is " + std::to_string(i) + " even?");
    for (std::uint64_t i = 0; i < prompts.size(); ++i)
        history.push_back(
            {{.id = i, .prompt_tokens = 12, .max_new_tokens = 2048, .prompt_text = prompts[i]},
             std::uint32_t(i % 2 ? 700 + i % 200 : 3 + i % 4)});
    odma::predict::ngram model;
    model.train(history, {.epochs = 4});

    // 2. Compose: reserve the predicted 95% quantile (overflow_risk 0.05), rounded up to 16
    //    buckets learned online from what requests really needed.
    const odma::config cfg{.bytes_per_token = 57344,
                           .max_tokens = 4096,
                           .safety_pool_fraction = 0.10,
                           .overflow_risk = 0.05};
    odma::allocator kv(cfg, std::move(model),
                       odma::bucket::online_histogram(16, cfg.max_tokens, {.warmup = 64}),
                       odma::backing::host(std::size_t(2) << 30));

    // 3. Serve: admit with the prompt text, release with the true length (both policies learn).
    const std::string essay = "write an essay about memory allocators";
    const std::string yes_no = "answer yes or no: is 7 prime?";
    std::uint32_t essay_capacity = 0, yes_no_capacity = 0;
    for (std::uint64_t id = 0; id < 200; ++id) {
        const bool long_one = id % 2;
        const odma::request r{.id = id,
                              .prompt_tokens = 12,
                              .max_new_tokens = 2048,
                              .prompt_text = long_one ? essay : yes_no};
        auto lease = kv.admit(r);
        if (!lease) return 1;
        (long_one ? essay_capacity : yes_no_capacity) = kv.region_of(*lease)->capacity;
        const std::uint32_t generated = long_one ? 750 : 4;
        if (!kv.extend(*lease, r.prompt_tokens + generated)) return 1;
        if (!kv.release(*lease, generated)) return 1;
    }
    std::printf("reservation for an essay: %u tokens, for a yes/no question: %u tokens\n",
                essay_capacity, yes_no_capacity);
    std::printf("bucket boundaries after %llu recalibrations:",
                (unsigned long long)kv.bucket_policy().recalibrations());
    for (const auto b : kv.bucket_policy().boundaries())
        std::printf(" %u", b);
    std::printf("\n");
    // A short answer must not reserve like a long one.
    return kv.check() && yes_no_capacity < essay_capacity / 10 ? 0 : 2;
}
