// odma-eval: how well do odma's length predictors and bucket policies do on a real trace?
//
//   odma-eval [options] [TRACE.csv...]      (no trace: the bundled ones in data/)
//
// For each trace: split the requests by prompt into train and test (no prompt on both sides,
// fixed seed), train every predictor on the train side, predict every test request, and print
// one row per predictor beside the trivial baselines. Columns (all on the test side):
//
//   acc_uniform     bucket accuracy with k equal-width buckets up to max_new_tokens (S3-style);
//                   the predicted bucket is the most probable one under the predictor's
//                   distribution (or the bucket of its point estimate if it has none)
//   acc_learned     the same with k buckets that bucket::online_histogram learns from the train
//                   lengths (narrow where answers are common)
//   mae             mean |median prediction - answer|, tokens
//   safe            share of requests whose reservation holds the whole answer: the predictor's
//                   (1 - risk) quantile rounded up to a bucket learned, as odma's allocator
//                   learns them, from the peak demand max(reserved quantile, answer) of other
//                   requests (two folds by prompt, so no request sizes its own bucket)
//   over_reserve    mean tokens reserved beyond the answer when a request finishes, with those
//                   buckets (a request that overflowed is counted at the bucket it grew into)
//   over_lengthfit  the same with buckets fitted to the train answer lengths instead
//   us_per_pred     microseconds per predict() call on one core
//
// A second table gives, for several risks, the safe rate without buckets (does the quantile
// cover what it claims?) and the over-reservation it costs. --json prints both as JSON.
#include <odma_internal/table.hpp>
#include <odma_internal/trace.hpp>

#include <odma/bucket/fixed.hpp>
#include <odma/bucket/online_histogram.hpp>
#include <odma/bucket/optimal_boundaries.hpp>
#include <odma/predict/constant.hpp>
#include <odma/predict/ngram.hpp>
#include <odma/predict/oracle.hpp>
#include <odma/predict/prompt_quantile.hpp>
#include <odma/request.hpp>
#include <odma/support/hash.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

using odma::tools::table;
using odma::tools::trace;
using odma::tools::trace_request;

struct settings {
    std::vector<std::string> traces;
    double test_fraction = 0.2;
    std::uint64_t seed = 42;
    std::uint32_t buckets = 10;
    std::uint32_t max_new_tokens = 0;  // 0: the longest answer in the trace
    double risk = 0.05;
    std::vector<double> risks{0.01, 0.02, 0.05, 0.10, 0.20, 0.50};
    odma::predict::ngram::options ngram;
    bool fast = false;
    bool online = false;
    bool json = false;
    bool time_split = false;
    std::string save_model;
};

constexpr const char* usage_text =
    "usage: odma-eval [options] [TRACE.csv...]\n"
    "  With no trace: the bundled AlpacaEval, NQ and Azure conversation traces.\n"
    "  --test-fraction F   share of prompts held out for testing (0.2)\n"
    "  --seed N            split seed (42)\n"
    "  --buckets K         buckets of every bucket scheme (10)\n"
    "  --max-new-tokens N  cap on generated tokens (default: longest answer)\n"
    "  --risk R            overflow risk of the main table (0.05)\n"
    "  --risks R1,R2,...   risks of the trade-off table\n"
    "  --split prompt|time hold out random prompts (default) or the last requests\n"
    "  --online            observe each test request after predicting it\n"
    "  --fast              at most 3000 train / 600 test requests, 2 epochs\n"
    "  --save-model PATH   save the trained ngram model (of the last trace)\n"
    "  --json              machine-readable output\n"
    "  -h, --help          this text\n"
    "  ngram settings: --epochs N --learning-rate X --label-smoothing X\n"
    "                  --char-ngram N --char-windows --word-pairs --hash-bits N\n"
    "                  --classes N\n";

// A command-line mistake: one line that names it, and exit status 2.
[[noreturn]] void bad_usage(const std::string& why) {
    std::fprintf(stderr, "odma-eval: %s (odma-eval --help lists the options)\n", why.c_str());
    std::exit(2);
}

// The traces odma-eval reads when none is named: the bundled ones, found beside the build's
// source tree (ODMA_EVAL_DATA_DIR) or, for an installed binary, under ./data.
#ifndef ODMA_EVAL_DATA_DIR
#define ODMA_EVAL_DATA_DIR "data"
#endif
std::vector<std::string> bundled_traces() {
    std::vector<std::string> paths;
    for (const char* name : {"alpaca_eval_lengths.csv", "nq.csv", "azure2023_conv.csv"})
        paths.push_back(std::string(ODMA_EVAL_DATA_DIR) + "/" + name);
    return paths;
}

settings parse(int argc, char** argv) {
    settings s;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) bad_usage("missing value after " + a);
            return argv[++i];
        };
        auto number = [&](double lo, double hi) {
            const std::string v = value();
            char* end = nullptr;
            const double x = std::strtod(v.c_str(), &end);
            if (end == v.c_str() || *end || !(x >= lo && x <= hi))
                bad_usage(a + ": '" + v + "' is not a number in [" + std::to_string(lo) + ", " +
                          std::to_string(hi) + "]");
            return x;
        };
        auto count = [&](double lo, double hi) {
            return static_cast<std::uint32_t>(number(lo, hi));
        };
        if (a == "--test-fraction") {
            s.test_fraction = number(0.01, 0.99);
        } else if (a == "--seed") {
            s.seed = static_cast<std::uint64_t>(number(0, 1e15));
        } else if (a == "--buckets") {
            s.buckets = count(1, 4096);
        } else if (a == "--max-new-tokens") {
            s.max_new_tokens = count(1, 1 << 30);
        } else if (a == "--risk") {
            s.risk = number(0, 0.99);
        } else if (a == "--risks") {
            s.risks.clear();
            std::stringstream in(value());
            for (std::string item; std::getline(in, item, ',');) {
                char* end = nullptr;
                const double r = std::strtod(item.c_str(), &end);
                if (end == item.c_str() || *end || !(r >= 0 && r < 1))
                    bad_usage("--risks: '" + item + "' is not a risk in [0, 1)");
                s.risks.push_back(r);
            }
        } else if (a == "--split") {
            const std::string v = value();
            if (v != "prompt" && v != "time")
                bad_usage("--split takes prompt or time, not '" + v + "'");
            s.time_split = v == "time";
        } else if (a == "--online") {
            s.online = true;
        } else if (a == "--fast") {
            s.fast = true;
        } else if (a == "--json") {
            s.json = true;
        } else if (a == "--save-model") {
            s.save_model = value();
        } else if (a == "--epochs") {
            s.ngram.epochs = count(1, 1000);
        } else if (a == "--learning-rate") {
            s.ngram.learning_rate = number(1e-6, 100);
        } else if (a == "--label-smoothing") {
            s.ngram.label_smoothing = number(0, 100);
        } else if (a == "--char-ngram") {
            s.ngram.char_ngram = count(0, 8);
        } else if (a == "--char-windows") {
            s.ngram.char_mode = odma::predict::char_grams::windows;
        } else if (a == "--word-pairs") {
            s.ngram.word_pairs = true;
        } else if (a == "--hash-bits") {
            s.ngram.hash_bits = count(8, 24);
        } else if (a == "--classes") {
            s.ngram.classes = count(2, 64);
        } else if (a == "-h" || a == "--help") {
            std::fputs(usage_text, stdout);
            std::exit(0);
        } else if (!a.empty() && a[0] == '-') {
            bad_usage("unknown option " + a);
        } else {
            s.traces.push_back(a);
        }
    }
    if (s.traces.empty()) s.traces = bundled_traces();
    return s;
}

// One test request as the predictors see it, with its answer.
struct test_case {
    odma::request request;
    std::uint32_t answer;
    std::uint64_t prompt_id;
};

// Bucket capacities in generated tokens, ascending, the last being max_new_tokens.
struct scheme {
    std::vector<std::uint32_t> caps;
    std::uint32_t index_of(std::uint32_t tokens) const {
        const auto it = std::lower_bound(caps.begin(), caps.end(), tokens);
        return static_cast<std::uint32_t>(
            std::min<std::size_t>(it - caps.begin(), caps.size() - 1));
    }
    std::uint32_t cap_of(std::uint32_t tokens) const { return caps[index_of(tokens)]; }
};

// The k capacities that minimise waste over `lengths` (one request each), via the exact
// optimum of bucket::optimal_boundaries on one-token bins.
scheme fit_scheme(const std::vector<std::uint32_t>& lengths, std::uint32_t cap, std::uint32_t k) {
    std::vector<double> weight(cap, 0.0);
    std::vector<std::uint32_t> upper(cap);
    std::iota(upper.begin(), upper.end(), 1u);
    for (const auto n : lengths)
        weight[std::clamp<std::uint32_t>(n, 1, cap) - 1] += 1.0;
    return {odma::bucket::optimal_boundaries(weight, upper, k)};
}

// Metrics of one predictor at one risk.
struct at_risk {
    double safe_exact = 0, over_exact = 0;  // reserving the quantile itself (no buckets)
    double safe = 0, over = 0;              // rounded up to peak-demand buckets
    double over_lengthfit = 0;              // rounded up to buckets fitted to train lengths
};

struct row {
    std::string name;
    double acc_uniform = 0, acc_learned = 0, mae = 0;
    double us = std::numeric_limits<double>::quiet_NaN();
    std::vector<at_risk> risks;  // settings::risks, then settings::risk last
};

template <class P>
constexpr bool has_distribution = requires(const P& p, const odma::request& r) {
    p.distribution(r);
};

// The most probable bucket of `s` under a predicted distribution.
std::uint32_t most_probable(const odma::predict::length_distribution& d, const scheme& s) {
    std::uint32_t best = 0;
    double best_p = -1.0, below = 0.0;
    for (std::uint32_t b = 0; b < s.caps.size(); ++b) {
        const double at = d.cdf(s.caps[b]);
        if (at - below > best_p + 1e-12) {
            best_p = at - below;
            best = b;
        }
        below = at;
    }
    return best;
}

// Reservation metrics for reserving the (1 - risk) quantile of each prediction.
at_risk allocation(const std::vector<odma::prediction>& preds, const std::vector<test_case>& test,
                   double risk, std::uint32_t cap, std::uint32_t k, const scheme& lengthfit) {
    const std::size_t n = test.size();
    std::vector<std::uint32_t> need(n);
    for (std::size_t i = 0; i < n; ++i)
        need[i] = std::clamp<std::uint32_t>(preds[i].quantile(1.0 - risk), 1, cap);
    // Peak-demand buckets, cross-fitted over two folds of prompts.
    auto fold = [&](std::size_t i) { return odma::support::mix64(test[i].prompt_id) & 1; };
    scheme fitted[2];
    for (int f = 0; f < 2; ++f) {
        std::vector<std::uint32_t> peaks;
        for (std::size_t i = 0; i < n; ++i)
            if (fold(i) != std::uint64_t(f)) peaks.push_back(std::max(need[i], test[i].answer));
        if (peaks.empty())  // one fold only: fall back to all requests
            for (std::size_t i = 0; i < n; ++i)
                peaks.push_back(std::max(need[i], test[i].answer));
        fitted[f] = fit_scheme(peaks, cap, k);
    }
    // What stays reserved when the request finishes: its bucket, or if the answer outgrew it,
    // the bucket the answer grew into.
    auto final_reserved = [](const scheme& s, std::uint32_t need, std::uint32_t answer) {
        const std::uint32_t reserved = s.cap_of(need);
        return reserved >= answer ? reserved : s.cap_of(answer);
    };
    at_risk out;
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t a = test[i].answer;
        const scheme& s = fitted[fold(i)];
        out.safe_exact += need[i] >= a;
        out.over_exact += need[i] >= a ? double(need[i] - a) : 0.0;
        out.safe += s.cap_of(need[i]) >= a;
        out.over += double(final_reserved(s, need[i], a) - a);
        out.over_lengthfit += double(final_reserved(lengthfit, need[i], a) - a);
    }
    for (double* v : {&out.safe_exact, &out.over_exact, &out.safe, &out.over, &out.over_lengthfit})
        *v /= double(n);
    return out;
}

std::vector<double> all_risks(const settings& s) {
    std::vector<double> r = s.risks;
    r.push_back(s.risk);
    return r;
}

template <class P>
row evaluate(const std::string& name, P& p, const std::vector<test_case>& test,
             const scheme& uniform, const scheme& learned, const settings& s, std::uint32_t cap,
             bool online) {
    row out;
    out.name = name;
    {  // Timing on the fixed model: predict() over the test set until 20 ms have passed.
        using clock = std::chrono::steady_clock;
        std::uint64_t calls = 0, sink = 0;
        const auto start = clock::now();
        double elapsed = 0.0;
        do {
            for (const auto& c : test)
                sink += p.predict(c.request).tokens();
            calls += test.size();
            elapsed = std::chrono::duration<double>(clock::now() - start).count();
        } while (elapsed < 0.02);
        out.us = 1e6 * elapsed / double(calls);
        if (sink == 1) std::fputc(' ', stderr);  // keeps the calls observable
    }
    std::vector<odma::prediction> preds;
    preds.reserve(test.size());
    for (const auto& c : test) {
        preds.push_back(p.predict(c.request));
        std::uint32_t bu, bl;
        if constexpr (has_distribution<P>) {
            const auto d = p.distribution(c.request);
            bu = most_probable(d, uniform);
            bl = most_probable(d, learned);
        } else {
            bu = uniform.index_of(preds.back().tokens());
            bl = learned.index_of(preds.back().tokens());
        }
        out.acc_uniform += bu == uniform.index_of(c.answer);
        out.acc_learned += bl == learned.index_of(c.answer);
        out.mae += std::abs(double(preds.back().tokens()) - double(c.answer));
        if (online) p.observe(c.request, c.answer);
    }
    const double n = double(test.size());
    out.acc_uniform /= n;
    out.acc_learned /= n;
    out.mae /= n;
    for (const double r : all_risks(s))
        out.risks.push_back(
            allocation(preds, test, r, cap, std::uint32_t(learned.caps.size()), learned));
    return out;
}

// Majority-class baseline: the most common train bucket of each scheme, every time. Its
// reservation is that learned bucket; its point estimate (for mae) the train median.
row majority(const std::vector<odma::predict::training_sample>& train,
             const std::vector<test_case>& test, const scheme& uniform, const scheme& learned,
             const settings& s, std::uint32_t cap) {
    auto most_common = [&](const scheme& sc) {
        std::vector<std::size_t> count(sc.caps.size());
        for (const auto& t : train)
            ++count[sc.index_of(t.generated_tokens)];
        return static_cast<std::uint32_t>(std::max_element(count.begin(), count.end()) -
                                          count.begin());
    };
    std::vector<std::uint32_t> lengths;
    for (const auto& t : train)
        lengths.push_back(t.generated_tokens);
    std::nth_element(lengths.begin(), lengths.begin() + lengths.size() / 2, lengths.end());
    const double median = lengths[lengths.size() / 2];
    const std::uint32_t mu = most_common(uniform), ml = most_common(learned);
    row out;
    out.name = "majority bucket";
    for (const auto& c : test) {
        out.acc_uniform += uniform.index_of(c.answer) == mu;
        out.acc_learned += learned.index_of(c.answer) == ml;
        out.mae += std::abs(median - double(c.answer));
    }
    const double n = double(test.size());
    out.acc_uniform /= n;
    out.acc_learned /= n;
    out.mae /= n;
    const std::vector<odma::prediction> preds(test.size(),
                                              odma::prediction::exact(learned.caps[ml]));
    for (const double r : all_risks(s))
        out.risks.push_back(
            allocation(preds, test, r, cap, std::uint32_t(learned.caps.size()), learned));
    return out;
}

std::string list(const std::vector<std::uint32_t>& v, const char* separator = " ") {
    std::string out;
    for (const auto x : v)
        out += (out.empty() ? "" : separator) + std::to_string(x);
    return out;
}

struct report {
    std::string name;
    std::size_t train = 0, test = 0, test_prompts = 0;
    std::uint32_t cap = 0;
    bool text = false, tags = false;
    scheme uniform, learned;
    std::vector<row> rows;
    double train_seconds = 0;
};

report run(const std::string& path, const settings& s) {
    const trace tr = odma::tools::load_trace(path);
    if (tr.requests.empty()) throw odma::tools::trace_error(path + ": no requests");
    report rep;
    rep.name = tr.name;
    // NQ's tag is its source split, not something a server knows about a request.
    rep.tags = tr.name != "nq" && std::any_of(tr.requests.begin(), tr.requests.end(),
                                              [](const auto& r) { return !r.tag.empty(); });
    rep.text = tr.has_text;

    std::vector<const trace_request*> train_side, test_side;
    if (s.time_split) {
        const auto cut =
            static_cast<std::size_t>(double(tr.requests.size()) * (1.0 - s.test_fraction));
        for (std::size_t i = 0; i < tr.requests.size(); ++i)
            (i < cut ? train_side : test_side).push_back(&tr.requests[i]);
    } else {
        odma::tools::split_by_prompt(tr, s.test_fraction, s.seed, train_side, test_side);
    }
    if (s.fast) {  // evenly spaced subsamples keep every part of the trace represented
        auto thin = [](std::vector<const trace_request*>& v, std::size_t keep) {
            if (v.size() <= keep) return;
            std::vector<const trace_request*> out;
            for (std::size_t i = 0; i < keep; ++i)
                out.push_back(v[i * v.size() / keep]);
            v.swap(out);
        };
        thin(train_side, 3000);
        thin(test_side, 600);
    }

    std::uint32_t longest = 1;
    for (const auto& r : tr.requests)
        longest = std::max(longest, r.output_tokens);
    rep.cap = s.max_new_tokens ? s.max_new_tokens : longest;
    auto to_request = [&](const trace_request& r) {
        return odma::request{.id = r.id,
                             .prompt_tokens = std::max<std::uint32_t>(r.prompt_tokens, 1),
                             .max_new_tokens = rep.cap,
                             .prompt_text = r.prompt_text,
                             .tag = rep.tags ? odma::tag_of(r.tag) : 0};
    };
    std::vector<odma::predict::training_sample> train;
    for (const auto* r : train_side)
        if (r->output_tokens > 0)
            train.push_back({to_request(*r), std::min(r->output_tokens, rep.cap)});
    std::vector<test_case> test;
    std::set<std::uint64_t> prompts;
    for (const auto* r : test_side)
        if (r->output_tokens > 0) {
            test.push_back({to_request(*r), std::min(r->output_tokens, rep.cap), r->prompt_id});
            prompts.insert(r->prompt_id);
        }
    if (train.empty() || test.empty())
        throw odma::tools::trace_error(path + ": the split left one side without requests");
    rep.train = train.size();
    rep.test = test.size();
    rep.test_prompts = prompts.size();

    // Bucket schemes over generated tokens: S3's equal widths, and online_histogram's optimum
    // for the train lengths (never forgetting, calibrated once on all of them).
    const auto u = odma::bucket::fixed::uniform(std::min(s.buckets, rep.cap), rep.cap);
    rep.uniform.caps.assign(u.boundaries().begin(), u.boundaries().end());
    odma::bucket::online_histogram learned(
        s.buckets, rep.cap,
        {.half_life = 0, .recalibrate_every = 0, .drift_threshold = 0, .warmup = ~0u});
    for (const auto& t : train)
        learned.observe(t.generated_tokens);
    learned.recalibrate();
    rep.learned.caps.assign(learned.boundaries().begin(), learned.boundaries().end());

    auto add = [&](const std::string& name, auto& predictor, bool online) {
        rep.rows.push_back(
            evaluate(name, predictor, test, rep.uniform, rep.learned, s, rep.cap, online));
    };
    rep.rows.push_back(majority(train, test, rep.uniform, rep.learned, s, rep.cap));
    {
        odma::predict::constant c;
        add("constant (max)", c, false);
    }
    {
        odma::predict::prompt_quantile everyone({.prompt_bins = 1, .tag_slots = 0});
        everyone.train(train);
        add("unconditional quantile", everyone, s.online);
    }
    {
        odma::predict::prompt_quantile pq;
        pq.train(train);
        add("prompt_quantile", pq, s.online);
    }
    {
        odma::predict::ngram::options o = s.ngram;
        if (s.fast) o.epochs = std::min<std::uint32_t>(o.epochs, 2);
        odma::predict::ngram model;
        const auto start = std::chrono::steady_clock::now();
        model.train(train, o);
        rep.train_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (!s.save_model.empty()) model.save(s.save_model);
        add("ngram", model, s.online);
    }
    {
        odma::predict::oracle o;
        for (const auto& c : test)
            o.tell(c.request.id, c.answer);
        add("oracle (upper bound)", o, false);  // it forgets what it observes
    }
    return rep;
}

table main_table(const report& rep, const settings& s) {
    char safe[32];
    std::snprintf(safe, sizeof safe, "safe@%g", s.risk);
    table t({"predictor", "acc_uniform", "acc_learned", "mae", safe, "over_reserve",
             "over_lengthfit", "us_per_pred"});
    for (const auto& r : rep.rows) {
        const at_risk& a = r.risks.back();
        t.row()
            .add(r.name)
            .add_percent(r.acc_uniform)
            .add_percent(r.acc_learned)
            .add(r.mae, 1)
            .add_percent(a.safe)
            .add(a.over, 1)
            .add(a.over_lengthfit, 1)
            .add(r.us, 3);
    }
    return t;
}

table risk_table(const report& rep, const settings& s) {
    table t({"predictor", "risk", "target", "safe_unbucketed", "over_unbucketed", "safe",
             "over_reserve"});
    for (const auto& r : rep.rows) {
        if (r.name != "unconditional quantile" && r.name != "prompt_quantile" && r.name != "ngram")
            continue;
        for (std::size_t i = 0; i < s.risks.size(); ++i) {
            const at_risk& a = r.risks[i];
            t.row()
                .add(r.name)
                .add(s.risks[i], 2)
                .add_percent(1.0 - s.risks[i])
                .add_percent(a.safe_exact)
                .add(a.over_exact, 1)
                .add_percent(a.safe)
                .add(a.over, 1);
        }
    }
    return t;
}

}  // namespace

int main(int argc, char** argv) {
    const settings s = parse(argc, argv);
    std::vector<report> reports;
    try {
        for (const auto& path : s.traces)
            reports.push_back(run(path, s));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "odma-eval: %s\n", e.what());
        return 1;
    }
    if (s.json) {
        std::cout << "{\"settings\": {\"buckets\": " << s.buckets << ", \"risk\": " << s.risk
                  << ", \"test_fraction\": " << s.test_fraction << ", \"seed\": " << s.seed
                  << ", \"split\": \"" << (s.time_split ? "time" : "prompt")
                  << "\", \"online\": " << (s.online ? "true" : "false")
                  << ", \"fast\": " << (s.fast ? "true" : "false") << "},\n\"traces\": [";
        for (std::size_t i = 0; i < reports.size(); ++i) {
            const auto& r = reports[i];
            std::cout << (i ? ",\n" : "\n") << "{\"trace\": " << table::json_string(r.name)
                      << ", \"train\": " << r.train << ", \"test\": " << r.test
                      << ", \"test_prompts\": " << r.test_prompts
                      << ", \"max_new_tokens\": " << r.cap
                      << ", \"ngram_train_seconds\": " << r.train_seconds
                      << ", \"uniform_buckets\": [" << list(r.uniform.caps, ", ") << "]"
                      << ", \"learned_buckets\": [" << list(r.learned.caps, ", ") << "]"
                      << ",\n\"predictors\": ";
            main_table(r, s).to_json(std::cout);
            std::cout << ",\n\"risk_tradeoff\": ";
            risk_table(r, s).to_json(std::cout);
            std::cout << "}";
        }
        std::cout << "\n]}\n";
        return 0;
    }
    for (const auto& r : reports) {
        std::printf(
            "\n== %s: %zu train / %zu test requests (%zu test prompts); text %s, tags %s; "
            "max_new_tokens %u; risk %g\n",
            r.name.c_str(), r.train, r.test, r.test_prompts, r.text ? "yes" : "no",
            r.tags ? "yes" : "no", r.cap, s.risk);
        std::printf("   uniform buckets: %s\n   learned buckets: %s\n",
                    list(r.uniform.caps).c_str(), list(r.learned.caps).c_str());
        std::printf("   ngram trained in %.2f s\n\n", r.train_seconds);
        main_table(r, s).print(std::cout);
        std::printf("\n");
        risk_table(r, s).print(std::cout);
    }
    return 0;
}
