"""odma.BlockManager: vLLM V1 KVCacheManager's contract over odma."""

import random

import numpy as np
import pytest

import odma

K = 16  # block size


def make(num_blocks=256, **kw):
    opts = dict(num_blocks=num_blocks, block_size=K, bytes_per_token=64, max_model_len=1024)
    opts.update(kw)
    return odma.BlockManager(**opts)


def blocks_from_runs(bm, request_id, plane=0):
    """The block ids the lease's runs cover (runs are block-aligned)."""
    lease = bm._reqs[request_id].lease
    a = bm.allocator
    plane_base = plane * a.plane_tokens * a.bytes_per_plane_token
    block_bytes = K * a.bytes_per_plane_token
    ids = []
    for off, n in a.runs(lease, plane):
        first = (off - plane_base) // block_bytes
        ids += range(first, first + (n + block_bytes - 1) // block_bytes)
    return ids


def test_first_allocation_returns_the_prompt_blocks():
    bm = make()
    assert bm.num_total_blocks == 256
    assert bm.usage == 0.0 and bm.num_free_blocks == 256
    new = bm.allocate_slots("r1", 40, prompt_text="Summarise this", tag="chat",
                            max_new_tokens=100)
    assert len(new) == 3
    assert bm.get_block_ids("r1") == new
    assert bm.num_tokens("r1") == 40
    assert 0.0 < bm.usage <= 1.0
    assert bm.num_free_blocks < 256
    assert bm.get_num_free_blocks() == bm.num_free_blocks
    bm.check()


def test_decode_returns_only_new_blocks():
    bm = make()
    table = bm.allocate_slots("r", 16, max_new_tokens=200)
    assert len(table) == 1
    for step in range(1, 100):
        new = bm.allocate_slots("r", 1)
        tokens = 16 + step
        if (tokens - 1) % K == 0:  # crossed into a new block
            assert len(new) == 1
            table += new
        else:
            assert new == []
        moved = bm.pop_moved_requests()
        if "r" in moved:
            table = moved["r"]
        assert bm.get_block_ids("r") == table
        assert len(table) == (tokens + K - 1) // K
    assert blocks_from_runs(bm, "r") == table
    bm.check()


def test_get_block_ids_is_consistent_with_runs_in_every_plane():
    bm = odma.BlockManager.from_kv_layout(128, K, num_layers=2, num_kv_heads=2, head_dim=4,
                                          dtype_bytes=4, max_model_len=512, max_runs=4)
    assert bm.allocator.planes == 4
    for i in range(6):
        bm.allocate_slots(i, 20 + 7 * i, max_new_tokens=50)
    for _ in range(60):
        for i in range(6):
            if bm.allocate_slots(i, 1) is None:
                bm.free(i)
    for rid in list(bm._reqs):
        for p in range(4):
            assert blocks_from_runs(bm, rid, p) == bm.get_block_ids(rid)
    bm.check()


def test_none_when_full_and_nothing_changes():
    bm = make(num_blocks=64, max_model_len=512, predictor="constant")
    admitted = []
    for i in range(100):
        new = bm.allocate_slots(i, 100)
        if new is None:
            break
        admitted.append(i)
    assert new is None and i not in bm._reqs
    assert bm.get_block_ids(i) == []
    before = bm.stats()["reserved_bytes"]
    assert bm.allocate_slots("late", 200) is None
    assert bm.stats()["reserved_bytes"] == before
    for rid in admitted:
        bm.free(rid)
    assert bm.usage == 0.0 and bm.num_free_blocks == bm.num_total_blocks


def test_decode_growth_can_fail_with_none_and_keep_the_request():
    bm = make(num_blocks=40, max_model_len=320, predictor="constant", constant_tokens=1,
              buckets="uniform", bucket_count=20, safety_pool_fraction=0.0, max_runs=2)
    ids = []
    while True:
        rid = len(ids)
        if bm.allocate_slots(rid, 16, max_new_tokens=300) is None:
            break
        ids.append(rid)
    held = bm.get_block_ids(ids[0])
    result = bm.allocate_slots(ids[0], 300 - 16)
    assert result is None
    assert bm.get_block_ids(ids[0]) == held
    assert bm.num_tokens(ids[0]) == 16
    bm.check()


def test_free_teaches_and_abandons():
    bm = make(predictor="prompt_quantile")
    bm.allocate_slots("a", 30)
    bm.allocate_slots("b", 30)
    bm.allocate_slots("a", 10)
    bm.free("a", generated_tokens=10)
    bm.free("b")  # cancelled: nothing learnt
    bm.free("never-seen")  # ignored, as vLLM does
    s = bm.stats()
    assert s["live_leases"] == 0 and s["releases"] == 2
    assert bm.usage == 0.0
    assert bm.get_block_ids("a") == []


def test_preempt_then_resume():
    bm = make()
    bm.allocate_slots("p", 40, max_new_tokens=300, prompt_text="once upon a time")
    for _ in range(25):
        bm.allocate_slots("p", 1)
    bm.preempt("p")
    assert bm.get_block_ids("p") == [] and bm.usage == 0.0
    # vLLM recomputes a preempted request: prompt + generated so far in one call
    new = bm.allocate_slots("p", 65)
    assert len(new) == (65 + K - 1) // K
    assert bm.stats()["resumptions"] == 1
    bm.allocate_slots("p", 1)
    bm.free("p", generated_tokens=26)
    assert bm.usage == 0.0
    bm.check()


def test_chunked_prefill_and_lookahead():
    bm = make()
    first = bm.allocate_slots("c", 32, prompt_tokens=100, max_new_tokens=50)
    assert len(first) == 2 and bm.num_tokens("c") == 32
    more = bm.allocate_slots("c", 68, num_computed_tokens=32)
    assert len(first + more) == (100 + K - 1) // K
    bm.allocate_slots("c", 1, num_lookahead_tokens=4)
    assert bm.num_tokens("c") == 105
    assert len(bm.get_block_ids("c")) == (105 + K - 1) // K
    bm.free("c", 5)


def test_migration_is_reported():
    bm = make(num_blocks=128, max_model_len=512, max_runs=1, predictor="constant",
              constant_tokens=1, buckets="uniform", bucket_count=32, safety_pool_fraction=0.0,
              lend_reserved=False)
    bm.allocate_slots("a", 16, max_new_tokens=400)
    bm.allocate_slots("b", 16, max_new_tokens=400)
    old = bm.get_block_ids("a")
    view = bm.block_view(0, np.float32)
    view[old[0]] = 1.5
    new = bm.allocate_slots("a", 100)
    assert new is not None
    moved = bm.moved_requests()
    assert list(moved) == ["a"]
    table = bm.get_block_ids("a")
    assert moved["a"] == table and table[0] != old[0]
    assert new == table[len(old):]
    assert (view[table[0]] == 1.5).all()  # odma copied the live tokens
    assert bm.pop_moved_requests() == moved and bm.moved_requests() == {}
    assert bm.stats()["migrations"] == 1
    bm.check()


def test_migration_copies_tokens_written_between_block_crossings():
    # The decode fast path does not tell odma each token; a migration must still copy them.
    bm = make(num_blocks=128, max_model_len=512, max_runs=1, predictor="constant",
              constant_tokens=1, buckets="uniform", bucket_count=32, safety_pool_fraction=0.0,
              lend_reserved=False)
    bm.allocate_slots("a", 16, max_new_tokens=400)
    bm.allocate_slots("b", 16, max_new_tokens=400)
    view = bm.block_view(0, np.float32)
    for t in range(16, 32):  # 16 decode steps: one block crossing, 15 fast-path calls
        bm.allocate_slots("a", 1)
        table = bm.get_block_ids("a")
        view[table[t // K], t % K] = t
    view[table[0]] = -1.0
    bm.allocate_slots("a", 100)
    assert "a" in bm.moved_requests()
    table = bm.get_block_ids("a")
    for t in range(16, 32):
        assert (view[table[t // K], t % K] == t).all(), t
    assert (view[table[0]] == -1.0).all()
    bm.check()


def test_block_view_shape():
    bm = odma.BlockManager.from_kv_layout(32, K, num_layers=1, num_kv_heads=2, head_dim=8,
                                          dtype_bytes=2, max_model_len=256)
    v = bm.block_view(1, np.float16)
    assert v.shape == (32, K, 16)
    assert bm.block_view(0).shape == (32, K, 32)


def test_bad_arguments():
    with pytest.raises(ValueError):
        make(num_blocks=0)
    bm = make()
    with pytest.raises(odma.InvalidRequest):
        bm.allocate_slots("x", 2000)  # longer than max_model_len
    assert bm.get_block_ids("x") == []


@pytest.mark.parametrize("options, preempts", [
    ({}, False),  # the recommended configuration: 16 runs, admission by predicted demand
    ({"max_runs": 4, "demand_limit": 0.0}, True),  # greedy admission: the preemption path
])
def test_thousand_request_decode_loop(options, preempts):
    """A continuous-batching loop with vLLM's policy: running requests decode one token per
    step, growth that finds no room preempts the newest running request (recomputed later,
    through BlockManager.preempt and a resumed allocation), and no new request is admitted in
    a step that preempted."""
    rng = random.Random(1)
    bm = make(num_blocks=512, max_model_len=1024, **options)
    waiting = [(i, rng.randint(8, 200), rng.randint(1, 300)) for i in range(1000)]
    waiting.reverse()  # pop() from the end: oldest first
    running = {}  # id -> [prompt, target, generated]
    tables = {}
    running_gen = {}  # id -> tokens generated before its last preemption
    finished = preemptions = steps = 0
    while waiting or running:
        steps += 1
        assert steps < 20000
        preempted_now = False
        for rid in sorted(running):
            if rid not in running:  # preempted earlier in this step
                continue
            while True:
                new = bm.allocate_slots(rid, 1)
                if new is not None:
                    break
                victim = max(running)
                bm.preempt(victim)
                p, t, g = running.pop(victim)
                tables.pop(victim)
                waiting.append((victim, p, t))
                running_gen[victim] = g
                preemptions += 1
                preempted_now = True
                if victim == rid:
                    break
            if new is None:
                continue
            tables[rid] += new
            running[rid][2] += 1
            if running[rid][2] >= running[rid][1]:
                bm.free(rid, generated_tokens=running[rid][2])
                running.pop(rid)
                tables.pop(rid)
                finished += 1
        for rid, table in bm.pop_moved_requests().items():
            tables[rid] = table
        while waiting and not preempted_now and len(running) < 64:
            rid, prompt, target = waiting[-1]
            done = running_gen.get(rid, 0)  # tokens generated before a preemption
            new = bm.allocate_slots(rid, prompt + done, prompt_tokens=prompt,
                                    max_new_tokens=target + 10, prompt_text=f"request {rid}")
            if new is None:
                break
            waiting.pop()
            running[rid] = [prompt, target, done]
            tables[rid] = list(new)
        if steps % 50 == 0:
            for rid, table in tables.items():
                assert bm.get_block_ids(rid) == table
            bm.check()
    assert finished == 1000
    assert bm.usage == 0.0 and bm.num_free_blocks == bm.num_total_blocks
    assert bm.num_requests == 0
    s = bm.stats()
    assert s["live_leases"] == 0 and s["used_bytes"] == 0
    # A request preempted before its first token comes back as a new admission, not a resume.
    assert s["resumptions"] <= preemptions
    assert (preemptions > 0) == preempts
    assert (s["resumptions"] > 0) == preempts
    bm.check()
