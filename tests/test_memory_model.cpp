// memory_model: presets, address mapping, validation, and the report's arithmetic.
#include <odma/memory/access_report.hpp>
#include <odma/memory/memory_model.hpp>

#include <doctest/doctest.h>

#include <set>
#include <stdexcept>
#include <tuple>

using odma::memory::access_report;
using odma::memory::access_totals;
using odma::memory::address_mapping;
using odma::memory::memory_model;

TEST_CASE("presets are consistent and have the documented peak bandwidth") {
    const memory_model lp5 = memory_model::lpddr5_6400();
    const memory_model lp5x = memory_model::lpddr5x_8533();
    const memory_model hbm = memory_model::hbm3();
    for (const memory_model* m : {&lp5, &lp5x, &hbm})
        CHECK_NOTHROW(m->validate());
    CHECK(lp5.peak_bytes_per_ns() == doctest::Approx(307.2));  // MLU370-X4 vendor figure
    CHECK(lp5.capacity_bytes == 24ull << 30);
    CHECK(lp5x.peak_bytes_per_ns() == doctest::Approx(409.6));
    CHECK(hbm.peak_bytes_per_ns() == doctest::Approx(3328.0));
    CHECK(hbm.capacity_bytes == 80ull << 30);
    CHECK(lp5.burst_ns() == doctest::Approx(2.5));  // BL16 on x16 at 6400 MT/s
    CHECK(lp5.rows_per_bank() == 32768);            // 8 Gb per channel
    // HBM3 has many more banks in parallel and smaller pages than LPDDR5.
    CHECK(hbm.channels * hbm.banks_per_channel() > 10 * lp5.channels * lp5.banks_per_channel());
    CHECK(hbm.row_bytes < lp5.row_bytes);
    CHECK(lp5.name != hbm.name);
}

TEST_CASE("bank-group-interleaved mapping: consecutive chunks change bank group, then channel") {
    const memory_model m = memory_model::lpddr5_6400();
    const std::uint64_t chunk = m.chunk_bytes();
    CHECK(chunk == 128);
    CHECK(m.channel_granule_bytes() == 512);
    // Bursts inside one chunk share the bank and row.
    CHECK(m.locate(0).bank == m.locate(chunk - 1).bank);
    // The next chunk is the next bank group of the same channel.
    CHECK(m.locate(chunk).channel == m.locate(0).channel);
    CHECK(m.locate(chunk).bank_group != m.locate(0).bank_group);
    // After bank_groups chunks the channel changes; channel_of agrees with locate.
    CHECK(m.locate(m.channel_granule_bytes()).channel == 1);
    for (std::uint64_t a = 0; a < 64 * 1024 * 1024; a += 4093 * 37)
        CHECK(m.channel_of(a) == m.locate(a).channel);
    // A stripe opens one row per (channel, bank group): all of them distinct tuples.
    std::set<std::tuple<std::uint32_t, std::uint32_t, std::uint64_t>> rows;
    for (std::uint64_t a = 0; a < m.stripe_bytes(); a += chunk) {
        const auto at = m.locate(a);
        rows.insert({at.channel, at.bank, at.row});
    }
    CHECK(rows.size() == m.tuples_per_stripe());
}

TEST_CASE("row-in-bank-group mapping keeps a channel's row in one bank group") {
    memory_model m = memory_model::lpddr5_6400();
    m.mapping = address_mapping::row_in_bank_group(4);
    m.validate();
    CHECK(m.channel_granule_bytes() == 128);
    // Every chunk of a channel inside one stripe is in the same bank group and row.
    const auto first = m.locate(0);
    for (std::uint64_t a = 0; a < m.stripe_bytes(); a += m.channel_granule_bytes() * m.channels) {
        CHECK(m.locate(a).bank_group == first.bank_group);
        CHECK(m.locate(a).row == first.row);
    }
}

TEST_CASE("the XOR hash spreads power-of-two strides over the banks") {
    const memory_model m = memory_model::lpddr5_6400();
    memory_model plain = m;
    plain.mapping.xor_bank_with_row = false;
    // Buffers 4096 stripes (768 MiB) apart: rows 1024 apart in the same bank without the hash.
    std::set<std::uint32_t> hashed, unhashed;
    const std::uint64_t stride = std::uint64_t(m.banks_per_group) * 1024 * m.stripe_bytes();
    for (std::uint64_t i = 0; i < 16; ++i) {
        hashed.insert(m.locate(i * stride).bank);
        unhashed.insert(plain.locate(i * stride).bank);
    }
    CHECK(unhashed.size() == 1);
    CHECK(hashed.size() > 4);
}

TEST_CASE("validate names the inconsistent field") {
    memory_model m = memory_model::lpddr5_6400();
    m.capacity_bytes += 4096;  // not a whole number of rows
    CHECK_THROWS_AS(m.validate(), std::invalid_argument);
    m = memory_model::lpddr5_6400();
    m.mapping.column_low_bursts = 3;  // does not divide a row
    CHECK_THROWS_WITH_AS(m.validate(), doctest::Contains("column_low_bursts"),
                         std::invalid_argument);
    m = memory_model::lpddr5_6400();
    m.tCCD_S = 1.0;  // shorter than one burst on the bus
    CHECK_THROWS_AS(m.validate(), std::invalid_argument);
    m = memory_model::lpddr5_6400();
    m.tRFC = m.tREFI;
    CHECK_THROWS_AS(m.validate(), std::invalid_argument);
    m = memory_model::lpddr5_6400();
    m.bank_groups = 3;  // the XOR hash needs powers of two
    m.capacity_bytes =
        std::uint64_t(m.rows_per_bank()) * m.channels * m.banks_per_channel() * m.row_bytes;
    CHECK_THROWS_WITH_AS(m.validate(), doctest::Contains("power-of-two"), std::invalid_argument);
}

TEST_CASE("access totals: time is the sum of the two layers, bandwidth is bytes over time") {
    access_report r;
    // bytes, runs, bursts, row_hits, activations, dram_ns, discontinuity_ns
    r.read = {1000, 2, 40, 30, 10, 8.0, 2.0};
    r.write = {500, 1, 20, 20, 0, 5.0, 0.0};
    CHECK(r.read.total_ns() == 10.0);
    CHECK(r.read.effective_gbps() == doctest::Approx(100.0));
    CHECK(r.read.row_hit_rate() == doctest::Approx(0.75));
    const access_totals all = r.all();
    CHECK(all.bytes == 1500);
    CHECK(all.runs == 3);
    CHECK(all.bursts == 60);
    CHECK(all.activations == 10);
    CHECK(all.total_ns() == doctest::Approx(15.0));
    CHECK(access_totals{}.effective_gbps() == 0.0);
    CHECK(access_totals{}.row_hit_rate() == 0.0);
    CHECK(&r[odma::memory::access_kind::migration] == &r.migration);
}
