// odma/memory/detail/dram_reference.hpp - burst-by-burst DRAM simulation: the reference path of the
// cost model.
//
// Every run is cut into bursts; each burst goes, in stream order, to its channel's controller.
// A controller sees the next `scheduler_window` reads (and buffers `write_queue` writes) and
// schedules them first-ready, first-come-first-served (FR-FCFS): a row hit that can issue goes
// first, otherwise the oldest request opens its row. Open-page policy: rows stay open until
// a conflict or a refresh. Commands issue one at a time, each at the earliest time every
// constraint allows:
//   bank:          tRCD, tRAS, tRC, tRP, tRTP, tWR
//   bank group:    tCCD_L between column commands, tRRD_L between activates, tWTR_L
//   rank:          tRRD_S, four activates per tFAW
//   channel bus:   tCCD_S (one burst), read/write turnaround (RL/WL, tWTR_S, tRTW)
//   command bus:   one slot per command, activate_commands slots per activate; one shared bus
//                  (LPDDR5) or separate row and column buses (HBM)
//   refresh:       all banks precharged and blocked tRFC once per tREFI (optional)
// Writes are drained in batches: the controller serves reads until its write buffer is full (or
// no read is waiting), then writes until half of the buffer is free (or it is empty).
//
// The requester is assumed to keep every controller's queue full (a bandwidth-bound kernel
// with many loads in flight), so channels never wait for one another: each channel is an
// independent simulation and the stream ends when the last channel delivers its last burst.
// Ignored: rank-to-rank switching, power-down, WCK synchronisation commands, data-path
// dependencies of copies (a copy's write never waits for its own read).
//
// This path costs O(bursts x banks per channel) time. The fast path (dram_cost.hpp) is derived
// from it and tested against it.
#pragma once

#include <odma/memory/access_report.hpp>
#include <odma/memory/memory_model.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace odma::memory::detail {

/// One contiguous access of a stream. For a migration, `offset` is the destination and `source`
/// the source; bytes are copied in `copy_chunk_bytes` pieces, each read then written.
struct dram_run {
    access_kind kind = access_kind::read;
    std::uint64_t offset = 0;
    std::uint64_t bytes = 0;
    std::uint64_t source = 0;
};

/// Pieces a copy engine moves at a time (one DMA burst: read this much, then write it).
inline constexpr std::uint64_t copy_chunk_bytes = 2048;

/// Per-kind counts of a reference simulation.
struct dram_kind_counts {
    std::uint64_t bursts = 0;
    std::uint64_t activations = 0;
    std::uint64_t reopened_after_refresh = 0;  ///< of the activations: a row refresh closed
};

struct dram_reference_result {
    double makespan_ns = 0;                 ///< when the last burst of the stream completed
    std::vector<double> channel_finish_ns;  ///< per channel; 0 for a channel with no bursts
    std::vector<std::uint64_t> channel_bursts;
    std::array<dram_kind_counts, access_kinds> kinds{};
};

/// One channel's controller and banks.
class dram_channel {
public:
    struct request {
        std::uint64_t row;
        std::uint32_t bank;   ///< flat bank within the channel
        std::uint32_t group;  ///< rank * bank_groups + bank group
        std::uint32_t rank;
        std::uint8_t kind;
        bool write;
    };

    dram_channel(const memory_model& m, bool refresh, double refresh_phase_ns)
        : m_(m)
        , banks_(m.banks_per_channel())
        , groups_(std::size_t(m.ranks) * m.bank_groups)
        , ranks_(m.ranks)
        , refresh_(refresh)
        , next_refresh_(refresh_phase_ns) {
        for (auto& p : pending_)
            p.resize(m.banks_per_channel());
        // Row commands on their own bus (HBM) or sharing one command/address bus (LPDDR).
        row_slot_ = m.command_ns / m.row_bus_share;
    }

    void push(const request& r) { arrivals_.push_back(r); }
    std::size_t size() const { return arrivals_.size(); }

    /// Serves every pushed request; returns when the last data burst completes.
    double run(std::array<dram_kind_counts, access_kinds>& counts) {
        std::size_t next = 0;
        bool write_mode = false;
        const std::size_t capacity[2] = {m_.scheduler_window, m_.write_queue};
        for (;;) {
            // The front end hands requests to the controller in stream order and stops at the
            // first one whose queue is full.
            while (next < arrivals_.size()) {
                const request& r = arrivals_[next];
                if (queued_[r.write] >= capacity[r.write]) break;
                pending_[r.write][r.bank].push_back(std::uint32_t(next++));
                ++queued_[r.write];
            }
            const std::size_t reads = queued_[0], writes = queued_[1];
            if (reads == 0 && writes == 0) break;
            if (!write_mode && (writes >= m_.write_queue || reads == 0))
                write_mode = true;
            else if (write_mode && (writes == 0 || (reads != 0 && writes <= m_.write_queue / 2)))
                write_mode = false;
            step(write_mode, counts);
        }
        return finish_;
    }

private:
    static constexpr double never = -std::numeric_limits<double>::infinity();
    static constexpr std::int64_t closed = -1;

    struct bank_state {
        std::int64_t open_row = closed;
        std::int64_t refreshed_row = closed;  ///< the row a refresh closed, until the next command
        double act_ok = 0;  ///< earliest activate (tRC after the last one, tRP after precharge)
        double col_ok = 0;  ///< earliest column command (tRCD after activate)
        double pre_ok = 0;  ///< earliest precharge (tRAS, tRTP, write recovery)
    };
    struct group_state {
        double last_col = never;
        double last_act = never;
        double read_ok = 0;  ///< tWTR_L after a write to this group
    };
    struct rank_state {
        double last_act = never;
        std::array<double, 4> window{never, never, never, never};  ///< last four activates
        std::size_t oldest = 0;
    };
    enum class command : std::uint8_t { column, activate, precharge };

    /// Issues the one command that can go first among the queued reads (or writes).
    void step(bool writes, std::array<dram_kind_counts, access_kinds>& counts) {
        double best_t = std::numeric_limits<double>::infinity();
        std::uint32_t best_age = 0, best_bank = 0;
        std::size_t best_pos = 0;
        command best_c = command::column;
        auto& pending = pending_[writes];
        for (std::uint32_t b = 0; b < pending.size(); ++b) {
            const auto& list = pending[b];
            if (list.empty()) continue;
            const bank_state& bs = banks_[b];
            // The oldest request that hits the open row goes first (FR-FCFS); without one, the
            // oldest request precharges or activates. A row with a waiting hit is never closed.
            std::size_t pos = 0;
            command c = bs.open_row == closed ? command::activate : command::precharge;
            if (bs.open_row != closed)
                for (std::size_t i = 0; i < list.size(); ++i)
                    if (std::int64_t(arrivals_[list[i]].row) == bs.open_row) {
                        pos = i;
                        c = command::column;
                        break;
                    }
            const request& r = arrivals_[list[pos]];
            const double t = c == command::column     ? column_time(r)
                             : c == command::activate ? activate_time(r)
                                                      : std::max({now_, bs.pre_ok, row_bus_});
            // Earliest first; at equal times a column command, then the older request.
            if (t < best_t ||
                (t == best_t && (int(c) < int(best_c) || (c == best_c && list[pos] < best_age)))) {
                best_t = t;
                best_c = c;
                best_age = list[pos];
                best_bank = b;
                best_pos = pos;
            }
        }
        if (refresh_ && best_t >= next_refresh_) {
            refresh();
            return;
        }
        const request& r = arrivals_[best_age];
        now_ = best_t;
        switch (best_c) {
            case command::column: {
                issue_column(r, best_t);
                ++counts[r.kind].bursts;
                auto& list = pending[best_bank];
                list.erase(list.begin() + std::ptrdiff_t(best_pos));
                --queued_[writes];
                break;
            }
            case command::activate:
                if (banks_[r.bank].refreshed_row == std::int64_t(r.row))
                    ++counts[r.kind].reopened_after_refresh;
                issue_activate(r, best_t);
                ++counts[r.kind].activations;
                break;
            case command::precharge: {
                bank_state& bs = banks_[r.bank];
                bs.open_row = bs.refreshed_row = closed;
                bs.act_ok = std::max(bs.act_ok, best_t + m_.tRP);
                row_bus_ = best_t + row_slot_;
                if (!m_.separate_row_bus) column_bus_ = row_bus_;
                break;
            }
        }
    }

    double column_time(const request& r) const {
        const group_state& g = groups_[r.group];
        double t = std::max({now_, banks_[r.bank].col_ok, last_col_ + m_.tCCD_S,
                             g.last_col + m_.tCCD_L, column_bus_});
        return r.write ? std::max(t, write_ok_) : std::max({t, read_ok_, g.read_ok});
    }
    double activate_time(const request& r) const {
        const rank_state& k = ranks_[r.rank];
        return std::max({now_, banks_[r.bank].act_ok, k.last_act + m_.tRRD_S,
                         groups_[r.group].last_act + m_.tRRD_L, k.window[k.oldest] + m_.tFAW,
                         row_bus_});
    }

    void issue_column(const request& r, double t) {
        bank_state& bs = banks_[r.bank];
        group_state& g = groups_[r.group];
        last_col_ = g.last_col = t;
        column_bus_ = t + m_.command_ns;
        if (!m_.separate_row_bus) row_bus_ = column_bus_;
        const double burst = m_.burst_ns();
        double data_end;
        if (r.write) {
            data_end = t + m_.write_latency + burst;
            bs.pre_ok = std::max(bs.pre_ok, data_end + m_.tWR);
            read_ok_ = std::max(read_ok_, data_end + m_.tWTR_S);
            g.read_ok = std::max(g.read_ok, data_end + m_.tWTR_L);
        } else {
            data_end = t + m_.read_latency + burst;
            bs.pre_ok = std::max(bs.pre_ok, t + m_.tRTP);
            // The write's data may start only after the read's data left the bus.
            write_ok_ = std::max(write_ok_, data_end + m_.tRTW - m_.write_latency);
        }
        finish_ = std::max(finish_, data_end);
    }
    void issue_activate(const request& r, double t) {
        bank_state& bs = banks_[r.bank];
        bs.open_row = std::int64_t(r.row);
        bs.refreshed_row = closed;
        bs.col_ok = t + m_.tRCD;
        bs.pre_ok = t + m_.tRAS;
        bs.act_ok = t + m_.tRC;
        rank_state& k = ranks_[r.rank];
        k.last_act = t;
        k.window[k.oldest] = t;
        k.oldest = (k.oldest + 1) % k.window.size();
        groups_[r.group].last_act = t;
        row_bus_ = t + m_.activate_commands * row_slot_;
        if (!m_.separate_row_bus) column_bus_ = row_bus_;
    }
    /// All-bank refresh: precharge everything (once each bank may be), then tRFC.
    void refresh() {
        double start = std::max(now_, next_refresh_);
        for (const bank_state& b : banks_)
            if (b.open_row != closed) start = std::max(start, b.pre_ok);
        const double done = start + m_.tRP + m_.tRFC;
        for (bank_state& b : banks_) {
            b.refreshed_row = b.open_row;
            b.open_row = closed;
            b.act_ok = std::max(b.act_ok, done);
        }
        now_ = start;
        next_refresh_ += m_.tREFI;
    }

    const memory_model& m_;
    std::vector<request> arrivals_;
    /// [write?][bank]: queued requests (indices into arrivals_), oldest first.
    std::array<std::vector<std::vector<std::uint32_t>>, 2> pending_;
    std::array<std::size_t, 2> queued_{0, 0};
    std::vector<bank_state> banks_;
    std::vector<group_state> groups_;
    std::vector<rank_state> ranks_;
    double row_slot_ = 0;
    double row_bus_ = 0, column_bus_ = 0;  ///< when the command bus(es) are next free
    double now_ = 0;
    double last_col_ = never;
    double read_ok_ = 0, write_ok_ = 0;
    double finish_ = 0;
    bool refresh_;
    double next_refresh_;
};

/// Simulates `runs` as one stream on model `m`. `simulate_channel(c)` selects the channels to
/// simulate (the others are skipped and report 0): channels are independent, so a statistical
/// estimate can simulate a few of them.
template <class ChannelFilter>
dram_reference_result simulate_reference(const memory_model& m, std::span<const dram_run> runs,
                                         bool refresh, ChannelFilter&& simulate_channel) {
    m.validate();
    std::vector<dram_channel> channels;
    channels.reserve(m.channels);
    for (std::uint32_t c = 0; c < m.channels; ++c)
        channels.emplace_back(m, refresh, m.refresh_phase_ns(c));
    std::vector<bool> wanted(m.channels);
    for (std::uint32_t c = 0; c < m.channels; ++c)
        wanted[c] = bool(simulate_channel(std::uint32_t(c)));

    const std::uint64_t chunk = m.chunk_bytes();
    auto emit = [&](std::uint64_t first, std::uint64_t end, std::uint8_t kind, bool write) {
        // Bursts [first, end) of one contiguous range, in address order; one locate() per chunk.
        for (std::uint64_t b = first; b < end;) {
            const std::uint64_t addr = b * m.burst_bytes;
            const std::uint64_t chunk_end =
                std::min(end, (addr / chunk + 1) * chunk / m.burst_bytes);
            if (wanted[m.channel_of(addr)]) {
                const dram_location at = m.locate(addr);
                const dram_channel::request r{
                    at.row, at.bank, at.rank * m.bank_groups + at.bank_group, at.rank, kind, write};
                for (; b < chunk_end; ++b)
                    channels[at.channel].push(r);
            }
            b = chunk_end;
        }
    };
    auto bursts_of = [&](std::uint64_t offset, std::uint64_t bytes) {
        return std::pair{offset / m.burst_bytes, (offset + bytes - 1) / m.burst_bytes + 1};
    };
    for (const dram_run& run : runs) {
        if (run.bytes == 0) continue;
        const auto kind = std::uint8_t(run.kind);
        if (run.kind != access_kind::migration) {
            const auto [first, end] = bursts_of(run.offset, run.bytes);
            emit(first, end, kind, run.kind == access_kind::write);
            continue;
        }
        for (std::uint64_t done = 0; done < run.bytes; done += copy_chunk_bytes) {
            const std::uint64_t n = std::min(copy_chunk_bytes, run.bytes - done);
            const auto [rf, re] = bursts_of(run.source + done, n);
            emit(rf, re, kind, false);
            const auto [wf, we] = bursts_of(run.offset + done, n);
            emit(wf, we, kind, true);
        }
    }

    dram_reference_result out;
    out.channel_finish_ns.assign(m.channels, 0.0);
    out.channel_bursts.assign(m.channels, 0);
    for (std::uint32_t c = 0; c < m.channels; ++c) {
        if (!wanted[c] || channels[c].size() == 0) continue;
        out.channel_bursts[c] = channels[c].size();
        out.channel_finish_ns[c] = channels[c].run(out.kinds);
        out.makespan_ns = std::max(out.makespan_ns, out.channel_finish_ns[c]);
    }
    return out;
}

inline dram_reference_result simulate_reference(const memory_model& m,
                                                std::span<const dram_run> runs,
                                                bool refresh = true) {
    return simulate_reference(m, runs, refresh, [](std::uint32_t) { return true; });
}

}  // namespace odma::memory::detail
