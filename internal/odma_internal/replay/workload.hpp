// odma_internal/replay/workload.hpp - turning a trace into what the serving engine replays:
// requests with arrival times, and a disjoint set of finished requests to train predictors on.
#pragma once

#include <odma_internal/trace.hpp>

#include <odma/predict/training_sample.hpp>
#include <odma/request.hpp>
#include <odma/support/random.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace odma::replay {

/// One request to replay.
struct replay_request {
    std::uint64_t id = 0;  ///< unique within the workload (the trace's id)
    double arrival_s = 0;  ///< seconds since the start of the replay
    std::uint32_t prompt_tokens = 0;
    std::uint32_t output_tokens = 0;  ///< true generated length, after clipping (see below)
    std::string_view prompt_text;     ///< points into the trace; may be empty
    std::uint32_t tag = 0;            ///< request class (hash of the trace's tag), 0 = none

    /// What the allocator sees at admission: everything but the true length.
    odma::request as_request(std::uint32_t max_new_tokens) const {
        return {id, prompt_tokens, max_new_tokens, prompt_text, tag};
    }
};

/// How to cut a trace into a training part and a replayed part, and how requests arrive.
struct workload_options {
    /// Share of the trace replayed; the rest trains the predictors. Traces with arrival times
    /// are split in time (train on the earlier part, replay the later one); traces without are
    /// split by prompt (odma_internal/trace.hpp split_by_prompt), so no prompt is on both sides.
    double test_fraction = 0.5;
    std::uint64_t seed = 1;
    /// Traces without arrival times: Poisson arrivals at this rate (requests per second);
    /// 0 or less = every request arrives at time 0 (an offline throughput run).
    double rate = 0;
    /// Traces with arrival times: replay `speedup` times faster than recorded.
    double speedup = 1;
    /// Replay at most this many requests (0 = all), taken from the start of the replayed part.
    std::size_t max_requests = 0;
    /// Traces without arrival times: shuffle the replayed requests (seeded) instead of keeping
    /// the file order. The bundled AlpacaEval file is grouped by answering model.
    bool shuffle = true;
    /// The engine's sampling cap on generated tokens (request.max_new_tokens) and its longest
    /// sequence (config::max_tokens).
    std::uint32_t max_new_tokens = 1024;
    std::uint32_t max_context = 8192;
};

/// A replayable workload.
///
/// Lengths beyond what the engine serves are handled explicitly, the way a serving engine
/// would: a prompt that leaves no room to generate (prompt_tokens + 1 > max_context) is
/// skipped; an answer longer than max_new_tokens is cut at max_new_tokens (the engine stops
/// sampling there); an answer that would overflow the context is cut at max_context -
/// prompt_tokens. Each case is counted. Training samples are clipped the same way.
struct workload {
    std::string name;
    std::vector<replay_request> requests;  ///< ascending arrival time
    std::vector<predict::training_sample> training;
    std::uint32_t max_new_tokens = 1024;
    std::uint32_t max_context = 8192;
    bool real_arrivals = false;       ///< arrival times come from the trace (else Poisson or 0)
    double rate = 0;                  ///< Poisson rate used (0 when real or all at once)
    double speedup = 1;               ///< time compression of real arrivals
    std::size_t skipped_prompts = 0;  ///< prompts too long to serve, over both parts
    std::size_t clipped_outputs = 0;  ///< answers cut at max_new_tokens or the context

    /// Total output tokens the replay must generate.
    std::uint64_t output_tokens() const {
        std::uint64_t n = 0;
        for (const auto& r : requests)
            n += r.output_tokens;
        return n;
    }
};

namespace detail {

/// Shuffles `v` in place (Fisher-Yates) with `rng`: the same order on every platform.
template <class T>
void shuffle(std::vector<T>& v, support::splitmix64& rng) {
    for (std::size_t i = v.size(); i > 1; --i)
        std::swap(v[i - 1], v[rng.below(i)]);
}

/// An exponentially distributed gap of mean 1 / rate, by inversion: -log(1 - u) / rate
/// (std::exponential_distribution differs between standard libraries).
inline double exponential(support::splitmix64& rng, double rate) {
    return -std::log1p(-rng.unit()) / rate;
}

/// Clips one trace request to what the engine serves; false when it must be skipped.
inline bool clip(const tools::trace_request& t, std::uint32_t max_new, std::uint32_t max_context,
                 std::uint32_t& output, workload& w) {
    if (t.prompt_tokens == 0 || t.prompt_tokens >= max_context) {
        ++w.skipped_prompts;
        return false;
    }
    output = std::max<std::uint32_t>(t.output_tokens, 1);
    const std::uint32_t cap = std::min(max_new, max_context - t.prompt_tokens);
    if (output > cap) {
        output = cap;
        ++w.clipped_outputs;
    }
    return true;
}

}  // namespace detail

/// Builds the workload. The trace must outlive it (prompt texts are views into it).
inline workload make_workload(const tools::trace& t, const workload_options& o) {
    if (!(o.test_fraction > 0.0 && o.test_fraction <= 1.0))
        throw std::invalid_argument("test fraction must be in (0, 1]");
    if (!(o.speedup > 0.0)) throw std::invalid_argument("speedup must be > 0");
    if (o.max_new_tokens == 0 || o.max_context < 2)
        throw std::invalid_argument("max_new_tokens must be > 0 and max_context >= 2");
    workload w;
    w.name = t.name;
    w.max_new_tokens = o.max_new_tokens;
    w.max_context = o.max_context;

    std::vector<const tools::trace_request*> train, test;
    if (t.has_arrivals) {
        // In time: the earliest (1 - test_fraction) of the requests train, the rest replay.
        std::vector<const tools::trace_request*> all;
        all.reserve(t.requests.size());
        for (const auto& r : t.requests)
            all.push_back(&r);
        std::stable_sort(all.begin(), all.end(),
                         [](auto* a, auto* b) { return a->arrival_s < b->arrival_s; });
        const auto cut =
            static_cast<std::size_t>(std::llround(double(all.size()) * (1.0 - o.test_fraction)));
        train.assign(all.begin(), all.begin() + std::ptrdiff_t(cut));
        test.assign(all.begin() + std::ptrdiff_t(cut), all.end());
    } else {
        tools::split_by_prompt(t, o.test_fraction, o.seed, train, test);
        if (o.shuffle) {
            support::splitmix64 rng(o.seed);
            detail::shuffle(test, rng);
        }
    }
    if (o.max_requests && test.size() > o.max_requests) test.resize(o.max_requests);

    for (const auto* r : train) {
        std::uint32_t out = 0;
        if (!detail::clip(*r, o.max_new_tokens, o.max_context, out, w)) continue;
        w.training.push_back(
            {{r->id, r->prompt_tokens, o.max_new_tokens, r->prompt_text, odma::tag_of(r->tag)},
             out});
    }

    support::splitmix64 arrivals(o.seed ^ 0xa5a5a5a5ull);  // Poisson: exponential gaps
    double clock = 0;
    const double origin = test.empty() ? 0.0 : test.front()->arrival_s;
    for (const auto* r : test) {
        std::uint32_t out = 0;
        if (!detail::clip(*r, o.max_new_tokens, o.max_context, out, w)) continue;
        replay_request q;
        q.id = r->id;
        q.prompt_tokens = r->prompt_tokens;
        q.output_tokens = out;
        q.prompt_text = r->prompt_text;
        q.tag = odma::tag_of(r->tag);
        if (t.has_arrivals) {
            q.arrival_s = (r->arrival_s - origin) / o.speedup;
        } else if (o.rate > 0) {
            q.arrival_s = clock;
            clock += detail::exponential(arrivals, o.rate);
        }
        w.requests.push_back(q);
    }
    std::stable_sort(w.requests.begin(), w.requests.end(),
                     [](const auto& a, const auto& b) { return a.arrival_s < b.arrival_s; });
    w.real_arrivals = t.has_arrivals;
    w.rate = t.has_arrivals ? 0.0 : std::max(o.rate, 0.0);
    w.speedup = t.has_arrivals ? o.speedup : 1.0;
    return w;
}

}  // namespace odma::replay
