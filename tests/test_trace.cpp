// odma_internal/trace.hpp: the bundled traces load, and the prompt split is clean.
#include <odma_internal/trace.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <set>

using namespace odma::tools;

TEST_CASE("the bundled AlpacaEval slice loads with prompt text") {
    const auto t = load_trace(ODMA_TEST_DATA_DIR "/alpaca_eval_lengths.csv");
    CHECK(t.requests.size() == 20123);
    CHECK(t.has_text);
    CHECK_FALSE(t.has_arrivals);
    std::set<std::uint64_t> prompts;
    for (const auto& r : t.requests) {
        CHECK_FALSE(r.prompt_text.empty());
        prompts.insert(r.prompt_id);
    }
    CHECK(prompts.size() == 805);
}

TEST_CASE("the bundled Azure trace loads with increasing arrival times") {
    const auto t = load_trace(ODMA_TEST_DATA_DIR "/azure2023_conv.csv");
    REQUIRE(t.requests.size() == 19366);
    CHECK(t.has_arrivals);
    CHECK(t.requests.front().arrival_s == 0.0);
    CHECK(t.requests.front().prompt_tokens == 374);
    CHECK(t.requests.front().output_tokens == 44);
    // The trace spans 18:15:46.68 to 19:14:08.40.
    CHECK(t.requests.back().arrival_s == doctest::Approx(3501.72).epsilon(1e-6));
    for (std::size_t i = 1; i < t.requests.size(); ++i)
        REQUIRE(t.requests[i].arrival_s >= t.requests[i - 1].arrival_s);
}

TEST_CASE("the bundled NQ trace loads with questions") {
    const auto t = load_trace(ODMA_TEST_DATA_DIR "/nq.csv");
    CHECK(t.requests.size() == 7179);
    CHECK(t.requests[0].prompt_text == "when was the last time anyone was on the moon");
}

TEST_CASE("split_by_prompt never puts one prompt on both sides and is deterministic") {
    const auto t = load_trace(ODMA_TEST_DATA_DIR "/alpaca_eval_lengths.csv");
    std::vector<const trace_request*> train, test, train2, test2;
    split_by_prompt(t, 0.2, 42, train, test);
    split_by_prompt(t, 0.2, 42, train2, test2);
    CHECK(train == train2);
    std::set<std::uint64_t> a, b;
    for (auto* r : train)
        a.insert(r->prompt_id);
    for (auto* r : test)
        b.insert(r->prompt_id);
    for (auto id : b)
        CHECK(a.count(id) == 0);
    CHECK(double(b.size()) / 805.0 == doctest::Approx(0.2).epsilon(0.3));
    CHECK(train.size() + test.size() == t.requests.size());
}

TEST_CASE("malformed traces fail with the file and line") {
    const std::string path = "odma_test_bad_trace.csv";
    {
        std::ofstream f(path);
        f << "prompt_tokens,output_tokens\n10,20\n30,abc\n";
    }
    try {
        (void)load_trace(path);
        FAIL("no exception");
    } catch (const trace_error& e) {
        CHECK(std::string(e.what()).find(path + ":3") != std::string::npos);
    }
    std::remove(path.c_str());
    CHECK_THROWS_AS((void)load_trace("does/not/exist.csv"), trace_error);
}

TEST_CASE("JSON lines: escapes and unicode are decoded") {
    detail::json_line j(
        R"({"a": "x\"y\\z\n", "b": 12, "c": "\u00e9\ud83d\ude00", "d": [1, "]"], "e": "t"})",
        "test");
    CHECK(j.at("a") == "x\"y\\z\n");
    CHECK(j.at("b") == "12");
    CHECK(j.at("c") == "\xc3\xa9\xf0\x9f\x98\x80");
    CHECK(j.at("e") == "t");
    CHECK_THROWS_AS(detail::json_line("{\"a\": \"open", "t"), trace_error);
}

TEST_CASE("the bundled Mooncake trace loads: arrivals in ms, lengths, first prefix block") {
    const auto t = load_trace(ODMA_TEST_DATA_DIR "/mooncake_synthetic.jsonl");
    REQUIRE(t.requests.size() == 3993);
    CHECK(t.has_arrivals);
    CHECK_FALSE(t.has_text);
    CHECK(t.requests[0].arrival_s == 0.0);
    CHECK(t.requests[0].prompt_tokens == 40160);
    CHECK(t.requests[0].output_tokens == 6);
    CHECK(t.requests[0].prompt_id == 0);
    CHECK(t.requests[1].prompt_id == 79);
    CHECK(t.requests[2].arrival_s == doctest::Approx(0.040));
    CHECK(t.requests[2].prompt_id == 151);
    double input = 0;
    std::uint32_t longest = 0, longest_output = 0;
    for (const auto& r : t.requests) {
        input += r.prompt_tokens;
        longest = std::max(longest, r.prompt_tokens);
        longest_output = std::max(longest_output, r.output_tokens);
    }
    // The figures data/README.md gives for the file.
    CHECK(input / double(t.requests.size()) == doctest::Approx(15325.5).epsilon(1e-4));
    CHECK(longest == 191378);
    CHECK(longest_output == 893);
    CHECK(t.requests.back().arrival_s == doctest::Approx(1022.0).epsilon(0.01));
}

TEST_CASE("a Mooncake line without a length fails with the file and line") {
    const std::string path = "odma_test_bad_mooncake.jsonl";
    {
        std::ofstream out(path);
        out << "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 2, \"hash_ids\": [1]}\n"
            << "{\"timestamp\": 5, \"input_length\": 10}\n";
    }
    try {
        (void)load_trace(path);
        FAIL("no error");
    } catch (const trace_error& e) {
        CHECK(std::string(e.what()).find(path + ":2") != std::string::npos);
        CHECK(std::string(e.what()).find("output_length") != std::string::npos);
    }
    std::remove(path.c_str());
}
