// odma/memory/memory_model.hpp - what a DRAM device looks like to the cost model.
//
// The cost model is its own subsystem (namespace odma::memory): a device description
// (memory_model, here), what it reports (access_report.hpp), a burst-level reference simulator
// and the O(1) fast path derived from it (detail/). It knows nothing about backings; the
// backing that costs accesses on it (odma/backing/accounted.hpp) depends on it.
//
// Glossary (one screen):
//   channel      an independent data bus with its own controller queue (LPDDR5: one x16
//                channel; HBM3: one pseudo-channel). Channels work in parallel.
//   rank         a set of banks with its own activation limits on a shared channel bus (HBM3
//                stack ID); 1 for LPDDR5.
//   bank group   banks that share column circuitry: back-to-back column commands to the same
//                group must be tCCD_L apart, to different groups only tCCD_S (= one burst).
//   bank, row    a bank holds one open row (page) of row_bytes at a time. Reading the open row
//                is a row hit; another row costs precharge (tRP) + activate (tRCD) first.
//   burst        the bytes one column command moves on one channel (32 B for LPDDR5 BL16 x16
//                and for HBM3 BL8 x32).
//   chunk        column_low_bursts consecutive bursts: the bytes that stay in one bank before
//                the address mapping moves to the next bank group or channel.
//   stripe       the address range over which every (channel, bank group) opens one row of the
//                same bank: consecutive stripes move to the next bank, then the next row.
//   run          one contiguous access (read(offset, bytes)); a new run is a discontinuity.
//
// The model has two layers, reported separately (docs/cost-model.md):
//   dram_ns           DRAM timing: bursts, activations, bank/bank-group/activation-window limits,
//                     refresh, channel parallelism, as a controller would schedule them;
//   discontinuity_ns  accelerator side: a fixed cost per run start (block-table lookup,
//                     address/descriptor computation, TLB, lost prefetch, shorter DMA bursts).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace odma::memory {

/// How a device address is split into channel, bank group, bank, row and column.
///
/// Fields from the least significant address bits up:
///
///   bank_group_interleaved:  burst | column-low | bank group | channel | column-high | bank | row
///   row_in_bank_group:       burst | column-low | channel | column-high | bank group | bank | row
///
/// The first keeps consecutive chunks in different bank groups, so a stream (or any run longer
/// than bank_groups chunks) never waits for tCCD_L; the second keeps a whole row of a channel in
/// one bank group, the "simple" mapping that halves streaming on LPDDR5 in bank-group mode
/// (AMD PG313: 95% vs 54% sequential efficiency). With xor_bank_with_row the bank group and
/// bank indices are XORed with the row bits folded together (permutation-based interleaving),
/// so addresses that differ by a multiple of a stripe do not all land in the same bank.
struct address_mapping {
    std::uint32_t column_low_bursts = 4;  ///< bursts per chunk (chunk = 128 B for 32 B bursts)
    bool bank_group_below_channel = true;
    bool xor_bank_with_row = true;

    static constexpr address_mapping bank_group_interleaved(std::uint32_t chunk_bursts,
                                                            bool xor_hash = true) {
        return {chunk_bursts, true, xor_hash};
    }
    static constexpr address_mapping row_in_bank_group(std::uint32_t chunk_bursts,
                                                       bool xor_hash = true) {
        return {chunk_bursts, false, xor_hash};
    }
    friend bool operator==(const address_mapping&, const address_mapping&) = default;
};

/// Where one burst lives: what memory_model::locate() returns. The reference simulator queues
/// each burst at its channel and bank by it, and tests check an address mapping through it.
struct dram_location {
    std::uint32_t channel = 0;
    std::uint32_t rank = 0;
    std::uint32_t bank_group = 0;  ///< within the rank
    std::uint32_t bank = 0;        ///< flat index within the channel (rank, group, bank)
    std::uint64_t row = 0;
};

/// A DRAM device (geometry, timing, address mapping, controller) plus the accelerator-side
/// cost of a discontinuity. All timings in nanoseconds, sizes in bytes. It is a plain value:
/// the accounted backing, the reference simulator and the fast path all read the same one, and
/// two equal models share one calibration.
///
/// Use a preset (lpddr5_6400, lpddr5x_8533, hbm3) or fill one in and call validate(). The
/// defaults describe one LPDDR5-6400 x16 channel in bank-group mode (the sources are given at
/// lpddr5_6400(), which adds the organisation of a whole device to them).
struct memory_model {
    std::string name;

    // --- geometry ---------------------------------------------------------------------------
    std::uint32_t channels = 1;  ///< independent channels (pseudo-channels for HBM)
    std::uint32_t channel_width_bits = 16;
    double data_rate_mts = 6400;    ///< transfers per second per pin, in millions
    std::uint32_t ranks = 1;        ///< activation domains sharing one channel bus
    std::uint32_t bank_groups = 4;  ///< per rank
    std::uint32_t banks_per_group = 4;
    std::uint32_t row_bytes = 2048;    ///< page size of one bank
    std::uint32_t burst_bytes = 32;    ///< bytes per column command
    std::uint64_t capacity_bytes = 0;  ///< whole device

    // --- timing (ns) ------------------------------------------------------------------------
    double tRCD = 18;             ///< activate to column command
    double tRP = 18;              ///< precharge to activate
    double tRAS = 42;             ///< activate to precharge
    double tRC = 60;              ///< activate to activate, same bank
    double tRRD_S = 5;            ///< activate to activate, different bank group (same rank)
    double tRRD_L = 5;            ///< activate to activate, same bank group
    double tFAW = 20;             ///< at most four activates per rank in any tFAW window
    double tCCD_S = 2.5;          ///< column to column, different bank group (one burst on the bus)
    double tCCD_L = 5;            ///< column to column, same bank group
    double tRTP = 7.5;            ///< read to precharge
    double tWR = 34;              ///< end of write data to precharge
    double tWTR_S = 6.25;         ///< end of write data to read, different bank group
    double tWTR_L = 12;           ///< end of write data to read, same bank group
    double tRTW = 1.25;           ///< extra bus gap when a write follows a read
    double read_latency = 21.25;  ///< RL: read command to first data
    double write_latency = 13.75;  ///< WL: write command to first data
    double tRFC = 210;             ///< all-bank refresh: the channel is unavailable this long ...
    double tREFI = 3906;           ///< ... once per this interval

    // --- command bus ------------------------------------------------------------------------
    /// One command slot (one command clock). Every command takes a slot, an activate takes
    /// `activate_commands` (LPDDR5 sends ACT-1 then ACT-2): on LPDDR5 the command bus, not the
    /// banks, is what limits 64-byte random reads.
    double command_ns = 1.25;
    std::uint32_t activate_commands = 2;
    /// HBM has separate row (activate, precharge) and column (read, write) command buses;
    /// LPDDR5 has one command/address bus for all.
    bool separate_row_bus = false;
    /// Share of its row-command bus a channel gets: HBM3's two pseudo-channels share their
    /// channel's row bus, modelled as each getting every other slot (0.5).
    double row_bus_share = 1.0;

    // --- address mapping and controller -----------------------------------------------------
    address_mapping mapping{};
    /// Read requests (bursts) a channel controller can see and reorder (FR-FCFS window).
    std::uint32_t scheduler_window = 64;
    /// Write bursts a channel buffers before it must drain them (writes are drained in batches,
    /// as real controllers do, to amortise read/write bus turnarounds).
    std::uint32_t write_queue = 64;

    // --- fast path ---------------------------------------------------------------------------
    /// Bursts the reference simulator runs per point when it calibrates the fast path (once per
    /// model and access kind, on first use). 8000 keeps read and write costs within about 2% of
    /// a four times longer calibration, in tens of milliseconds; smaller values start faster.
    std::uint32_t calibration_bursts = 8000;

    // --- accelerator side -------------------------------------------------------------------
    /// Time one discontinuity (run start) costs the accelerator, device-wide (already divided by
    /// the engine's parallelism). Added on top of the DRAM time; see docs/cost-model.md.
    double discontinuity_ns = 0;

    // --- derived quantities -----------------------------------------------------------------
    /// Bytes per ns of one channel at its pin rate.
    double channel_bytes_per_ns() const {
        return double(channel_width_bits) / 8.0 * data_rate_mts / 1000.0;
    }
    /// Peak bandwidth of the whole device in bytes per ns (numerically equal to GB/s).
    double peak_bytes_per_ns() const { return channels * channel_bytes_per_ns(); }
    /// Time one burst occupies the data bus.
    double burst_ns() const { return burst_bytes / channel_bytes_per_ns(); }
    std::uint32_t banks_per_rank() const { return bank_groups * banks_per_group; }
    std::uint32_t banks_per_channel() const { return ranks * banks_per_rank(); }
    std::uint32_t row_bursts() const { return row_bytes / burst_bytes; }
    std::uint64_t rows_per_bank() const {
        const std::uint64_t per_row = std::uint64_t(channels) * banks_per_channel() * row_bytes;
        return per_row ? capacity_bytes / per_row : 0;
    }
    std::uint32_t chunk_bytes() const { return mapping.column_low_bursts * burst_bytes; }
    /// Consecutive bytes that stay on one channel before the next channel takes over.
    std::uint32_t channel_granule_bytes() const {
        return chunk_bytes() * (mapping.bank_group_below_channel ? bank_groups : 1);
    }
    /// Distinct (channel, bank group) rows a stripe opens; any `tuples_per_stripe()` consecutive
    /// chunks of one stripe touch all of them.
    std::uint32_t tuples_per_stripe() const {
        return channels * (mapping.bank_group_below_channel ? bank_groups : 1);
    }
    std::uint64_t stripe_bytes() const {
        return std::uint64_t(row_bytes) * channels *
               (mapping.bank_group_below_channel ? bank_groups : 1);
    }
    /// Time a busy channel loses to one all-bank refresh: precharge, tRFC, then reopening a row
    /// (tRCD) after waiting for the last read to allow the precharge (tRTP). Matches the
    /// reference simulator within about 2% (tests/test_memory_reference.cpp).
    double refresh_loss_ns() const { return tRFC + tRP + tRCD + tRTP; }
    /// Streaming time lost to refresh on average, as a stretch factor (> 1).
    double refresh_stretch() const { return tREFI / (tREFI - refresh_loss_ns()); }
    /// When channel c first refreshes: channels are staggered evenly over tREFI, so that they
    /// never all stop at once.
    double refresh_phase_ns(std::uint32_t c) const { return tREFI * (c + 0.5) / channels; }
    /// Latency of the first read of an idle device: activate, read latency, one burst.
    double first_access_ns() const { return tRCD + read_latency + burst_ns(); }

    /// The channel of byte `address` (the channel field is a plain modulo of the address).
    std::uint32_t channel_of(std::uint64_t address) const {
        return std::uint32_t(address / channel_granule_bytes() % channels);
    }

    /// Where the burst that holds byte `address` lives.
    dram_location locate(std::uint64_t address) const {
        std::uint64_t b = address / burst_bytes;
        dram_location at;
        b /= mapping.column_low_bursts;
        if (mapping.bank_group_below_channel) {
            at.bank_group = std::uint32_t(b % bank_groups);
            b /= bank_groups;
        }
        at.channel = std::uint32_t(b % channels);
        b /= channels;
        b /= row_bursts() / mapping.column_low_bursts;  // column-high
        if (!mapping.bank_group_below_channel) {
            at.bank_group = std::uint32_t(b % bank_groups);
            b /= bank_groups;
        }
        std::uint32_t bank_in_group = std::uint32_t(b % banks_per_group);
        b /= banks_per_group;
        at.rank = std::uint32_t(b % ranks);
        b /= ranks;
        at.row = b;
        if (mapping.xor_bank_with_row) {
            // Fold every row bit into log2(banks per rank) bits, so that rows a power of two
            // apart (two buffers 2^k bytes apart) still fall into different banks.
            const std::uint32_t width = std::uint32_t(std::countr_zero(banks_per_rank()));
            std::uint64_t folded = 0;
            for (std::uint64_t r = at.row; r && width; r >>= width)
                folded ^= r & (banks_per_rank() - 1);
            at.bank_group ^= std::uint32_t(folded % bank_groups);
            bank_in_group ^= std::uint32_t(folded / bank_groups % banks_per_group);
        }
        at.bank = (at.rank * bank_groups + at.bank_group) * banks_per_group + bank_in_group;
        return at;
    }

    /// Throws std::invalid_argument naming the first inconsistent field.
    void validate() const {
        auto fail = [&](const char* what) {
            throw std::invalid_argument("odma::memory::memory_model '" + name + "': " + what);
        };
        if (channels == 0 || channel_width_bits == 0 || data_rate_mts <= 0) fail("empty channel");
        if (ranks == 0 || bank_groups == 0 || banks_per_group == 0) fail("no banks");
        if (burst_bytes == 0 || row_bytes == 0 || row_bytes % burst_bytes != 0)
            fail("row_bytes must be a multiple of burst_bytes");
        if (mapping.column_low_bursts == 0 || row_bursts() % mapping.column_low_bursts != 0)
            fail("column_low_bursts must divide the bursts of a row");
        if (mapping.xor_bank_with_row &&
            (!std::has_single_bit(bank_groups) || !std::has_single_bit(banks_per_group)))
            fail("xor_bank_with_row needs power-of-two bank_groups and banks_per_group");
        if (rows_per_bank() == 0 ||
            rows_per_bank() * channels * banks_per_channel() * row_bytes != capacity_bytes)
            fail("capacity_bytes must be a whole number of rows in every bank");
        const std::array<double, 19> t{
            tRCD,         tRP,    tRAS,  tRC,           tRRD_S,          tRRD_L, tFAW,
            tCCD_S,       tCCD_L, tRTP,  tWR,           tWTR_S,          tWTR_L, tRTW,
            read_latency, tRFC,   tREFI, write_latency, discontinuity_ns};
        for (double v : t)
            if (!(v >= 0)) fail("timings must be non-negative numbers");
        if (tCCD_S + 1e-9 < burst_ns()) fail("tCCD_S is shorter than one burst on the bus");
        if (tREFI <= refresh_loss_ns()) fail("tREFI must exceed tRFC + tRP + tRCD + tRTP");
        if (scheduler_window == 0 || write_queue == 0) fail("controller queues must be non-empty");
        if (calibration_bursts == 0) fail("calibration_bursts must be positive");
        if (!(command_ns >= 0) || !(row_bus_share > 0 && row_bus_share <= 1))
            fail("command_ns must be >= 0 and row_bus_share in (0, 1]");
    }

    friend bool operator==(const memory_model&, const memory_model&) = default;

    // --- presets ----------------------------------------------------------------------------
    // Sources are listed per value; docs/cost-model.md discusses them.

    /// LPDDR5-6400 in bank-group mode, organised like a Cambricon MLU370-X4: 24 GB on 24 x16
    /// channels = 307.2 GB/s (vendor spec). Every per-channel value is the default above:
    /// timings are JESD209-5 class values as used by gem5's LPDDR5_6400_1x16_BG_BL16 and
    /// Ramulator 2's LPDDR5_6400 (tRCD = tRP = 18, tRAS = 42, tRRD = 5, tFAW = 20, tCCD_L =
    /// 4 tCK = 5, RL = 17 tCK, WL = 11 tCK, tCK = 1.25 ns, one command slot per tCK); tRFCab =
    /// 210 ns for the 8 Gb per channel this capacity implies (JEDEC table in Ramulator 2); BL16
    /// x 16 bit = 32 B bursts; the bank group changes every 128 B.
    static memory_model lpddr5_6400() {
        memory_model m;  // one LPDDR5-6400 channel: the defaults
        m.name = "lpddr5-6400";
        m.channels = 24;
        m.capacity_bytes = 24ull << 30;
        m.scheduler_window = m.write_queue = 128;  // gem5: 64-entry read and write buffers of 64 B
        m.discontinuity_ns = 20;
        return m;
    }

    /// LPDDR5X-8533 with the same organisation (24 x16 channels, 24 GB): 409.6 GB/s. The array
    /// timings in ns (tRCD, tRP, tRAS, tRRD, tFAW, refresh) and RL/WL are kept at LPDDR5's
    /// values: they are set by the DRAM core, not the interface. Bus-clocked spacings scale with
    /// tCK = 0.9375 ns (tCCD_L = 4 tCK). So the bus gets faster and activations do not.
    static memory_model lpddr5x_8533() {
        memory_model m = lpddr5_6400();
        m.name = "lpddr5x-8533";
        m.data_rate_mts = 8533.33;
        const double ck = 8000.0 / m.data_rate_mts;  // 4:1 WCK:CK, DDR: tCK = 0.9375 ns
        m.tCCD_S = 2 * ck;                           // one BL16 burst
        m.tCCD_L = 4 * ck;
        m.tRTW = ck;
        m.command_ns = ck;
        return m;
    }

    /// HBM3 for contrast, organised like an NVIDIA H100 SXM5: 80 GB in 5 stacks, 16 channels x
    /// 2 pseudo-channels per stack = 160 independent 32-bit pseudo-channels at 5.2 Gb/s
    /// (3.33 TB/s), 8-high stacks (2 stack IDs with their own activation windows), 4 bank
    /// groups x 4 banks per stack ID, 1 KB pages. Timings: Ramulator 2's HBM3_5.2Gbps preset
    /// (JESD238A organisation; values derived from DRAMsim3's HBM2 in ns), tCK = 0.769 ns.
    /// Every field is given (an HBM3 device shares little with the LPDDR5 defaults).
    static memory_model hbm3() {
        constexpr double ck = 4000.0 / 5200;  // tCK at 5200 MT/s: 0.769 ns
        return {.name = "hbm3",
                .channels = 160,
                .channel_width_bits = 32,
                .data_rate_mts = 5200,
                .ranks = 2,
                .bank_groups = 4,
                .banks_per_group = 4,
                .row_bytes = 1024,
                .burst_bytes = 32,  // BL8 x 32 bit
                .capacity_bytes = 80ull << 30,
                .tRCD = 19 * ck,
                .tRP = 19 * ck,
                .tRAS = 45 * ck,
                .tRC = 63 * ck,
                .tRRD_S = 2 * ck,
                .tRRD_L = 4 * ck,
                .tFAW = 39 * ck,
                .tCCD_S = 2 * ck,
                .tCCD_L = 4 * ck,
                .tRTP = 6 * ck,
                .tWR = 21 * ck,
                .tWTR_S = 8 * ck,
                .tWTR_L = 11 * ck,
                .tRTW = 3 * ck,
                .read_latency = 19 * ck,
                .write_latency = 6 * ck,
                .tRFC = 350,  // 8 Gb per channel (Ramulator 2 JEDEC table)
                .tREFI = 3900,
                .command_ns = ck,
                .activate_commands = 2,  // a 2-cycle ACT on the row bus (Ramulator 2)
                .separate_row_bus = true,
                .row_bus_share = 0.5,
                .mapping = address_mapping::bank_group_interleaved(4),  // bank group every 128 B
                .scheduler_window = 64,  // DRAMsim3 HBM2: 32-command queue per rank, 2 ranks
                .write_queue = 64,
                .calibration_bursts = 8000,
                .discontinuity_ns = 0.25};
    }

    /// A host CPU's memory seen as the device: what its cores stream, not what its DIMMs could.
    /// A core pulls far less than a server's DDR5 channels deliver (its outstanding misses, not
    /// the DRAM, set the rate), so this is a fictitious DDR5 device whose pin rate is chosen to
    /// stream `stream_gbps` with refresh: the figure a benchmark measured on the host (see
    /// host-epyc in odma-replay's presets). Geometry and timings are DDR5-4800B class values
    /// (JESD79-5: 32-bit subchannels, BL16 = 64 B bursts, 8 bank groups x 4 banks, 4 KiB rows of
    /// four x8 chips, tRCD = tRP = 16.25, tRAS 32, tRRD_S 3.33, tRRD_L = tCCD_L = 5, tFAW 13.3,
    /// RL 16.7, WL 15.8, tRFC1 295 (16 Gb), tREFI 3900, one command slot per tCK = 0.417); only
    /// the burst spacing (tCCD_S, and tCCD_L where shorter) follows the chosen rate. Two
    /// subchannels (one DIMM), bank groups interleaved every 64 B. `capacity_bytes` must be a
    /// multiple of 256 MiB (whole rows in every bank).
    static memory_model host_ddr5(double stream_gbps, std::uint64_t capacity_bytes,
                                  double discontinuity_ns) {
        constexpr double ck4800 = 2000.0 / 4800;  // tCK of DDR5-4800: 0.4167 ns
        memory_model m{.name = "host-ddr5",
                       .channels = 2,
                       .channel_width_bits = 32,
                       .data_rate_mts = 4800,
                       .ranks = 1,
                       .bank_groups = 8,
                       .banks_per_group = 4,
                       .row_bytes = 4096,
                       .burst_bytes = 64,
                       .capacity_bytes = capacity_bytes,
                       .tRCD = 39 * ck4800,
                       .tRP = 39 * ck4800,
                       .tRAS = 32,
                       .tRC = 32 + 39 * ck4800,
                       .tRRD_S = 8 * ck4800,
                       .tRRD_L = 5,
                       .tFAW = 32 * ck4800,
                       .tCCD_S = 8 * ck4800,
                       .tCCD_L = 5,
                       .tRTP = 7.5,
                       .tWR = 30,
                       .tWTR_S = 2.5,
                       .tWTR_L = 10,
                       .tRTW = 2 * ck4800,
                       .read_latency = 40 * ck4800,
                       .write_latency = 38 * ck4800,
                       .tRFC = 295,
                       .tREFI = 3900,
                       .command_ns = ck4800,
                       .activate_commands = 1,
                       .separate_row_bus = false,
                       .row_bus_share = 1.0,
                       .mapping = address_mapping::bank_group_interleaved(1),
                       .scheduler_window = 64,
                       .write_queue = 64,
                       .calibration_bursts = 8000,
                       .discontinuity_ns = discontinuity_ns};
        // The pin rate that streams stream_gbps once refresh has taken its share.
        m.data_rate_mts =
            stream_gbps * m.refresh_stretch() * 1000.0 / (m.channels * m.channel_width_bits / 8.0);
        m.tCCD_S = m.burst_ns();  // one burst on the bus at that rate
        m.tCCD_L = std::max(m.tCCD_L, m.tCCD_S);
        return m;
    }
};

}  // namespace odma::memory
