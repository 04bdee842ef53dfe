"""odma.Allocator: every call of the C API through Python, every error by name."""

import ctypes
import gc
import pickle
import weakref

import numpy as np
import pytest

import odma

BPT = 64  # bytes per token


def make(**kw):
    opts = dict(arena_bytes=4096 * BPT, bytes_per_token=BPT, max_tokens=1024)
    opts.update(kw)
    return odma.Allocator(**opts)


# --- construction ---------------------------------------------------------------------------


def test_defaults_and_properties():
    a = make()
    assert a.arena_bytes == 4096 * BPT
    assert a.bytes_per_token == BPT
    assert a.max_tokens == 1024
    assert a.planes == 1 and a.max_runs == 1 and a.run_alignment == 1
    assert a.bytes_per_plane_token == BPT
    assert a.plane_tokens == 4096
    assert a.backing == "host"
    a.check()


@pytest.mark.parametrize("field, kw", [
    ("bytes_per_token", dict(bytes_per_token=0)),
    ("max_tokens", dict(max_tokens=0)),
    ("safety_pool_fraction", dict(safety_pool_fraction=1.5)),
    ("overflow_risk", dict(overflow_risk=-0.1)),
    ("planes", dict(planes=3)),
    ("max_runs", dict(max_runs=17)),
    ("run_alignment", dict(run_alignment=0)),
])
def test_bad_config_is_invalid_argument(field, kw):
    with pytest.raises(odma.InvalidArgument) as info:
        make(**kw)
    assert info.value.code == "invalid_argument"
    assert info.value.status == 100
    assert isinstance(info.value, odma.Error)
    assert field in str(info.value)


def test_arena_too_small_is_an_error():
    with pytest.raises(odma.Error):
        make(arena_bytes=10 * BPT)


def test_bad_names_and_types_raise_python_errors():
    with pytest.raises(ValueError):
        make(predictor="oracle")
    with pytest.raises(ValueError):
        make(buckets="fibonacci")
    with pytest.raises(ValueError):
        make(backing="cuda")
    with pytest.raises(TypeError):
        make(predictor=42)
    with pytest.raises(ValueError):
        make(copy=lambda d, s, n: None)  # copy only with backing='offsets'
    with pytest.raises(TypeError):
        make(arena_bytes=-1)
    with pytest.raises(TypeError):
        odma.Allocator(1 << 20, 64, 1024)  # keywords only


@pytest.mark.parametrize("buckets, extra", [
    ("online_histogram", dict(bucket_count=8)),
    ("uniform", dict(bucket_count=8)),
    ("geometric", dict(bucket_min_tokens=16, bucket_ratio=2.0)),
    ([64, 128, 256, 512, 1024], {}),
])
def test_bucket_policies(buckets, extra):
    a = make(buckets=buckets, **extra)
    l = a.admit(10, 100)
    a.extend(l, 200)
    a.release(l, 190)
    a.check()


def test_explicit_buckets_must_end_at_max_tokens():
    with pytest.raises(odma.Error):
        make(buckets=[64, 128])


def test_ngram_model_errors(tmp_path):
    with pytest.raises(odma.IoError) as info:
        make(predictor="ngram", ngram_model_path=str(tmp_path / "missing.bin"))
    assert info.value.code == "io_error"
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"not an odma model" * 10)
    with pytest.raises(odma.BadFormat) as info:
        make(predictor="ngram", ngram_model_path=str(bad))
    assert info.value.code == "bad_format"


# --- the calls ------------------------------------------------------------------------------


def test_admit_extend_release_abandon():
    a = make(predictor="constant", constant_tokens=6, buckets="uniform", bucket_count=64)
    l = a.admit(10, 100, id=7, prompt_text="hello", tag="chat")
    assert isinstance(l, odma.Lease) and l
    assert a.is_live(l)
    assert a.runs(l) == [(a.runs(l)[0][0], 10 * BPT)]
    assert a.extend(l, 12) == "unchanged"
    g = a.extend(l, 40)
    assert g in ("in_place", "migrated")
    assert sum(n for _, n in a.runs(l)) == 40 * BPT
    s = a.stats()
    assert s["live_leases"] == 1 and s["used_bytes"] == 40 * BPT
    a.release(l, 30)
    assert not a.is_live(l)
    m = a.admit(5, 5)
    a.abandon(m)
    s = a.stats()
    # releases counts release() and abandon() alike
    assert s["live_leases"] == 0 and s["admissions"] == 2 and s["releases"] == 2
    a.check()


def test_growth_names_cover_migration_and_appending():
    # Strict contiguity: a lease boxed in by a neighbour migrates.
    a = make(predictor="constant", constant_tokens=1, buckets="uniform", bucket_count=64,
             safety_pool_fraction=0.0)
    first = a.admit(16, 500)
    second = a.admit(16, 500)
    base = a.data(first)
    a.arena()[a.runs(first)[0][0]:][:16 * BPT] = 0xAB
    assert a.extend(first, 100) == "migrated"
    assert a.data(first) != base
    off, n = a.runs(first)[0]
    assert (a.arena()[off:off + 16 * BPT] == 0xAB).all()  # the live tokens were copied
    assert a.stats()["migrations"] == 1
    a.release(first, 84)
    a.release(second, 0 + 1)

    # Several runs: the same situation appends a run instead.
    b = make(predictor="constant", constant_tokens=1, buckets="uniform", bucket_count=64,
             safety_pool_fraction=0.0, max_runs=4)
    first = b.admit(16, 500)
    b.admit(16, 500)
    assert b.extend(first, 100) == "appended"
    assert len(b.runs(first)) == 2
    assert b.stats()["appended_runs"] == 1
    b.check()


def test_resume():
    a = make(predictor="prompt_quantile")
    l = a.admit(20, 300, id=3, prompt_text=b"raw bytes")
    a.extend(l, 60)
    a.abandon(l)
    r = a.resume(20, 300, 40, id=3, prompt_text=b"raw bytes")
    assert sum(n for _, n in a.runs(r)) == 60 * BPT
    assert a.stats()["resumptions"] == 1
    a.release(r, 100)
    with pytest.raises(odma.InvalidRequest):
        a.resume(20, 300, 300)  # nothing left to generate
    a.check()


def test_no_memory_then_recovery():
    a = make(arena_bytes=2048 * BPT, predictor="constant", buckets="uniform", bucket_count=4,
             max_tokens=1024, safety_pool_fraction=0.0)
    leases = []
    with pytest.raises(odma.NoMemory) as info:
        for _ in range(100):
            leases.append(a.admit(10, 1000))
    assert info.value.code == "no_memory" and info.value.status == 2
    assert "no_memory" in str(info.value) or str(info.value)
    assert a.stats()["rejected_admit_no_memory"] == 1
    # extend failure keeps the lease intact
    for l in leases:
        a.release(l, 1)
    a.check()


def test_invalid_request_errors():
    a = make()
    with pytest.raises(odma.InvalidRequest) as info:
        a.admit(0, 10)
    assert info.value.code == "invalid_request"
    with pytest.raises(odma.InvalidRequest):
        a.admit(10, 0)
    with pytest.raises(odma.InvalidRequest):
        a.admit(1024, 10)
    l = a.admit(10, 10)
    with pytest.raises(odma.InvalidRequest):
        a.extend(l, 0)
    with pytest.raises(odma.InvalidRequest):
        a.extend(l, 5000)
    with pytest.raises(odma.InvalidRequest):
        a.runs(l, plane=1)
    with pytest.raises(odma.InvalidRequest):
        a.data(l, plane=1)
    with pytest.raises(odma.InvalidRequest):
        a.block_table(l, 0)
    assert a.stats()["rejected_invalid_request"] >= 3
    a.release(l, 5)


def test_stale_foreign_and_empty_leases_never_crash():
    a, b = make(), make()
    l = a.admit(10, 10)
    other = b.admit(10, 10)
    a.release(l, 3)
    for bad in (l, other, odma.Lease(), odma.Lease(owner=123456789, slot=5, generation=9)):
        for call in (lambda x: a.extend(x, 20), lambda x: a.release(x, 1), a.abandon, a.runs,
                     lambda x: a.block_table(x, 1), a.data):
            with pytest.raises(odma.InvalidLease) as info:
                call(bad)
            assert info.value.code == "invalid_lease"
        assert not a.is_live(bad)
    assert a.stats()["rejected_invalid_lease"] > 0
    b.release(other, 1)
    a.check()


def test_wrong_argument_types():
    a = make()
    with pytest.raises(TypeError):
        a.extend("not a lease", 10)
    with pytest.raises(TypeError):
        a.admit(-1, 10)
    with pytest.raises(TypeError):
        a.admit(10, 10, prompt_text=12)
    with pytest.raises(TypeError):
        a.admit(10, 10, tag=-3)


def test_error_hierarchy_and_names():
    for cls, code in [(odma.InvalidRequest, "invalid_request"), (odma.NoMemory, "no_memory"),
                      (odma.InvalidLease, "invalid_lease"),
                      (odma.InvariantViolation, "invariant_violation"),
                      (odma.DeviceError, "device_error"), (odma.IoError, "io_error"),
                      (odma.BadFormat, "bad_format"), (odma.InvalidArgument, "invalid_argument"),
                      (odma.OutOfHostMemory, "out_of_host_memory"),
                      (odma.InternalError, "internal_error"), (odma.Unsupported, "unsupported")]:
        assert issubclass(cls, odma.Error) and issubclass(cls, Exception)
        assert cls.code == code
        assert odma.status_name(cls.status) == code
    assert odma.status_name(0) == "ok"
    assert odma.status_name(9999) == "unknown"


def test_tag_of():
    assert odma.tag_of("") == 0
    assert odma.tag_of("chat") == odma.tag_of("chat") != odma.tag_of("code")


# --- leases ---------------------------------------------------------------------------------


def test_lease_is_a_value():
    a = make()
    l1, l2 = a.admit(10, 10), a.admit(10, 10)
    copy = odma.Lease(l1.owner, l1.slot, l1.generation)
    assert copy == l1 and hash(copy) == hash(l1) and copy != l2
    assert len({l1, l2, copy}) == 2
    assert sorted([l2, l1]) == sorted([l1, l2])
    assert (l1 < l2) != (l2 < l1)
    assert pickle.loads(pickle.dumps(l1)) == l1
    assert "Lease(" in repr(l1)
    assert not odma.Lease() and l1
    assert l1 != "x"
    a.extend(copy, 20)  # a copy works as the original
    assert sum(n for _, n in a.runs(l1)) == 20 * BPT
    with pytest.raises(AttributeError):
        l1.slot = 3
    a.release(copy, 10)
    with pytest.raises(odma.InvalidLease):
        a.release(l1, 10)  # every copy is stale afterwards


def test_prompt_text_kept_until_release():
    a = make()
    l = a.admit(10, 10, prompt_text="x" * 1000)
    m = a.admit(10, 10)
    assert a.kept_prompt_texts == 1
    gc.collect()
    a.release(l, 3)
    assert a.kept_prompt_texts == 0
    n = a.admit(10, 10, prompt_text="y")
    a.abandon(n)
    assert a.kept_prompt_texts == 0
    a.release(m, 2)


# --- memory views ---------------------------------------------------------------------------


def test_arena_view_is_zero_copy():
    a = make()
    arena = a.arena()
    assert arena.dtype == np.uint8 and arena.shape == (a.arena_bytes,)
    l = a.admit(4, 10)
    off, n = a.runs(l)[0]
    assert a.data(l) == arena.ctypes.data + off
    arena[off:off + n] = np.arange(n, dtype=np.uint8)
    raw = ctypes.string_at(a.data(l), n)  # read through the C pointer
    assert raw == bytes(np.arange(n, dtype=np.uint8))
    ctypes.memset(a.data(l), 7, 8)  # write through the pointer, read through numpy
    assert (a.arena()[off:off + 8] == 7).all()
    assert not arena.flags["OWNDATA"]


def test_arena_view_keeps_the_allocator_alive():
    a = make()
    ref = weakref.ref(a)
    view = a.arena()
    l = a.admit(4, 10)
    off = a.runs(l)[0][0]
    del a
    gc.collect()
    assert ref() is not None
    view[off] = 1  # still valid memory
    assert view[off] == 1
    del view
    gc.collect()
    assert ref() is None


def test_plane_view():
    a = make(planes=4, bytes_per_token=4 * 16, arena_bytes=4096 * 64)
    assert a.plane_tokens == 4096 and a.bytes_per_plane_token == 16
    l = a.admit(8, 10)
    for p in range(4):
        v = a.plane_view(p)
        assert v.shape == (4096, 16)
        off, n = a.runs(l, p)[0]
        tok = (off - p * 4096 * 16) // 16
        v[tok:tok + 8] = p + 1
        assert a.data(l, p) == v[tok:].ctypes.data
        assert (a.arena()[off:off + n] == p + 1).all()
    with pytest.raises(IndexError):
        a.plane_view(4)


def test_block_table_matches_runs():
    a = make(max_runs=4, run_alignment=16, predictor="constant", constant_tokens=1,
             buckets="uniform", bucket_count=64, safety_pool_fraction=0.0)
    first = a.admit(20, 500)
    a.admit(20, 500)
    a.extend(first, 100)
    table = a.block_table(first, 16)
    assert len(table) == (100 + 15) // 16
    assert a.block_table(first, 8) and a.block_table(first, 4)
    with pytest.raises(odma.InvalidRequest):
        a.block_table(first, 3)
    # each block b is bytes [b*16*BPT, (b+1)*16*BPT) of plane 0
    blocks_from_runs = []
    for off, n in a.runs(first):
        first_block = off // (16 * BPT)
        blocks_from_runs += range(first_block, first_block + (n + 16 * BPT - 1) // (16 * BPT))
    assert table == blocks_from_runs


def test_host_vmm_backing():
    a = make(backing="host_vmm", arena_bytes=1 << 22)
    l = a.admit(100, 100)
    off, n = a.runs(l)[0]
    a.arena()[off:off + n] = 3
    a.extend(l, 150)
    off, n = a.runs(l)[0]
    assert (a.arena()[off:off + 100 * BPT] == 3).all()
    a.release(l, 50)
    a.check()


def test_resize_grows_and_shrinks_a_host_vmm_arena():
    a = make(backing="host_vmm", arena_bytes=1024 * BPT, max_arena_bytes=4096 * BPT,
             max_tokens=256, safety_pool_fraction=0.0, buckets="uniform", bucket_count=4,
             constant_tokens=1)
    s = a.stats()
    assert s["arena_bytes"] == 1024 * BPT and s["max_arena_bytes"] == 4096 * BPT
    assert a.plane_tokens == 4096  # the plane stride: the whole reservation
    leases = [a.admit(40, 100) for _ in range(16)]  # 16 buckets of 64 tokens fill it
    with pytest.raises(odma.NoMemory):
        a.admit(40, 100)

    assert a.resize(2048 * BPT) == 2048 * BPT  # growing takes effect at once
    leases += [a.admit(40, 100) for _ in range(4)]
    view = a.arena()
    for i, lease in enumerate(leases):
        off, n = a.runs(lease)[0]
        view[off:off + n] = i + 1
    for lease in leases[:4]:
        a.release(lease, 1)
    kept = leases[4:]

    # Back to 1,024 tokens: the last four leases must move, which needs a copy budget.
    with pytest.raises(odma.NoMemory) as info:
        a.resize(1024 * BPT)
    assert info.value.freeable_bytes == (2048 - 1280) * BPT  # the free tail
    assert a.stats()["arena_bytes"] == 2048 * BPT
    assert a.resize(1024 * BPT, copy_budget=4 * 40 * BPT) == 1024 * BPT
    view = a.arena()
    for i, lease in enumerate(kept):
        off, n = a.runs(lease)[0]
        assert off + n <= 1024 * BPT
        assert (view[off:off + n] == i + 5).all()
    s = a.stats()
    assert s["resizes"] == 2 and s["resize_copied_bytes"] == 4 * 40 * BPT
    with pytest.raises(odma.InvalidRequest):
        a.resize(4097 * BPT)
    a.check()

    with pytest.raises(odma.Unsupported) as info:
        make().resize(1024 * BPT)
    assert isinstance(info.value, odma.Error) and info.value.freeable_bytes == 0


# --- callbacks ------------------------------------------------------------------------------


def test_callable_predictor_and_observer():
    seen, taught = [], []

    def predict(req):
        seen.append((req.id, req.prompt_tokens, req.max_new_tokens, req.prompt_text, req.tag))
        return 30

    a = make(predictor=predict, observe=lambda req, n: taught.append((req.id, n)),
             buckets=[32, 64, 128, 256, 512, 1024], overflow_risk=0.0)
    l = a.admit(10, 500, id=42, prompt_text="héllo", tag=5)
    assert seen == [(42, 10, 500, "héllo", 5)]
    assert a.stats()["reserved_bytes"] == 64 * BPT  # 10 + 30 rounded up to 64
    a.release(l, 17)
    assert taught == [(42, 17)]
    # None means "no idea": max_new_tokens (the reservation is capped at prompt + max_new)
    b = make(predictor=lambda req: None, buckets=[32, 64, 128, 256, 512, 1024])
    b.admit(10, 100)
    assert b.stats()["reserved_bytes"] == 110 * BPT


def test_predictor_keeps_a_reference():
    state = {"n": 0}

    def predict(req):
        state["n"] += 1
        return 5

    a = make(predictor=predict)
    del predict
    gc.collect()
    a.admit(5, 5)
    assert state["n"] == 1


def test_predictor_exception_becomes_the_cause():
    def predict(req):
        raise ValueError("model offline")

    a = make(predictor=predict)
    with pytest.raises(odma.Error) as info:
        a.admit(10, 10)
    assert isinstance(info.value.__cause__, ValueError)
    assert a.stats()["live_leases"] == 0
    a.check()
    with pytest.raises(odma.Error) as info:
        make(predictor=lambda req: "ten").admit(10, 10)
    assert isinstance(info.value.__cause__, TypeError)


def test_observer_exception_still_frees_the_lease():
    def observe(req, n):
        raise RuntimeError("boom")

    a = make(predictor=lambda r: 5, observe=observe)
    l = a.admit(10, 10, prompt_text="abc")
    with pytest.raises(odma.Error) as info:
        a.release(l, 4)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert a.stats()["live_leases"] == 0
    assert a.kept_prompt_texts == 0
    a.check()


def test_offsets_backing_with_python_copy():
    device = np.zeros(2048 * BPT, dtype=np.uint8)  # the engine's memory
    copies = []

    def copy(dst, src, n):
        copies.append((dst, src, n))
        device[dst:dst + n] = device[src:src + n]

    a = make(arena_bytes=device.size, backing="offsets", copy=copy, predictor="constant",
             constant_tokens=1, buckets="uniform", bucket_count=64, safety_pool_fraction=0.0)
    assert a.backing == "offsets"
    first = a.admit(16, 500)
    a.admit(16, 500)
    off, n = a.runs(first)[0]
    device[off:off + n] = np.arange(n) % 251
    assert a.extend(first, 200) == "migrated"
    assert copies and copies[0][2] == n
    new_off, _ = a.runs(first)[0]
    assert new_off != off
    assert (device[new_off:new_off + n] == np.arange(n) % 251).all()
    with pytest.raises(odma.InvalidArgument):
        a.data(first)
    with pytest.raises(ValueError):
        a.arena()
    a.check()


def test_copy_failure_is_a_device_error():
    def copy(dst, src, n):
        raise OSError("DMA failed")

    a = make(backing="offsets", copy=copy, predictor="constant", constant_tokens=1,
             buckets="uniform", bucket_count=64, safety_pool_fraction=0.0)
    first = a.admit(16, 500)
    a.admit(16, 500)
    with pytest.raises(odma.DeviceError) as info:
        a.extend(first, 200)
    assert info.value.code == "device_error"
    assert isinstance(info.value.__cause__, OSError)
    assert sum(n for _, n in a.runs(first)) == 16 * BPT  # kept at its old size
    a.check()


def test_stats_dict():
    a = make()
    s = a.stats()
    expected = {"arena_bytes", "safety_pool_bytes", "reserved_bytes", "used_bytes", "free_bytes",
                "largest_free_bytes", "live_leases", "peak_live_leases", "peak_used_bytes",
                "admissions", "resumptions", "releases", "in_place_growths", "appended_runs",
                "migrations", "migrated_bytes", "lending_passes", "lent_bytes",
                "safety_pool_admissions", "safety_pool_migrations", "rejected_invalid_request",
                "rejected_admit_no_memory", "rejected_extend_no_memory",
                "rejected_invalid_lease", "utilization", "reserved_utilization",
                "external_fragmentation", "max_arena_bytes", "resizes", "resize_copied_bytes"}
    assert set(s) == expected
    assert s["free_bytes"] == s["arena_bytes"] and s["utilization"] == 0.0
    assert isinstance(s["utilization"], float) and isinstance(s["admissions"], int)
