// predict::ngram: learning, calibration, determinism, online updates and the model file.
#include <odma/concepts.hpp>
#include <odma/errc.hpp>
#include <odma/predict/detail/text_features.hpp>
#include <odma/predict/ngram.hpp>
#include <odma/support/random.hpp>

#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <vector>

using odma::predict::ngram;
using odma::predict::training_sample;

static_assert(odma::Predictor<ngram>);
static_assert(std::is_copy_constructible_v<ngram> && std::is_nothrow_move_constructible_v<ngram>);

namespace {

// Synthetic prompts whose answer length is set by their task word, with log-normal noise:
// "essay" ~ 800 tokens, "translate" ~ 60, "yes/no" ~ 4, anything else ~ 150. Filler words
// make every prompt different.
struct synthetic {
    std::vector<std::string> texts;
    std::vector<std::uint32_t> lengths;
    std::vector<std::uint32_t> medians;

    synthetic(std::size_t n, std::uint64_t seed, double noise = 0.25) {
        static const char* tasks[] = {"write an essay about", "translate this sentence:",
                                      "answer yes or no:", "tell me about"};
        static const std::uint32_t median[] = {800, 60, 4, 150};
        static const char* filler[] = {"cats",  "history", "rivers", "space", "music",
                                       "bread", "trains",  "cities", "rain",  "chess",
                                       "glass", "winter",  "robots", "maps",  "salt"};
        odma::support::splitmix64 rng(seed);
        for (std::size_t i = 0; i < n; ++i) {
            const auto t = rng.below(4);
            std::string text = tasks[t];
            const auto words = 2 + rng.below(6);
            for (std::uint64_t w = 0; w < words; ++w)
                text += std::string(" ") + filler[rng.below(std::size(filler))];
            const double u1 = std::max(rng.unit(), 1e-12), u2 = rng.unit();
            const double z = std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
            texts.push_back(text);
            medians.push_back(median[t]);
            lengths.push_back(std::uint32_t(std::max(1.0, median[t] * std::exp(noise * z))));
        }
    }

    std::vector<training_sample> samples() const {
        std::vector<training_sample> s;
        for (std::size_t i = 0; i < texts.size(); ++i)
            s.push_back({request(i), lengths[i]});
        return s;
    }
    odma::request request(std::size_t i) const {
        return {.id = i,
                .prompt_tokens = std::uint32_t(texts[i].size() / 4 + 1),
                .max_new_tokens = 4096,
                .prompt_text = texts[i]};
    }
};

std::string file_bytes(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), std::streamsize(bytes.size()));
}

// Runs f, which must throw std::system_error with `code`; returns the message.
template <class F>
std::string error_of(F&& f, odma::errc code) {
    try {
        f();
    } catch (const std::system_error& e) {
        CHECK(e.code() == code);
        return e.what();
    }
    FAIL("no exception");
    return {};
}

const ngram::options fast{.epochs = 4};

}  // namespace

TEST_CASE("an untrained ngram predicts the request's max_new_tokens") {
    const ngram m;
    CHECK_FALSE(m.trained());
    const odma::request r{.id = 1, .prompt_tokens = 10, .max_new_tokens = 321, .prompt_text = "hi"};
    CHECK(m.predict(r) == odma::prediction::exact(321));
    CHECK(m.distribution(r).quantile(0.5) == 321);
}

TEST_CASE("ngram learns task words from text and generalises to unseen prompts") {
    const synthetic train(3000, 1), test(400, 2);
    ngram m;
    m.train(train.samples(), fast);
    REQUIRE(m.trained());
    std::size_t close = 0;
    for (std::size_t i = 0; i < test.texts.size(); ++i) {
        const double predicted = m.predict(test.request(i)).tokens();
        const double ratio = predicted / test.medians[i];
        close += ratio > 0.6 && ratio < 1.6;
    }
    // A broken SGD step, feature hash or softmax lands far from this.
    CHECK(double(close) / double(test.texts.size()) > 0.9);
    // The spread is learned too: the 90% quantile of an essay is well above its median.
    const auto p = m.predict(test.request(0));
    CHECK(p.quantile(0.9) > p.tokens());
}

TEST_CASE("ngram uses the request class and the prompt length when there is no text") {
    std::vector<training_sample> samples;
    odma::support::splitmix64 rng(3);
    for (std::uint64_t i = 0; i < 4000; ++i) {
        const auto tag = std::uint32_t(1 + i % 2);
        const auto prompt = std::uint32_t(8 << rng.below(6));  // 8 .. 256
        // Class 2 answers 4x longer; longer prompts get longer answers.
        const double base = (tag == 2 ? 4.0 : 1.0) * 20.0 * std::sqrt(double(prompt));
        samples.push_back({{.id = i, .prompt_tokens = prompt, .max_new_tokens = 8192, .tag = tag},
                           std::uint32_t(base * (0.9 + 0.2 * rng.unit()))});
    }
    ngram m;
    m.train(samples, fast);
    auto median = [&](std::uint32_t prompt, std::uint32_t tag) {
        return double(
            m.predict({.id = 0, .prompt_tokens = prompt, .max_new_tokens = 8192, .tag = tag})
                .tokens());
    };
    CHECK(median(64, 2) / median(64, 1) == doctest::Approx(4.0).epsilon(0.3));
    CHECK(median(256, 1) / median(16, 1) == doctest::Approx(4.0).epsilon(0.3));
    CHECK(median(64, 1) == doctest::Approx(160.0).epsilon(0.2));
}

TEST_CASE("ngram quantiles are calibrated on held-out prompts") {
    const synthetic train(4000, 5, 0.6), test(3000, 6, 0.6);
    ngram m;
    m.train(train.samples(), fast);
    for (const double level : {0.5, 0.8, 0.9, 0.95}) {
        std::size_t covered = 0;
        for (std::size_t i = 0; i < test.texts.size(); ++i)
            covered += m.predict(test.request(i)).quantile(level) >= test.lengths[i];
        const double rate = double(covered) / double(test.texts.size());
        CAPTURE(level);
        CHECK(rate == doctest::Approx(level).epsilon(0.06));
    }
    CHECK_FALSE(m.calibration().is_identity());
}

TEST_CASE("predictions respect the request's max_new_tokens") {
    const synthetic train(1000, 7);
    ngram m;
    m.train(train.samples(), fast);
    auto r = train.request(0);
    r.max_new_tokens = 3;
    const auto p = m.predict(r);
    for (const auto q : p.quantiles())
        CHECK(q <= 3);
}

TEST_CASE("ngram training is deterministic for a seed") {
    const synthetic train(800, 9);
    const std::string a = "odma_test_ngram_a.bin", b = "odma_test_ngram_b.bin",
                      c = "odma_test_ngram_c.bin";
    ngram m1, m2, m3;
    m1.train(train.samples(), {.epochs = 2, .seed = 5});
    m2.train(train.samples(), {.epochs = 2, .seed = 5});
    m3.train(train.samples(), {.epochs = 2, .seed = 6});
    m1.save(a);
    m2.save(b);
    m3.save(c);
    CHECK(file_bytes(a) == file_bytes(b));
    CHECK(file_bytes(a) != file_bytes(c));
    for (const auto& p : {a, b, c})
        std::remove(p.c_str());
}

TEST_CASE("a saved ngram loads back with identical predictions") {
    const synthetic train(1500, 11), test(200, 12);
    ngram m;
    m.train(train.samples(), {.char_ngram = 3, .word_pairs = true, .epochs = 3});
    const std::string path = "odma_test_ngram_roundtrip.bin";
    m.save(path);
    const ngram loaded = ngram::load(path);
    CHECK(loaded.trained());
    CHECK(loaded.settings().char_ngram == 3);
    CHECK(loaded.settings().word_pairs);
    CHECK(loaded.classes() == m.classes());
    CHECK(loaded.calibration() == m.calibration());
    for (std::size_t i = 0; i < test.texts.size(); ++i)
        CHECK(loaded.predict(test.request(i)) == m.predict(test.request(i)));
    // Small on disk: only trained rows are written.
    CHECK(file_bytes(path).size() < 4u << 20);
    std::remove(path.c_str());
}

TEST_CASE("loading a missing, foreign, truncated or corrupt file fails with a clear error") {
    const synthetic train(300, 13);
    ngram m;
    m.train(train.samples(), {.epochs = 1});
    const std::string path = "odma_test_ngram_bad.bin";
    m.save(path);
    const std::string good = file_bytes(path);

    auto msg = error_of([] { (void)ngram::load("no/such/odma_model.bin"); }, odma::errc::io_error);
    CHECK(msg.find("no/such/odma_model.bin") != std::string::npos);

    write_bytes(path, "not a model at all, just some text that is long enough");
    msg = error_of([&] { (void)ngram::load(path); }, odma::errc::bad_format);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find("magic") != std::string::npos);

    write_bytes(path, good.substr(0, good.size() - 10));
    msg = error_of([&] { (void)ngram::load(path); }, odma::errc::bad_format);
    CHECK(msg.find("truncated") != std::string::npos);

    std::string flipped = good;
    flipped[flipped.size() / 2] ^= 0x5a;
    write_bytes(path, flipped);
    msg = error_of([&] { (void)ngram::load(path); }, odma::errc::bad_format);
    CHECK(msg.find("checksum") != std::string::npos);

    std::string newer = good;
    newer[8] = 9;  // format version
    write_bytes(path, newer);
    msg = error_of([&] { (void)ngram::load(path); }, odma::errc::bad_format);
    CHECK(msg.find("version") != std::string::npos);

    write_bytes(path, good.substr(0, 20));
    (void)error_of([&] { (void)ngram::load(path); }, odma::errc::bad_format);

    error_of([&] { m.save("no/such/dir/model.bin"); }, odma::errc::io_error);
    std::remove(path.c_str());
}

TEST_CASE("observe keeps learning online, and an untrained model learns from scratch") {
    const synthetic train(2000, 15);
    ngram m;
    m.train(train.samples(), fast);
    const auto r = train.request(0);
    const auto before = m.predict(r).tokens();
    // The world changes: every answer is now ten times longer.
    for (int round = 0; round < 3; ++round)
        for (std::size_t i = 0; i < train.texts.size(); ++i)
            m.observe(train.request(i), train.lengths[i] * 10);
    CHECK(m.predict(r).tokens() > 3 * before);
    CHECK(m.observations() == 3 * train.texts.size());

    ngram cold(ngram::options{.warmup = 100});
    for (std::size_t i = 0; i < 99; ++i)
        cold.observe(train.request(i), train.lengths[i]);
    CHECK_FALSE(cold.trained());
    CHECK(cold.predict(r) == odma::prediction::exact(r.max_new_tokens));
    for (int round = 0; round < 5; ++round)
        for (std::size_t i = 0; i < train.texts.size(); ++i)
            cold.observe(train.request(i), train.lengths[i]);
    CHECK(cold.trained());
    const double ratio = double(cold.predict(train.request(1)).tokens()) / train.medians[1];
    CHECK(ratio > 0.5);
    CHECK(ratio < 2.0);
}

TEST_CASE("bad ngram options are refused") {
    CHECK_THROWS_AS(ngram(ngram::options{.hash_bits = 4}), std::invalid_argument);
    CHECK_THROWS_AS(ngram(ngram::options{.classes = 1}), std::invalid_argument);
    CHECK_THROWS_AS(ngram(ngram::options{.char_ngram = 9}), std::invalid_argument);
    ngram m;
    const std::vector<training_sample> none;
    CHECK_THROWS_AS(m.train(none, {.learning_rate = 0}), std::invalid_argument);
    CHECK_THROWS_AS(m.train(none, {.calibration_fraction = 1.0}), std::invalid_argument);
    m.train(none);  // nothing to learn from: stays untrained
    CHECK_FALSE(m.trained());
}

TEST_CASE("text features: case, white space and punctuation are normalised") {
    auto features = [](std::string_view text, odma::predict::char_grams mode) {
        std::vector<std::pair<int, std::uint64_t>> out;
        odma::predict::detail::for_each_text_feature(
            text, mode, 4, true, 4096,
            [&](auto kind, std::uint64_t h) { out.emplace_back(int(decltype(kind)::value), h); });
        return out;
    };
    using odma::predict::char_grams;
    for (const auto mode : {char_grams::none, char_grams::affixes, char_grams::windows}) {
        CHECK(features("Write an Essay!", mode) == features("  write   an\tESSAY!", mode));
        CHECK(features("write an essay", mode) != features("write an essays", mode));
    }
    // Affixes: one word of 7 letters gives a token, a prefix and a suffix.
    const auto f = features("explain", char_grams::affixes);
    CHECK(f.size() == 4);  // word, pair with the start, prefix "expl", suffix "lain"
    // Only the first max_bytes are read.
    std::size_t n = 0;
    odma::predict::detail::for_each_text_feature("aaaa bbbb cccc", char_grams::none, 0, false, 4,
                                                 [&](auto, std::uint64_t) { ++n; });
    CHECK(n == 1);
}
