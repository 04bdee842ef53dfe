#!/usr/bin/env python3
"""A continuous-batching decode loop whose KV cache lives in odma's arena.

Each request's keys and values are written into the blocks odma.BlockManager hands out (one
plane per layer and K/V: a request's keys of one layer are a few contiguous runs), read back
through the block table for real attention (softmax(q K^T / sqrt(d)) V, in NumPy), and compared
with the same attention over a contiguous copy of the KV. Requests that outgrow the cache are
preempted (newest first) and recomputed later, as vLLM does; migrated requests get their new
block table (odma already copied their KV).

Run: PYTHONPATH=<build>/python python3 examples/python/decode_loop.py   (or after pip install)
"""

import random
import sys
import time

import numpy as np

import odma

LAYERS, HEADS, HEAD_DIM, BLOCK = 2, 2, 16, 16
NUM_BLOCKS, MAX_LEN, REQUESTS, MAX_BATCH = 192, 512, 120, 24


def token_kv(rid, t):
    """The 'model': K and V of token t of request rid, [LAYERS, 2, HEADS, HEAD_DIM]."""
    g = np.random.default_rng(rid * 100003 + t)
    return g.standard_normal((LAYERS, 2, HEADS, HEAD_DIM), dtype=np.float32)


def attention(q, k, v):
    """q [H, D], k and v [T, H, D] -> [H, D]."""
    scores = np.einsum("hd,thd->ht", q, k) / np.sqrt(HEAD_DIM)
    scores -= scores.max(axis=1, keepdims=True)
    w = np.exp(scores)
    w /= w.sum(axis=1, keepdims=True)
    return np.einsum("ht,thd->hd", w, v)


def main():
    t0 = time.perf_counter()
    bm = odma.BlockManager.from_kv_layout(
        NUM_BLOCKS, BLOCK, num_layers=LAYERS, num_kv_heads=HEADS, head_dim=HEAD_DIM,
        dtype_bytes=4, max_model_len=MAX_LEN, max_runs=4)
    # plane 2*l = keys of layer l, 2*l+1 its values: [block, token in block, H*D] float32
    planes = [bm.block_view(p, np.float32) for p in range(2 * LAYERS)]
    rng = random.Random(7)
    waiting = [(i, rng.randint(16, 100), rng.randint(8, 120)) for i in range(REQUESTS)]
    waiting.reverse()
    running = {}  # rid -> dict(prompt, target, tokens, table, ref)
    done_before = {}  # rid -> tokens generated before a preemption
    finished = preemptions = checks = steps = 0
    runs_read = reads = 0

    def write(rid, table, t, kv):
        b, i = table[t // BLOCK], t % BLOCK
        for layer in range(LAYERS):
            planes[2 * layer][b, i] = kv[layer, 0].reshape(-1)
            planes[2 * layer + 1][b, i] = kv[layer, 1].reshape(-1)

    while waiting or running:
        steps += 1
        preempted_now = False
        for rid in sorted(running):
            r = running.get(rid)
            if r is None:
                continue
            while (new := bm.allocate_slots(rid, 1)) is None:  # no room: preempt the newest
                victim = max(running)
                v = running.pop(victim)
                bm.preempt(victim)
                done_before[victim] = v["tokens"] - v["prompt"]
                waiting.append((victim, v["prompt"], v["target"]))
                preemptions += 1
                preempted_now = True
                if victim == rid:
                    break
            if rid not in running:
                continue
            r["table"] += new
            t = r["tokens"]
            kv = token_kv(rid, t)
            write(rid, r["table"], t, kv)
            r["ref"].append(kv)
            r["tokens"] = t + 1
            # attention over the request's KV, read through its block table
            blocks = np.asarray(r["table"])
            ref = np.stack(r["ref"])  # [T, LAYERS, 2, H, D], contiguous
            q = np.random.default_rng(t).standard_normal((HEADS, HEAD_DIM), dtype=np.float32)
            for layer in range(LAYERS):
                k = planes[2 * layer][blocks].reshape(-1, HEADS, HEAD_DIM)[: t + 1]
                v = planes[2 * layer + 1][blocks].reshape(-1, HEADS, HEAD_DIM)[: t + 1]
                out = attention(q, k, v)
                expect = attention(q, ref[:, layer, 0], ref[:, layer, 1])
                assert np.allclose(out, expect, rtol=1e-5, atol=1e-6), (rid, layer)
                checks += 1
            reads += 1
            runs_read += 1 + int(np.count_nonzero(np.diff(blocks) != 1))
            if r["tokens"] - r["prompt"] >= r["target"]:
                bm.free(rid, generated_tokens=r["tokens"] - r["prompt"])
                del running[rid]
                finished += 1
        for rid, table in bm.pop_moved_requests().items():  # migrated: new ids, same data
            running[rid]["table"] = list(table)
        while waiting and not preempted_now and len(running) < MAX_BATCH:
            rid, prompt, target = waiting[-1]
            before = done_before.get(rid, 0)
            tokens = prompt + before  # a preempted request is recomputed
            new = bm.allocate_slots(rid, tokens, prompt_tokens=prompt,
                                    max_new_tokens=target + 8, prompt_text=f"request {rid}")
            if new is None:
                break
            waiting.pop()
            r = running[rid] = dict(prompt=prompt, target=target, tokens=tokens,
                                    table=list(new), ref=[])
            for t in range(tokens):  # prefill: write the prompt's (and recomputed) KV
                kv = token_kv(rid, t)
                write(rid, r["table"], t, kv)
                r["ref"].append(kv)
    assert finished == REQUESTS and bm.usage == 0.0
    bm.check()
    s = bm.stats()
    print(f"{REQUESTS} requests, {steps} steps, {checks} attention checks against a contiguous "
          f"reference: all close")
    print(f"preemptions {preemptions}, migrations {s['migrations']}, appended runs "
          f"{s['appended_runs']}, in-place growths {s['in_place_growths']}, "
          f"mean runs per read {runs_read / reads:.2f}, peak utilization "
          f"{s['peak_used_bytes'] / s['arena_bytes']:.1%}, usage at the end {bm.usage:.0%}")
    print("stats:", {k: (round(v, 4) if isinstance(v, float) else v) for k, v in s.items()})
    print(f"{time.perf_counter() - t0:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
