// odma-memory-costs: what each access pattern costs on each memory preset: the table
// docs/cost-model.md and the README show. Sequential streaming, random 64-byte lines, scattered 16
// KiB blocks (a paged KV cache's blocks: 16 tokens x 1 KiB of one layer's K or V) and scattered 2
// KiB pages, with the two layers of the cost model broken out:
//   GB/s          bytes / (DRAM time + discontinuity time): what the pattern achieves
//   DRAM GB/s     bytes / DRAM time: the device alone
//   DRAM vs seq   DRAM GB/s as a fraction of sequential streaming's
//   disc. share   the accelerator-side discontinuity layer's share of the total time
//   row hits      bursts that found their row open
// With --reference, one more column: DRAM GB/s of the same stream on the burst-level reference
// simulator (slow: use a smaller --mib).
//
// The discontinuity layer charges one block-table lookup per run, so "random 64 B" reads as a
// paged layout with 64-byte blocks would; the DRAM columns are the device alone.
//
// Usage: odma-memory-costs [--json] [--mib N] [--reference] [--device NAME]
//   N MiB per pattern (default 64); NAME one of lpddr5-6400, lpddr5x-8533, hbm3 (default all)
#include <odma/backing/accounted.hpp>
#include <odma/memory/detail/dram_reference.hpp>
#include <odma/support/random.hpp>

#include <odma_internal/table.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

namespace {

using odma::memory::access_kind;
using odma::memory::memory_model;
using odma::memory::detail::dram_run;

struct pattern {
    const char* name;
    std::uint64_t run_bytes;  ///< 0: one sequential run
};

std::vector<dram_run> stream(const memory_model& m, const pattern& p, std::uint64_t bytes,
                             std::uint64_t seed) {
    if (p.run_bytes == 0) return {{access_kind::read, 0, bytes, 0}};
    odma::support::splitmix64 rng(seed);
    const std::uint64_t places = m.capacity_bytes / p.run_bytes;
    std::vector<dram_run> runs(bytes / p.run_bytes);
    for (auto& r : runs)
        r = {access_kind::read, rng.below(places) * p.run_bytes, p.run_bytes, 0};
    return runs;
}

}  // namespace

int main(int argc, char** argv) {
    bool json = false, reference = false;
    std::uint64_t mib = 64;
    std::string only;
    for (int i = 1; i < argc; ++i) {
        if (!std::strcmp(argv[i], "--json")) {
            json = true;
        } else if (!std::strcmp(argv[i], "--reference")) {
            reference = true;
        } else if (!std::strcmp(argv[i], "--mib") && i + 1 < argc) {
            mib = std::strtoull(argv[++i], nullptr, 10);
        } else if (!std::strcmp(argv[i], "--device") && i + 1 < argc) {
            only = argv[++i];
        } else {
            std::fprintf(stderr, "usage: %s [--json] [--mib N] [--reference] [--device NAME]\n",
                         argv[0]);
            return 2;
        }
    }
    if (mib == 0) {
        std::fprintf(stderr, "--mib must be at least 1\n");
        return 2;
    }
    const pattern patterns[] = {{"sequential", 0},
                                {"random 64 B", 64},
                                {"scattered 16 KiB blocks", 16384},
                                {"scattered 2 KiB pages", 2048}};
    std::vector<std::string> header{"device",    "pattern",     "GB/s",        "% of peak",
                                    "DRAM GB/s", "DRAM vs seq", "disc. share", "row hits"};
    if (reference) header.push_back("ref DRAM GB/s");
    odma::tools::table t(header);
    int devices = 0;
    for (const memory_model& m :
         {memory_model::lpddr5_6400(), memory_model::lpddr5x_8533(), memory_model::hbm3()}) {
        if (!only.empty() && m.name != only) continue;
        ++devices;
        auto device = odma::backing::make_placement_device(m);
        double sequential_dram = 0;
        for (const pattern& p : patterns) {
            device.reset_report();
            const auto runs = stream(m, p, mib << 20, 1);
            for (const dram_run& r : runs)
                device.read(r.offset, r.bytes);
            const auto a = device.report().all();
            const double dram_gbps = double(a.bytes) / a.dram_ns;
            if (p.run_bytes == 0) sequential_dram = dram_gbps;
            t.row()
                .add(m.name)
                .add(p.name)
                .add(a.effective_gbps(), 1)
                .add_percent(a.effective_gbps() / m.peak_bytes_per_ns(), 1)
                .add(dram_gbps, 1)
                .add_percent(dram_gbps / sequential_dram, 1)
                .add_percent(a.discontinuity_ns / a.total_ns(), 1)
                .add_percent(a.row_hit_rate(), 1);
            if (reference)
                t.add(
                    double(a.bytes) / odma::memory::detail::simulate_reference(m, runs).makespan_ns,
                    1);
        }
    }
    if (devices == 0) {
        std::fprintf(stderr, "no device named '%s'\n", only.c_str());
        return 2;
    }
    if (json) {
        t.to_json(std::cout);
        std::cout << '\n';
    } else {
        t.print(std::cout);
        std::cout << "\nPeak: lpddr5-6400 307.2 GB/s (MLU370-X4), lpddr5x-8533 409.6 GB/s, hbm3 "
                     "3328 GB/s (H100 SXM5). Discontinuity cost per run: "
                  << memory_model::lpddr5_6400().discontinuity_ns << " ns (LPDDR presets), "
                  << memory_model::hbm3().discontinuity_ns << " ns (hbm3).\n";
    }
}
