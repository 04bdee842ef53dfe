// Cost of the length predictors and of recalibrating learned buckets.
//
//  - ngram_predict: one predict() on a ~300-token prompt (about 1,300 characters of English),
//    with a model trained on synthetic prompts so that the rows it reads are real weights.
//  - prompt_quantile_predict: one predict() (no text).
//  - online_histogram_recalibrate: optimal boundaries of a 4,096-bin histogram into 16 buckets.
#include <odma/bucket/online_histogram.hpp>
#include <odma/bucket/optimal_boundaries.hpp>
#include <odma/predict/ngram.hpp>
#include <odma/predict/prompt_quantile.hpp>
#include <odma/support/random.hpp>

#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace {

// A deterministic pseudo-English prompt of `words` words (~1.3 tokens per word).
std::string prompt(std::uint64_t seed, std::size_t words) {
    static const char* vocabulary[] = {
        "explain", "the",     "difference", "between", "a",        "list",   "of",
        "write",   "an",      "essay",      "about",   "history",  "python", "function",
        "that",    "returns", "summary",    "please",  "detailed", "short",  "answer",
        "what",    "is",      "how",        "do",      "i",        "make",   "recipe",
        "for",     "with",    "examples",   "and",     "why",      "does",   "code",
        "story",   "poem",    "translate",  "into",    "french",   "table",  "compare",
        "steps",   "should",  "my",         "data",    "model",    "memory", "cache"};
    odma::support::splitmix64 rng(seed);
    std::string s;
    for (std::size_t i = 0; i < words; ++i) {
        s += vocabulary[rng.below(std::size(vocabulary))];
        s += (i % 17 == 16) ? ". " : " ";
    }
    return s;
}

// A model trained on synthetic prompts with the given feature settings.
odma::predict::ngram train_model(const odma::predict::ngram::options& o) {
    {
        std::vector<std::string> texts;
        for (std::uint64_t i = 0; i < 2000; ++i)
            texts.push_back(prompt(i, 20 + i % 200));
        std::vector<odma::predict::training_sample> samples;
        odma::support::splitmix64 rng(7);
        for (std::uint64_t i = 0; i < texts.size(); ++i)
            samples.push_back({{.id = i,
                                .prompt_tokens = std::uint32_t(texts[i].size() / 4),
                                .max_new_tokens = 4096,
                                .prompt_text = texts[i]},
                               std::uint32_t(10 + rng.below(2000))});
        odma::predict::ngram m;
        m.train(samples, o);
        return m;
    }
}

// Feature settings: 0 the defaults (words + word affixes), 1 + word pairs, 2 every character
// window instead of affixes, 3 words only.
odma::predict::ngram::options settings(std::int64_t variant) {
    odma::predict::ngram::options o;
    o.epochs = 1;
    if (variant == 1) o.word_pairs = true;
    if (variant == 2) o.char_mode = odma::predict::char_grams::windows;
    if (variant == 3) o.char_ngram = 0;
    return o;
}

void ngram_predict(benchmark::State& state) {
    const auto model = train_model(settings(state.range(0)));
    const std::string text = prompt(12345, 230);  // ~300 tokens
    const odma::request r{
        .id = 1, .prompt_tokens = 300, .max_new_tokens = 4096, .prompt_text = text, .tag = 3};
    for (auto _ : state)
        benchmark::DoNotOptimize(model.predict(r));
    state.counters["prompt_bytes"] = double(text.size());
}
BENCHMARK(ngram_predict)->ArgName("features")->Arg(0)->Arg(1)->Arg(2)->Arg(3);

void prompt_quantile_predict(benchmark::State& state) {
    odma::predict::prompt_quantile pq;
    odma::support::splitmix64 rng(3);
    for (std::uint32_t i = 0; i < 20000; ++i)
        pq.observe({.id = i,
                    .prompt_tokens = std::uint32_t(1 + rng.below(4000)),
                    .max_new_tokens = 4096,
                    .tag = std::uint32_t(rng.below(4))},
                   std::uint32_t(1 + rng.below(2000)));
    const odma::request r{.id = 1, .prompt_tokens = 300, .max_new_tokens = 4096, .tag = 2};
    for (auto _ : state)
        benchmark::DoNotOptimize(pq.predict(r));
}
BENCHMARK(prompt_quantile_predict);

void online_histogram_recalibrate(benchmark::State& state) {
    const auto bins = static_cast<std::uint32_t>(state.range(0));
    const auto k = static_cast<std::uint32_t>(state.range(1));
    odma::bucket::online_histogram h(k, bins, {.bins = bins, .warmup = ~0u});
    odma::support::splitmix64 rng(5);
    for (int i = 0; i < 200000; ++i) {  // log-normal-ish lengths
        const double u = rng.unit() + rng.unit() + rng.unit() - 1.5;
        h.observe(std::uint32_t(std::clamp(std::exp(5.5 + 1.2 * u), 1.0, double(bins))));
    }
    for (auto _ : state) {
        h.recalibrate();
        benchmark::DoNotOptimize(h.boundaries().data());
    }
}
BENCHMARK(online_histogram_recalibrate)->Args({4096, 16})->Args({4096, 64})->Args({1024, 10});

void online_histogram_observe(benchmark::State& state) {
    odma::bucket::online_histogram h(16, 8192);
    odma::support::splitmix64 rng(9);
    for (auto _ : state)
        h.observe(std::uint32_t(1 + rng.below(8192)));
}
BENCHMARK(online_histogram_observe);

}  // namespace

BENCHMARK_MAIN();
