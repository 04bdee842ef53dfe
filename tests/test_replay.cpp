// odma-replay's serving engine (odma_internal/replay): latencies computable by hand, conservation
// (every request finishes once with all its tokens, preempted requests are recomputed),
// determinism, the KV read accounting of contiguous and paged layouts, and workload construction.
#include <odma_internal/replay/policies.hpp>
#include <odma_internal/replay/presets.hpp>
#include <odma_internal/replay/serving_engine.hpp>
#include <odma_internal/replay/workload.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace odma::replay;
namespace tools = odma::tools;

/// A small model: 2 layers, 1 KV head of 64 dims: 512 KV bytes per token in 4 planes.
model_preset tiny_model(double params, double weight_bytes) {
    return {.name = "tiny",
            .layers = 2,
            .q_heads = 2,
            .kv_heads = 1,
            .head_dim = 64,
            .dtype_bytes = 2,
            .params = params,
            .weight_bytes = weight_bytes};
}

device_preset small_device(double peak_flops, std::uint64_t kv_bytes) {
    device_preset d = mlu370_x4();
    d.name = "test-lpddr";
    d.peak_flops = peak_flops;
    d.compute_efficiency = 1.0;
    d.kv_bytes_override = kv_bytes;
    return d;
}

workload one_request(std::uint32_t prompt, std::uint32_t output) {
    workload w;
    w.name = "one";
    w.max_context = 1024;
    w.max_new_tokens = 512;
    replay_request r;
    r.id = 7;
    r.prompt_tokens = prompt;
    r.output_tokens = output;
    w.requests.push_back(r);
    return w;
}

serving_options options() {
    serving_options o;
    o.max_num_seqs = 64;
    o.max_batched_tokens = 512;
    return o;
}

/// A slice of the bundled AlpacaEval trace: real lengths and prompts, small enough for tests.
const tools::trace& alpaca() {
    static const tools::trace t =
        tools::load_alpaca_eval(ODMA_TEST_DATA_DIR "/alpaca_eval_lengths.csv",
                                ODMA_TEST_DATA_DIR "/alpaca_eval_prompts.jsonl");
    return t;
}

workload alpaca_workload(std::size_t requests) {
    workload_options o;
    o.test_fraction = 0.5;
    o.max_requests = requests;
    o.max_new_tokens = 512;
    o.max_context = 1024;
    o.seed = 3;
    workload w = make_workload(alpaca(), o);
    w.training.resize(std::min<std::size_t>(w.training.size(), 300));  // keeps training quick
    return w;
}

/// The ngram model trained on alpaca_workload's training part, trained once for all tests.
const odma::predict::ngram& trained_model() {
    static const odma::predict::ngram m = train_ngram(alpaca_workload(1), 1);
    return m;
}

}  // namespace

TEST_CASE("replay: one request, compute-bound: TTFT and TPOT from the FLOP count") {
    // 1e9 parameters on 1e12 FLOP/s: 2 ms per token; 1 MB of weights reads in microseconds.
    const serving_model sm = make_serving_model(tiny_model(1e9, 1e6), small_device(1e12, 1 << 22));
    const std::uint32_t prompt = 100, output = 5;
    const workload w = one_request(prompt, output);
    const auto r = run_policy("static", w, sm, options(), {}, nullptr);
    const model_preset& m = sm.model;
    const double per_ns = 1e12 * 1e-9;

    const double prefill = (prompt * m.linear_flops_per_token() +
                            m.attention_flops(double(prompt) * (prompt + 1) / 2)) /
                           per_ns * 1e-9;
    double decode = 0;
    for (std::uint32_t g = 1; g < output; ++g)
        decode += (m.linear_flops_per_token() + m.attention_flops(prompt + g)) / per_ns * 1e-9;

    REQUIRE(r.requests.size() == 1);
    CHECK(r.requests[0].first_token_s == doctest::Approx(prefill).epsilon(1e-9));
    CHECK(r.requests[0].finish_s == doctest::Approx(prefill + decode).epsilon(1e-9));
    CHECK(r.metrics.ttft_p50_s == doctest::Approx(prefill).epsilon(1e-9));
    CHECK(r.metrics.tpot_p50_s == doctest::Approx(decode / (output - 1)).epsilon(1e-9));
    CHECK(r.metrics.generated_tokens == output);
    CHECK(r.metrics.iterations == output);  // one prefill, output - 1 decodes
    CHECK(r.metrics.compute_bound_ns == doctest::Approx(r.metrics.total_ns));
}

TEST_CASE("replay: one request, memory-bound: each step reads the weights and the KV") {
    // 1 GB of weights, almost no FLOPs: every iteration costs the weight read plus its KV.
    const serving_model sm = make_serving_model(tiny_model(1e3, 1e9), small_device(1e15, 1 << 22));
    CHECK(sm.weights_ns > 1e9 / sm.device.memory.peak_bytes_per_ns());  // not faster than peak
    CHECK(sm.weights_ns < 1.1e9 / sm.device.memory.peak_bytes_per_ns());
    const std::uint32_t prompt = 64, output = 3;
    const auto r = run_policy("static", one_request(prompt, output), sm, options(), {}, nullptr);

    // The prefill reads no KV (nothing is cached yet); the decodes read prompt + g tokens.
    CHECK(r.requests[0].first_token_s == doctest::Approx(sm.weights_ns * 1e-9).epsilon(1e-12));
    double kv = 0;
    for (std::uint32_t g = 1; g < output; ++g) {
        auto dev = device_memory(odma::backing::placement_only(1 << 22), sm.device.memory);
        for (std::uint32_t p = 0; p < 2; ++p)  // one layer's K and V, scaled to both layers
            dev.read(std::size_t(p) * (1 << 22) / 4, std::size_t(prompt + g) * 128);
        kv += dev.report().read.total_ns() * 2;
    }
    const double expect = (output - 1) * sm.weights_ns + kv;
    CHECK(r.requests[0].finish_s - r.requests[0].first_token_s ==
          doctest::Approx(expect * 1e-9).epsilon(1e-9));
    CHECK(r.metrics.kv_runs == 2 * 2 * (output - 1));
    CHECK(r.metrics.compute_bound_ns == 0.0);
}

TEST_CASE("replay: conservation under memory pressure, for every policy") {
    // 8,000 tokens of KV for a few hundred requests: admissions queue, growth preempts.
    const workload w = alpaca_workload(200);
    REQUIRE(w.requests.size() == 200);
    const auto& trained = trained_model();
    const serving_model sm =
        make_serving_model(tiny_model(1e6, 1e6), small_device(1e15, 6000 * 512));
    const std::uint64_t want_tokens = w.output_tokens();
    std::map<std::string, replay_result> results;
    for (const auto& p : policy_names()) {
        CAPTURE(p);
        const auto r = run_policy(p, w, sm, options(), {}, &trained);
        CHECK(r.metrics.finished == w.requests.size());
        CHECK(r.metrics.generated_tokens == want_tokens);
        std::uint64_t preemptions = 0;
        for (std::size_t i = 0; i < w.requests.size(); ++i) {
            const auto& q = r.requests[i];
            CHECK(q.output_tokens == w.requests[i].output_tokens);
            CHECK(q.first_token_s > q.arrival_s);
            CHECK(q.finish_s >= q.first_token_s);
            preemptions += q.preemptions;
        }
        CHECK(preemptions == r.metrics.preemptions);
        // A preempted request is prefilled again over its prompt and what it had generated.
        std::uint64_t prompts_again = 0;
        for (std::size_t i = 0; i < w.requests.size(); ++i)
            prompts_again += std::uint64_t(r.requests[i].preemptions) * w.requests[i].prompt_tokens;
        CHECK(r.metrics.recomputed_tokens >= prompts_again);
        CHECK(r.allocator_stats.live_leases == 0);
        CHECK(r.allocator_stats.reserved_bytes == 0);
        CHECK(r.metrics.utilization > 0.0);
        CHECK(r.metrics.utilization <= 1.0);
        CHECK(r.metrics.reserved_utilization <= 1.0 + 1e-12);
        results.emplace(p, r);
    }
    // Static reserves prompt + max_new_tokens and never grows: no preemption, no migration.
    CHECK(results["static"].metrics.preemptions == 0);
    CHECK(results["static"].metrics.migrations == 0);
    // Paging fills the arena and pays for it in preemptions; it never copies.
    CHECK(results["paged-16"].metrics.preemptions > 0);
    CHECK(results["paged-16"].metrics.migrations == 0);
    CHECK(results["paged-128"].metrics.migrations == 0);
    // Knowing the lengths packs more than reserving the maximum.
    CHECK(results["oracle"].metrics.utilization > results["static"].metrics.utilization);
    CHECK(results["oracle"].metrics.preemptions == 0);  // exact reservations never grow
}

namespace {

/// Six 16-token blocks for two requests of 16 + 40 tokens (four blocks each). Both grow in
/// lockstep; when the first needs its fourth block (49 tokens, after 33 generated) none is
/// free, so the second is preempted with 33 tokens generated.
struct two_requests_in_six_blocks {
    serving_model sm = make_serving_model(tiny_model(1e3, 1e6), small_device(1e15, 6 * 16 * 512));
    workload w = [] {
        workload two = one_request(16, 40);
        two.max_context = 64;
        two.max_new_tokens = 48;
        two.requests.push_back(two.requests.front());
        two.requests.back().id = 8;
        return two;
    }();
};

}  // namespace

TEST_CASE("replay: a request that cannot grow preempts the newest, which is recomputed") {
    // The second request recomputes 16 + 33 tokens once the first has finished and freed its
    // blocks.
    const two_requests_in_six_blocks s;
    const auto r = run_policy("paged", s.w, s.sm, options(), {}, nullptr);
    CHECK(r.metrics.preemptions == 1);
    CHECK(r.metrics.recomputed_tokens == 16 + 33);
    CHECK(r.allocator_stats.resumptions == 1);  // it came back through resume()
    CHECK(r.requests[0].preemptions == 0);
    CHECK(r.requests[1].preemptions == 1);
    CHECK(r.requests[1].output_tokens == 40);
    CHECK(r.requests[1].first_token_s == doctest::Approx(r.requests[0].first_token_s));
    CHECK(r.requests[1].finish_s > r.requests[0].finish_s);  // resumed after the first left
    CHECK(r.metrics.generated_tokens == 80);
}

TEST_CASE("replay: in swap mode the preempted request's KV goes to the host and back") {
    // The scenario above with --preemption swap: the second request is preempted with 16 + 33
    // tokens held; they are copied out over the host link and in again when it resumes, and
    // nothing is prefilled again.
    const two_requests_in_six_blocks s;
    const serving_model& sm = s.sm;
    const workload& w = s.w;
    serving_options so = options();
    const auto recompute = run_policy("paged", w, sm, so, {}, nullptr);
    so.preemption = preemption_mode::swap;
    const auto swap = run_policy("paged", w, sm, so, {}, nullptr);
    REQUIRE(swap.metrics.preemptions == 1);
    CHECK(swap.metrics.recomputed_tokens == 0);
    const std::uint64_t held = std::uint64_t(16 + 33) * sm.model.bytes_per_token();
    CHECK(swap.metrics.swapped_bytes == 2 * held);  // out and back in
    CHECK(swap.metrics.swap_ns == doctest::Approx(2.0 * double(held) / sm.device.host_link_gbps));
    CHECK(swap.allocator_stats.resumptions == 1);
    CHECK(swap.requests[1].output_tokens == 40);
    CHECK(swap.metrics.generated_tokens == 80);
    CHECK(recompute.metrics.swapped_bytes == 0);
    CHECK(recompute.metrics.swap_ns == 0.0);

    // A device without a host link cannot swap.
    serving_model no_link = sm;
    no_link.device.host_link_gbps = 0;
    CHECK_THROWS_AS(run_policy("paged", w, no_link, so, {}, nullptr), std::invalid_argument);
}

TEST_CASE("replay: the same inputs give the same result") {
    const workload w = alpaca_workload(100);
    const auto& trained = trained_model();
    const serving_model sm =
        make_serving_model(tiny_model(1e6, 1e6), small_device(1e15, 6000 * 512));
    for (const char* p : {"odma", "paged-16"}) {
        CAPTURE(p);
        const auto a = run_policy(p, w, sm, options(), {}, &trained);
        const auto b = run_policy(p, w, sm, options(), {}, &trained);
        CHECK(a.metrics.total_ns == b.metrics.total_ns);
        CHECK(a.metrics.tps == b.metrics.tps);
        CHECK(a.metrics.utilization == b.metrics.utilization);
        CHECK(a.metrics.preemptions == b.metrics.preemptions);
        CHECK(a.metrics.migrations == b.metrics.migrations);
        for (std::size_t i = 0; i < a.requests.size(); ++i)
            CHECK(a.requests[i].finish_s == b.requests[i].finish_s);
    }
}

TEST_CASE("replay: paged reads one run per block; contiguous one per request and plane") {
    const serving_model sm = make_serving_model(tiny_model(1e3, 1e8), small_device(1e15, 1 << 22));
    const std::uint32_t prompt = 200, output = 2;  // one decode over 201 tokens
    const workload w = one_request(prompt, output);
    const auto contiguous = run_policy("static", w, sm, options(), {}, nullptr);
    const auto paged = run_policy("paged-16", w, sm, options(), {}, nullptr);
    const std::uint64_t planes = sm.model.planes();
    CHECK(contiguous.metrics.kv_runs == planes);
    CHECK(paged.metrics.kv_runs == planes * ((prompt + 1 + 15) / 16));
    CHECK(contiguous.metrics.kv_bytes == paged.metrics.kv_bytes);
    // On LPDDR the same bytes in 16-token pieces take longer.
    CHECK(paged.metrics.kv_gbps() < contiguous.metrics.kv_gbps());
    CHECK(paged.metrics.kv_discontinuity_ns > contiguous.metrics.kv_discontinuity_ns);
}

TEST_CASE("replay: costing two planes and scaling matches costing all of them") {
    const workload w = alpaca_workload(60);
    const serving_model sm =
        make_serving_model(tiny_model(1e6, 1e8), small_device(1e15, 20000 * 512));
    for (const char* p : {"static", "paged-16"}) {
        CAPTURE(p);
        serving_options sampled = options(), all = options();
        all.kv_planes_sampled = 0;
        const auto a = run_policy(p, w, sm, sampled, {}, nullptr);
        const auto b = run_policy(p, w, sm, all, {}, nullptr);
        CHECK(a.metrics.kv_bytes == b.metrics.kv_bytes);
        CHECK(a.metrics.kv_runs == b.metrics.kv_runs);
        const double ka = a.metrics.kv_dram_ns + a.metrics.kv_discontinuity_ns;
        const double kb = b.metrics.kv_dram_ns + b.metrics.kv_discontinuity_ns;
        CHECK(ka == doctest::Approx(kb).epsilon(0.05));
    }
}

TEST_CASE("replay: workloads never replay what trained the predictor, and clip explicitly") {
    workload_options o;
    o.test_fraction = 0.3;
    o.max_new_tokens = 256;
    o.max_context = 300;
    o.seed = 9;
    const workload w = make_workload(alpaca(), o);
    std::set<std::uint64_t> train_prompts;
    std::set<std::uint64_t> train_ids;
    const auto& all = alpaca().requests;
    for (const auto& s : w.training) {
        train_ids.insert(s.request.id);
        train_prompts.insert(all[s.request.id].prompt_id);
        CHECK(s.generated_tokens <= o.max_new_tokens);
        CHECK(s.request.prompt_tokens + s.generated_tokens <= o.max_context);
    }
    for (const auto& r : w.requests) {
        CHECK(train_ids.count(r.id) == 0);
        CHECK(train_prompts.count(all[r.id].prompt_id) == 0);  // split by prompt
        CHECK(r.output_tokens >= 1);
        CHECK(r.output_tokens <= o.max_new_tokens);
        CHECK(r.prompt_tokens + r.output_tokens <= o.max_context);
        CHECK(r.arrival_s == 0.0);  // no rate: an offline run
    }
    // Every trace row is accounted for: replayed, trained on or skipped.
    CHECK(w.requests.size() + w.training.size() + w.skipped_prompts == all.size());
    std::size_t too_long = 0, clipped = 0;
    for (const auto& r : all) {
        if (r.prompt_tokens >= o.max_context)
            ++too_long;
        else if (r.output_tokens > std::min<std::uint32_t>(256, o.max_context - r.prompt_tokens))
            ++clipped;
    }
    CHECK(w.skipped_prompts == too_long);
    CHECK(w.clipped_outputs == clipped);
}

TEST_CASE("replay: Poisson arrivals at the requested rate; real arrivals split in time") {
    workload_options o;
    o.rate = 4.0;
    o.max_requests = 2000;
    const workload p = make_workload(alpaca(), o);
    REQUIRE(p.requests.size() == 2000);
    CHECK(std::is_sorted(p.requests.begin(), p.requests.end(),
                         [](const auto& a, const auto& b) { return a.arrival_s < b.arrival_s; }));
    const double span = p.requests.back().arrival_s;
    CHECK(double(p.requests.size() - 1) / span == doctest::Approx(4.0).epsilon(0.08));

    const tools::trace azure = tools::load_azure(ODMA_TEST_DATA_DIR "/azure2023_conv.csv");
    workload_options a;
    a.speedup = 2.0;
    const workload z = make_workload(azure, a);
    CHECK(z.real_arrivals);
    REQUIRE(!z.requests.empty());
    CHECK(z.requests.front().arrival_s == 0.0);
    std::map<std::uint64_t, double> arrival_of;
    for (const auto& r : azure.requests)
        arrival_of[r.id] = r.arrival_s;
    double last_train = 0;
    for (const auto& s : z.training)
        last_train = std::max(last_train, arrival_of.at(s.request.id));
    const double first_test = arrival_of.at(z.requests.front().id);
    CHECK(first_test >= last_train);  // train on the past, replay the future
    const auto& last = z.requests.back();
    CHECK(last.arrival_s == doctest::Approx((arrival_of.at(last.id) - first_test) / 2.0));
}

TEST_CASE("replay: presets carry the published figures") {
    const model_preset m = r1_distill_qwen_7b();
    CHECK(m.bytes_per_token() == 57344);
    CHECK(m.planes() == 56);
    CHECK(m.bytes_per_token() / m.planes() == 1024);  // 1 KiB per token per plane
    const device_preset mlu = mlu370_x4();
    CHECK(mlu.memory.peak_bytes_per_ns() == doctest::Approx(307.2));
    CHECK(mlu.memory_bytes() == 24ull << 30);
    const std::uint64_t kv = mlu.kv_bytes(m);
    CHECK(kv == std::uint64_t(0.9 * double(24ull << 30) - 15.2e9 - double(1ull << 30)));
    const device_preset h100 = h100_hbm3();
    CHECK(h100.memory.peak_bytes_per_ns() == doctest::Approx(3328.0));
    CHECK(h100.kv_bytes(m) > 8 * kv);
    CHECK_THROWS_AS(find_device("tpu"), std::invalid_argument);

    // The tiered presets (docs/tiers.md).
    const model_preset llama = find_model("llama-3.1-8b");
    CHECK(llama.bytes_per_token() == 131072);
    const device_preset gh = find_device("gh200");
    CHECK(gh.default_model == "llama-3.1-8b");
    CHECK(gh.memory_bytes() == 96ull << 30);
    CHECK(gh.memory.peak_bytes_per_ns() == doctest::Approx(3993.6));
    REQUIRE(gh.slow_tier);
    CHECK(gh.slow_tier->memory.capacity_bytes == 480ull << 30);
    CHECK(gh.slow_tier->memory.peak_bytes_per_ns() == doctest::Approx(512.0).epsilon(0.001));
    CHECK(gh.slow_tier->link_gbps == 450.0);
    CHECK(slow_read_share(gh) == doctest::Approx(450.0 / 3993.6));
    CHECK(find_device("h100-host-ddr5").slow_tier->link_gbps == 63.0);
    CHECK(find_device("mlu370-x4-host").slow_tier->link_gbps == 31.5);
    CHECK_FALSE(find_device("mlu370-x4").slow_tier);
    CHECK(slow_read_share(find_device("mlu370-x4")) == 0.0);
    for (const auto& d : device_names())
        if (const auto dev = find_device(d); dev.slow_tier) dev.slow_tier->memory.validate();
    CHECK_THROWS_AS(find_model("gpt-5"), std::invalid_argument);
    CHECK_THROWS_AS(
        run_policy("lifo", one_request(4, 2),
                   make_serving_model(tiny_model(1e3, 1e6), small_device(1e15, 1 << 22)), options(),
                   {}, nullptr),
        std::invalid_argument);
}

TEST_CASE("replay: read_prefix reads a prefix of a lease's runs, in both layouts") {
    const serving_model sm = make_serving_model(tiny_model(1e3, 1e6), small_device(1e15, 1 << 22));
    const odma::request q{.id = 1, .prompt_tokens = 40, .max_new_tokens = 8};
    const auto reads = [&](auto& kv, std::uint32_t tokens) {
        const auto l = kv.admit(q).value();
        kv.backing().reset_report();
        odma::replay::detail::read_prefix(kv, l, tokens, 2);
        const auto rep = kv.backing().report().read;
        CHECK(kv.release(l, 8));
        return std::pair<std::uint64_t, std::uint64_t>(rep.runs, rep.bytes);
    };
    const auto memory = [&] {
        return device_memory(odma::backing::placement_only(1 << 22), sm.device.memory);
    };
    const std::size_t bpt = sm.model.bytes_per_token(), plane_bytes = bpt / sm.model.planes();
    odma::paged<device_memory> paged(
        {.bytes_per_token = bpt, .max_tokens = 64, .planes = sm.model.planes(), .block_tokens = 16},
        memory());
    // 40 tokens in 16-token blocks; a 20-token prefix is one full block and 4 tokens of the next.
    CHECK(reads(paged, 20) == std::pair<std::uint64_t, std::uint64_t>(2 * 2, 2 * 20 * plane_bytes));
    CHECK(reads(paged, 40) == std::pair<std::uint64_t, std::uint64_t>(2 * 3, 2 * 40 * plane_bytes));
    odma::allocator<odma::predict::constant, odma::bucket::fixed, device_memory> contiguous(
        {.bytes_per_token = bpt, .max_tokens = 64, .planes = sm.model.planes()},
        odma::predict::constant{}, odma::bucket::fixed::explicit_list({64}), memory());
    CHECK(reads(contiguous, 20) ==
          std::pair<std::uint64_t, std::uint64_t>(2, 2 * 20 * plane_bytes));
    CHECK(reads(contiguous, 0) == std::pair<std::uint64_t, std::uint64_t>(0, 0));
}

TEST_CASE("replay: the standard rows, in table order, and the paged alias") {
    CHECK(policy_names() == std::vector<std::string>{"static", "s3", "paged-16", "paged-128",
                                                     "odma-strict", "odma", "oracle"});
    for (const auto& p : policy_names())
        CHECK(is_policy_name(p));
    CHECK(is_policy_name("paged"));
    CHECK(is_policy_name("paged-32"));
    CHECK_FALSE(is_policy_name("paged-"));
    CHECK_FALSE(is_policy_name("paged-0"));
    CHECK_FALSE(is_policy_name("paged-x"));
    CHECK_FALSE(is_policy_name("lru"));
    CHECK(policy_uses_predictor("odma-strict"));
    CHECK(policy_uses_predictor("odma"));
    CHECK_FALSE(policy_uses_predictor("paged-16"));

    // `paged` is paged with --block-size (16 by default): old command lines give paged-16's row.
    const workload w = alpaca_workload(60);
    const serving_model sm =
        make_serving_model(tiny_model(1e6, 1e8), small_device(1e15, 6000 * 512));
    const auto alias = run_policy("paged", w, sm, options(), {}, nullptr);
    const auto p16 = run_policy("paged-16", w, sm, options(), {}, nullptr);
    CHECK(alias.policy == "paged");
    CHECK(p16.policy == "paged-16");
    CHECK(alias.metrics.total_ns == p16.metrics.total_ns);
    CHECK(alias.metrics.kv_runs == p16.metrics.kv_runs);
    policy_options big;
    big.block_tokens = 128;
    const auto alias128 = run_policy("paged", w, sm, options(), big, nullptr);
    const auto p128 = run_policy("paged-128", w, sm, options(), {}, nullptr);
    CHECK(alias128.metrics.total_ns == p128.metrics.total_ns);
    CHECK(p128.metrics.kv_runs < p16.metrics.kv_runs);

    // odma-strict reads one run per request and plane; odma may read up to max_runs, and with
    // max_runs = 1 it is odma-strict.
    const auto& trained = trained_model();
    const auto strict = run_policy("odma-strict", w, sm, options(), {}, &trained);
    const auto odma = run_policy("odma", w, sm, options(), {}, &trained);
    CHECK(strict.metrics.runs_per_decode_read() == 1.0);
    CHECK(odma.metrics.runs_per_decode_read() >= 1.0);
    CHECK(odma.metrics.runs_per_decode_read() <= double(policy_options{}.max_runs));
    policy_options one_run;
    one_run.max_runs = 1;
    const auto odma1 = run_policy("odma", w, sm, options(), one_run, &trained);
    CHECK(strict.metrics.total_ns == odma1.metrics.total_ns);
    CHECK(strict.metrics.migrations == odma1.metrics.migrations);
    CHECK_THROWS_AS(run_policy("odma-strict", w, sm, options(), {}, nullptr),
                    std::invalid_argument);
}

TEST_CASE("replay: KV runs: one per request and plane when contiguous, ceil(len/block) paged") {
    const serving_model sm = make_serving_model(tiny_model(1e3, 1e8), small_device(1e15, 1 << 22));
    const std::uint32_t prompt = 150, output = 40;  // decodes over 151 .. 189 tokens
    const workload w = one_request(prompt, output);
    for (const char* p : {"static", "oracle"}) {
        CAPTURE(p);
        const auto r = run_policy(p, w, sm, options(), {}, nullptr);
        CHECK(r.metrics.decode_plane_reads == 2 * (output - 1));  // two sampled planes
        CHECK(r.metrics.runs_per_decode_read() == 1.0);
    }
    for (const std::uint32_t block : {16u, 32u, 128u}) {
        CAPTURE(block);
        const auto r = run_policy("paged-" + std::to_string(block), w, sm, options(), {}, nullptr);
        double blocks = 0;
        for (std::uint32_t g = 1; g < output; ++g)
            blocks += std::ceil(double(prompt + g) / double(block));
        CHECK(r.metrics.decode_plane_reads == 2 * (output - 1));
        CHECK(r.metrics.runs_per_decode_read() == doctest::Approx(blocks / (output - 1)));
    }
}

TEST_CASE("replay: the run cost overrides the device's per-discontinuity cost") {
    const workload w = alpaca_workload(60);
    const auto run = [&](const char* policy, double run_cost_ns) {
        device_preset d = small_device(1e15, 20000 * 512);
        d.memory.discontinuity_ns = run_cost_ns;
        return run_policy(policy, w, make_serving_model(tiny_model(1e6, 1e8), d), options(), {},
                          nullptr);
    };
    double last_tps = 0;
    for (const double cost : {0.0, 20.0, 200.0, 2000.0}) {
        CAPTURE(cost);
        const auto r = run("paged-16", cost);
        // Every run of the stream costs `cost` on the accelerator side.
        CHECK(r.metrics.kv_discontinuity_ns ==
              doctest::Approx(double(r.metrics.kv_runs) * cost).epsilon(1e-9));
        if (last_tps > 0) CHECK(r.metrics.tps <= last_tps);  // dearer runs never speed it up
        last_tps = r.metrics.tps;
    }
    CHECK(run("paged-16", 2000.0).metrics.tps < run("paged-16", 0.0).metrics.tps);
    // A contiguous policy reads one run per request and plane: far less exposed.
    const double static_loss = run("static", 0.0).metrics.tps / run("static", 2000.0).metrics.tps;
    const double paged_loss =
        run("paged-16", 0.0).metrics.tps / run("paged-16", 2000.0).metrics.tps;
    CHECK(paged_loss > static_loss);
}

TEST_CASE("replay: tensor parallelism splits weights, KV bytes and FLOPs over the cards") {
    const model_preset m = r1_distill_qwen_7b();
    for (const std::uint32_t n : {1u, 2u, 4u}) {
        CAPTURE(n);
        const model_preset s = tensor_parallel_slice(m, n);
        CHECK(s.bytes_per_token() * n == m.bytes_per_token());
        CHECK(s.weight_bytes * n == doctest::Approx(m.weight_bytes));
        CHECK(s.linear_flops_per_token() * n == doctest::Approx(m.linear_flops_per_token()));
        CHECK(s.attention_flops(1000) * n == doctest::Approx(m.attention_flops(1000)));
        CHECK(s.planes() == m.planes());  // every card holds every layer's K and V
        CHECK(s.kv_heads * n == m.kv_heads);
    }
    CHECK_THROWS_AS(tensor_parallel_slice(m, 0), std::invalid_argument);
    CHECK_THROWS_AS(tensor_parallel_slice(m, 3), std::invalid_argument);  // 4 KV heads
    CHECK_THROWS_AS(tensor_parallel_slice(m, 8), std::invalid_argument);
    CHECK_THROWS_AS(make_serving_model(m, mlu370_x4(), 3), std::invalid_argument);

    // Each card has its own memory: KV = 0.9 x memory - weights / N - activations.
    const serving_model one = make_serving_model(m, mlu370_x4(), 1);
    const serving_model four = make_serving_model(m, mlu370_x4(), 4);
    CHECK(four.tensor_parallel == 4);
    CHECK(four.kv_bytes() ==
          std::uint64_t(0.9 * double(24ull << 30) - 15.2e9 / 4 - double(1ull << 30)));
    CHECK(four.kv_bytes() / four.model.bytes_per_token() >
          4 * (one.kv_bytes() / one.model.bytes_per_token()));
    CHECK(four.weights_ns < one.weights_ns / 3);  // a quarter of the weights to read
}

TEST_CASE("replay: policies replayed in parallel give the sequential results") {
    const workload w = alpaca_workload(120);
    const auto& trained = trained_model();
    const serving_model sm =
        make_serving_model(tiny_model(1e6, 1e8), small_device(1e15, 6000 * 512));
    std::vector<double> seen;
    const auto par = run_policies(
        policy_names(), w, sm, options(), {}, &trained, [&](double f) { seen.push_back(f); }, true);
    const auto seq = run_policies(policy_names(), w, sm, options(), {}, &trained, {}, false);
    REQUIRE(par.size() == policy_names().size());
    REQUIRE(seq.size() == par.size());
    REQUIRE(!seen.empty());
    CHECK(std::is_sorted(seen.begin(), seen.end()));
    CHECK(seen.back() == doctest::Approx(1.0));
    for (std::size_t i = 0; i < par.size(); ++i) {
        CAPTURE(par[i].policy);
        CHECK(par[i].policy == policy_names()[i]);
        CHECK(seq[i].policy == par[i].policy);
        CHECK(par[i].metrics.total_ns == seq[i].metrics.total_ns);
        CHECK(par[i].metrics.tps == seq[i].metrics.tps);
        CHECK(par[i].metrics.utilization == seq[i].metrics.utilization);
        CHECK(par[i].metrics.preemptions == seq[i].metrics.preemptions);
        CHECK(par[i].metrics.migrations == seq[i].metrics.migrations);
        CHECK(par[i].metrics.decode_runs == seq[i].metrics.decode_runs);
        REQUIRE(par[i].requests.size() == seq[i].requests.size());
        for (std::size_t k = 0; k < par[i].requests.size(); ++k)
            CHECK(par[i].requests[k].finish_s == seq[i].requests[k].finish_s);
    }
    // An exception in one policy's thread reaches the caller.
    CHECK_THROWS_AS(run_policies({"static", "s3"}, w, sm, options(), {}, nullptr),
                    std::invalid_argument);
}

namespace {

/// small_device with a slow tier: `slow_bytes` of host DDR5 behind a `link_gbps` link.
device_preset tiered_device(std::uint64_t fast_bytes, std::uint64_t slow_bytes, double link_gbps) {
    device_preset d = small_device(1e15, fast_bytes);
    odma::memory::memory_model slow = host_ddr5_tier(256ull << 20, d.memory.discontinuity_ns);
    d.slow_tier = slow_tier_preset{"test host DDR5", slow, link_gbps,
                                   double(slow_bytes) / double(slow.capacity_bytes)};
    return d;
}

}  // namespace

TEST_CASE("replay: remote prefill admits prompts prefilled and decodes from the next iteration") {
    // One request, memory-bound model: with local prefill the first token follows a prefill
    // iteration; with remote prefill there is none, so every iteration is a decode.
    const serving_model sm = make_serving_model(tiny_model(1e3, 1e9), small_device(1e15, 1 << 22));
    serving_options so = options();
    const auto local = run_policy("paged", one_request(100, 5), sm, so, {}, nullptr);
    so.remote_prefill = true;
    const auto remote = run_policy("paged", one_request(100, 5), sm, so, {}, nullptr);
    CHECK(local.metrics.iterations == 5);   // prefill (first token) + 4 decodes
    CHECK(remote.metrics.iterations == 5);  // 5 decodes
    CHECK(remote.requests[0].output_tokens == 5);
    CHECK(remote.metrics.generated_tokens == 5);
    // A decode reads the prompt's KV, a prefill of 100 tokens computes far more: both take
    // about one weight read here, so the two runs take about as long.
    CHECK(remote.metrics.makespan_s == doctest::Approx(local.metrics.makespan_s).epsilon(0.05));
}

TEST_CASE("replay: tier rows conserve every request; dynamic placement beats static spill") {
    // The fast tier holds a handful of requests; the rest must go to a slow tier read over a
    // slow link. Prompts arrive prefilled (remote prefill), so the decode batch is what fills
    // memory, as in the Mooncake scenario.
    const workload w = alpaca_workload(120);
    const serving_model sm =
        make_serving_model(tiny_model(1e3, 1e6), tiered_device(3000 * 512, 60000 * 512, 2.0));
    serving_options so = options();
    so.remote_prefill = true;
    policy_options po;
    const auto results = run_policies(tier_policy_names(), w, sm, so, po, &trained_model());
    REQUIRE(results.size() == 3);
    for (const auto& r : results) {
        CAPTURE(r.policy);
        CHECK(r.metrics.finished == w.requests.size());
        CHECK(r.metrics.generated_tokens == w.output_tokens());
        for (std::size_t i = 0; i < w.requests.size(); ++i)
            CHECK(r.requests[i].output_tokens == w.requests[i].output_tokens);
        CHECK(r.allocator_stats.live_leases == 0);
    }
    const replay_metrics &fixed = results[0].metrics, &dynamic = results[1].metrics,
                         &bound = results[2].metrics;
    CHECK(fixed.tier_moved_bytes == 0);  // static placement never moves
    CHECK(fixed.slow_kv_bytes > 0);
    CHECK(dynamic.tier_moved_bytes > 0);
    CHECK(dynamic.tier_move_ns > 0);
    CHECK(bound.tier_move_ns == 0.0);  // the bound's moves are free
    const auto slow_share = [](const replay_metrics& m) {
        return double(m.slow_kv_bytes) / double(m.kv_bytes);
    };
    CHECK(slow_share(dynamic) < slow_share(fixed));
    CHECK(dynamic.tps > 1.2 * fixed.tps);
    // A device without a slow tier has no tier rows.
    const serving_model flat =
        make_serving_model(tiny_model(1e3, 1e6), small_device(1e15, 3000 * 512));
    CHECK_THROWS_AS(run_policy("tier-static", w, flat, so, po, &trained_model()),
                    std::invalid_argument);
}

TEST_CASE("replay: odma-balloon lends the activation share to the KV cache and takes it back") {
    // The tiny model's activations: 2 x 64 hidden + 3 x 256 intermediate, 2 bytes a token, and
    // 4 bytes x 1,000 vocabulary per sampled token. A 512-token budget with 64 sequences needs
    // 512 x 1,792 + 64 x 4,000 bytes at its peak, which the row lends to the KV cache whenever
    // an iteration needs less.
    model_preset m = tiny_model(1e6, 1e8);
    m.hidden = 64;
    m.intermediate = 256;
    m.vocab = 1000;
    CHECK(m.activation_bytes(1, 0) == 2.0 * (2 * 64 + 3 * 256));
    CHECK(m.activation_bytes(0, 1) == 4000.0);
    const serving_model sm = make_serving_model(m, small_device(1e15, 3000 * 512));
    const serving_options so = options();
    CHECK(balloonable_bytes(sm, so) == 512 * 1792 + 64 * 4000);
    const workload w = alpaca_workload(200);
    const auto results = run_policies({"odma", "odma-balloon"}, w, sm, so, {}, &trained_model());
    for (const auto& r : results) {
        CAPTURE(r.policy);
        CHECK(r.metrics.finished == w.requests.size());
        CHECK(r.metrics.generated_tokens == w.output_tokens());
        CHECK(r.allocator_stats.live_leases == 0);
    }
    const replay_metrics &fixed = results[0].metrics, &balloon = results[1].metrics;
    CHECK(fixed.balloon_resizes == 0);
    CHECK(balloon.balloon_resizes > 0);
    // The pool is the fixed arena plus the activation share; the arena ends within it.
    CHECK(results[1].allocator_stats.arena_bytes <= 3000 * 512 + balloonable_bytes(sm, so));
    CHECK(results[1].allocator_stats.arena_bytes >= 3000 * 512 - 512);
    CHECK(
        balloon.activation_spill_ns ==
        doctest::Approx(2.0 * double(balloon.spilled_activation_bytes) / sm.device.host_link_gbps));
}
