#!/usr/bin/env python3
"""Costs of odma's Python calls (a benchmark, not a test: it prints figures and never fails).

    PYTHONPATH=<build>/python python3 python/bench/bench_python.py [--rounds N]

Figures are medians over rounds of many calls each (per call, in microseconds):
  admit+extend+release  one round trip of Allocator calls (three C calls through pybind11)
  allocate_slots        BlockManager.allocate_slots(rid, 1) for one decode token over 64
                        running requests (mostly the pure-Python fast path; a block crossing
                        every block_size tokens calls the allocator)
Targets: <= 2 us and <= 1 us.
"""

import argparse
import statistics
import time

import odma


def bench_round_trip(rounds, n):
    a = odma.Allocator(arena_bytes=1 << 26, bytes_per_token=64, max_tokens=4096,
                       buckets="uniform", bucket_count=16)
    keep = [a.admit(100, 1000) for _ in range(32)]  # a few live neighbours
    admit, extend, release = a.admit, a.extend, a.release
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            l = admit(100, 1000)
            extend(l, 101)
            release(l, 1)
        out.append((time.perf_counter_ns() - t0) / n / 1000)
    for l in keep:
        a.release(l, 1)
    return statistics.median(out)


def bench_allocate_slots(rounds, n, batch=64):
    bm = odma.BlockManager(num_blocks=1 << 15, block_size=16, bytes_per_token=64,
                           max_model_len=1 << 15)
    out = []
    for r in range(rounds):
        ids = [(r, i) for i in range(batch)]
        for rid in ids:
            bm.allocate_slots(rid, 100, max_new_tokens=n + 10)
        alloc = bm.allocate_slots
        steps = n // batch
        t0 = time.perf_counter_ns()
        for _ in range(steps):
            for rid in ids:
                alloc(rid, 1)
        out.append((time.perf_counter_ns() - t0) / (steps * batch) / 1000)
        for rid in ids:
            bm.free(rid, steps)
    return statistics.median(out)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--calls", type=int, default=20000)
    args = p.parse_args()
    rt = bench_round_trip(args.rounds, args.calls)
    al = bench_allocate_slots(args.rounds, args.calls)
    print(f"admit+extend+release round trip: {rt:.3f} us (median of {args.rounds} rounds of "
          f"{args.calls}; target <= 2 us)")
    print(f"BlockManager.allocate_slots, one decode token: {al:.3f} us (median of "
          f"{args.rounds} rounds of {args.calls}; target <= 1 us)")


if __name__ == "__main__":
    main()
