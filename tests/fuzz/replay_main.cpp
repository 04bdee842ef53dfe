// Replays the fuzz target without libFuzzer, so every ordinary test run (any compiler, the
// sanitizer presets included) exercises it:
//
//   odma_fuzz_replay [--random N] [--seed S] PATH...
//
// Each PATH is an input file or a directory of them (the committed corpus); --random adds N
// inputs of seeded random bytes. Exits non-zero if a path cannot be read; a contract breach
// aborts inside the target.
#include "fuzz_allocator.hpp"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace {

bool replay_file(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) return false;
    const std::vector<char> bytes((std::istreambuf_iterator<char>(f)),
                                  std::istreambuf_iterator<char>());
    odma_fuzz::run_one(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t random_inputs = 0;
    std::uint64_t seed = 1;
    std::size_t files = 0;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--random" && i + 1 < argc) {
            random_inputs = std::strtoull(argv[++i], nullptr, 10);
        } else if (arg == "--seed" && i + 1 < argc) {
            seed = std::strtoull(argv[++i], nullptr, 10);
        } else if (std::filesystem::is_directory(arg)) {
            for (const auto& e : std::filesystem::directory_iterator(arg))
                if (e.is_regular_file()) files += replay_file(e.path()) ? 1 : 0;
        } else if (replay_file(arg)) {
            ++files;
        } else {
            std::fprintf(stderr, "odma_fuzz_replay: cannot read %s\n", arg.c_str());
            return 2;
        }
    }
    std::mt19937_64 rng(seed);
    std::vector<std::uint8_t> input;
    for (std::size_t n = 0; n < random_inputs; ++n) {
        input.resize(rng() % 2048);
        for (auto& b : input)
            b = std::uint8_t(rng());
        odma_fuzz::run_one(input.data(), input.size());
    }
    std::fprintf(stderr, "odma_fuzz_replay: %zu corpus files, %zu random inputs\n", files,
                 random_inputs);
    odma_fuzz::print_totals();
    return 0;
}
