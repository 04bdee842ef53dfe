"""BlockManager: odma behind a block-table interface shaped like vLLM V1's KVCacheManager.

An engine that schedules with vLLM's contract (``allocate_slots`` returns the request's new
blocks or ``None`` to ask for preemption, ``free`` gives them back, ``get_block_ids`` lists a
request's blocks, ``usage`` is the share of the cache taken) can put odma under its scheduler
with this class. Underneath, each request is one odma lease of at most ``max_runs`` contiguous
runs, each a whole number of blocks (``run_alignment = block_size``), and its block table is
``Allocator.block_table(lease, block_size)``: block ``b`` is token slots ``[b*K, (b+1)*K)`` of
every plane, so a paged attention kernel reads odma's leases unchanged, and the ids of one run
are consecutive (a kernel that coalesces consecutive blocks reads a few long runs).

Differences from vLLM (docs/engines.md has the full table):

* **Block ids can move.** When a lease cannot grow in place nor by another run, odma migrates it
  (copies its tokens into one new run; the copy is done by the allocator: ``memcpy`` in the
  arena for host backings, the ``copy`` callback for ``backing='offsets'``). Its earlier block
  ids then change. ``allocate_slots`` still returns only the ids appended at the end of the
  table, and records the request in :meth:`moved_requests`; the engine must replace that
  request's whole block table with :meth:`get_block_ids` (or :meth:`pop_moved_requests`)
  before the next kernel launch. vLLM's block ids never move.
* **Prediction inputs.** The first ``allocate_slots`` of a request may carry the prompt length,
  ``max_new_tokens``, the prompt text and a class tag: odma reserves the predicted answer length
  up front. ``free(request_id, generated_tokens)`` teaches the predictor the true length;
  ``free(request_id)`` (no length) frees without teaching, as for a cancelled request.
* **No prefix caching**: blocks are never shared between requests, and there is no
  ``get_computed_blocks`` hit.
* **Free blocks are not all equal.** odma places contiguous runs, so a request may fail to grow
  although ``num_free_blocks`` is large (fragmentation), and may succeed although it is small
  (with ``lend_reserved=True``, other requests' reserved but unused tails are lent under
  pressure).
* **Lengths are reported at block granularity.** ``allocate_slots`` calls the allocator only
  when a request needs a new block (the decode fast path is pure Python); in between, odma's
  ``used_bytes`` lags the true count by less than one block per request. At a block crossing
  it first tells odma every token allocated before the call (the engine has written them by
  then, as in vLLM), so that a migration copies all of them, and only then grows the lease.
  The block a request writes into is always held.

Not thread-safe: call it from the scheduler's thread (as vLLM does).
"""

from __future__ import annotations

from typing import Any, Dict, Hashable, List, Optional

from ._odma import Allocator, NoMemory

__all__ = ["BlockManager"]


class _RequestState:
    __slots__ = ("lease", "tokens", "reported", "capacity", "blocks", "prompt_tokens",
                 "max_new_tokens", "prompt_text", "tag", "odma_id")

    def __init__(self, lease, tokens, blocks, block_size, prompt_tokens, max_new_tokens,
                 prompt_text, tag, odma_id):
        self.lease = lease
        self.tokens = tokens  # tokens the engine was given slots for
        self.reported = tokens  # the length odma was last told (extend)
        self.blocks = blocks
        self.capacity = len(blocks) * block_size
        self.prompt_tokens = prompt_tokens
        self.max_new_tokens = max_new_tokens
        self.prompt_text = prompt_text
        self.tag = tag
        self.odma_id = odma_id


class _Preempted:
    __slots__ = ("prompt_tokens", "max_new_tokens", "prompt_text", "tag", "odma_id")

    def __init__(self, st: _RequestState):
        self.prompt_tokens = st.prompt_tokens
        self.max_new_tokens = st.max_new_tokens
        self.prompt_text = st.prompt_text
        self.tag = st.tag
        self.odma_id = st.odma_id


class BlockManager:
    """KV blocks for a continuous-batching scheduler, backed by one odma Allocator.

    Args:
        num_blocks: KV blocks of ``block_size`` tokens the cache holds (per plane).
        block_size: tokens per block (the attention kernel's block size).
        bytes_per_token: KV bytes of one token over all layers, keys and values. Use
            :meth:`from_kv_layout` to compute it (and one plane per layer and K/V).
        max_model_len: longest prompt + output.
        planes: planes the token bytes are split into (``2 * num_layers`` gives each layer's
            keys and values a plane of their own); must divide ``bytes_per_token``.
        max_runs: contiguous runs per request (1 = strict contiguity: grow in place or
            migrate; more = grow by another run first, copying nothing). The default, 16, and
            ``demand_limit`` 1.0 are odma-replay's recommended ``odma`` configuration.
        demand_limit: admission by predicted demand (``odma::config::demand_limit``): when no
            extent holds a new request's whole reservation, it is refused once the predicted
            lengths of the running requests fill the arena (0 = off, admit while the prompt fits).
        lend_reserved: soft reservations (off: they lost in every replay, see docs/replay.md).
        predictor, buckets, overflow_risk, safety_pool_fraction, backing, copy and any other
            keyword: passed to :class:`odma.Allocator`.
    """

    def __init__(self, num_blocks: int, block_size: int, bytes_per_token: int,
                 max_model_len: int, *, planes: int = 1, max_runs: int = 16,
                 demand_limit: float = 1.0, predictor: Any = "prompt_quantile",
                 buckets: Any = "online_histogram", lend_reserved: bool = False,
                 **allocator_options: Any) -> None:
        if num_blocks <= 0 or block_size <= 0:
            raise ValueError("num_blocks and block_size must be positive")
        self.block_size = int(block_size)
        self.max_model_len = int(max_model_len)
        self.allocator = Allocator(
            arena_bytes=int(num_blocks) * self.block_size * int(bytes_per_token),
            bytes_per_token=int(bytes_per_token), max_tokens=self.max_model_len, planes=planes,
            max_runs=max_runs, run_alignment=self.block_size, lend_reserved=lend_reserved,
            demand_limit=demand_limit,
            predictor=predictor, buckets=buckets, **allocator_options)
        self.num_total_blocks = self.allocator.plane_tokens // self.block_size
        self._block_bytes = self.block_size * int(bytes_per_token)  # over all planes
        self._reqs: Dict[Hashable, _RequestState] = {}
        self._preempted: Dict[Hashable, _Preempted] = {}
        self._moved: Dict[Hashable, List[int]] = {}
        self._next_id = 1

    @classmethod
    def from_kv_layout(cls, num_blocks: int, block_size: int, *, num_layers: int,
                       num_kv_heads: int, head_dim: int, dtype_bytes: int, max_model_len: int,
                       **options: Any) -> "BlockManager":
        """One plane per (layer, K/V): plane ``2*layer`` holds the keys of ``layer``,
        ``2*layer + 1`` its values; each token slot of a plane is
        ``num_kv_heads * head_dim * dtype_bytes`` bytes."""
        per_plane = num_kv_heads * head_dim * dtype_bytes
        return cls(num_blocks, block_size, 2 * num_layers * per_plane, max_model_len,
                   planes=2 * num_layers, **options)

    # --- vLLM's KVCacheManager contract --------------------------------------------------

    def allocate_slots(self, request_id: Hashable, num_new_tokens: int,
                       num_computed_tokens: Optional[int] = None, num_lookahead_tokens: int = 0,
                       *, prompt_tokens: Optional[int] = None,
                       max_new_tokens: Optional[int] = None, prompt_text: Any = None,
                       tag: Any = 0) -> Optional[List[int]]:
        """Makes room for ``num_new_tokens`` more tokens of the request (plus lookahead slots).

        The request then holds ``num_computed_tokens + num_new_tokens + num_lookahead_tokens``
        tokens (``num_computed_tokens`` defaults to what the request held after its last
        call). Returns the ids of the blocks added at the end of its table (``[]`` when none
        was needed), or ``None`` when there is no room: the scheduler should preempt (or wait)
        and nothing changed. If the request migrated (see the module doc), its earlier ids
        changed too: it is listed in :meth:`moved_requests`.

        The first call for a request admits it. ``prompt_tokens`` (default: the tokens this
        call asks for), ``max_new_tokens`` (default: ``max_model_len - prompt_tokens``),
        ``prompt_text`` (str or bytes) and ``tag`` (int or class name) feed the length
        predictor; they are ignored on later calls. A request preempted with
        :meth:`preempt` is resumed (odma remembers the original request, so that its final
        ``free(..., generated_tokens)`` teaches as if it had never been preempted).
        """
        st = self._reqs.get(request_id)
        if st is not None:
            total = (st.tokens if num_computed_tokens is None else num_computed_tokens) \
                + num_new_tokens + num_lookahead_tokens
            if total <= st.capacity:  # the decode fast path: the last block has room
                st.tokens = total
                return []
            try:
                # odma learns lengths only here, at block crossings: first the tokens the
                # engine wrote since (everything allocated before this call), so that a
                # migration copies them all, then the new total.
                if st.reported != st.tokens:
                    self.allocator.extend(st.lease, st.tokens)  # within capacity: unchanged
                    st.reported = st.tokens
                growth = self.allocator.extend(st.lease, total)
            except NoMemory:
                return None
            old = len(st.blocks)
            table = self.allocator.block_table(st.lease, self.block_size)
            st.blocks = table
            st.tokens = st.reported = total
            st.capacity = len(table) * self.block_size
            if growth == "migrated":
                self._moved[request_id] = table
                return table[old:]
            return table[old:]
        return self._admit(request_id, num_new_tokens, num_computed_tokens or 0,
                           num_lookahead_tokens, prompt_tokens, max_new_tokens, prompt_text, tag)

    def free(self, request_id: Hashable, generated_tokens: Optional[int] = None) -> None:
        """Frees the request's blocks. With ``generated_tokens`` (the true number of tokens it
        generated, over all its preemptions) odma's predictor and buckets learn from it;
        without, nothing is learnt (cancelled or failed requests). Unknown ids are ignored,
        as vLLM ignores requests that hold no blocks."""
        self._preempted.pop(request_id, None)
        self._moved.pop(request_id, None)
        st = self._reqs.pop(request_id, None)
        if st is None:
            return
        if generated_tokens is None:
            self.allocator.abandon(st.lease)
        else:
            self.allocator.release(st.lease, int(generated_tokens))

    def preempt(self, request_id: Hashable) -> None:
        """Frees the request's blocks but remembers the request: its next ``allocate_slots``
        (with prompt + tokens generated so far, as vLLM recomputes a preempted request)
        resumes it through ``Allocator.resume``."""
        st = self._reqs.pop(request_id, None)
        self._moved.pop(request_id, None)
        if st is None:
            return
        self.allocator.abandon(st.lease)
        self._preempted[request_id] = _Preempted(st)

    def get_block_ids(self, request_id: Hashable) -> List[int]:
        """The request's block table (one KV cache group), in token order; ``[]`` if unknown.
        A copy: valid until the request's next allocate_slots."""
        st = self._reqs.get(request_id)
        return list(st.blocks) if st is not None else []

    def get_num_free_blocks(self) -> int:
        """Blocks no request has reserved (BlockPool.get_num_free_blocks)."""
        return self.allocator.stats()["free_bytes"] // self._block_bytes

    @property
    def num_free_blocks(self) -> int:
        return self.get_num_free_blocks()

    @property
    def usage(self) -> float:
        """Share of the cache reserved by requests, 0..1 (1 - free / total blocks)."""
        return 1.0 - self.get_num_free_blocks() / self.num_total_blocks

    # --- what odma adds ------------------------------------------------------------------

    def moved_requests(self) -> Dict[Hashable, List[int]]:
        """Requests whose earlier block ids changed (migrated) since the last
        :meth:`pop_moved_requests`, with their full new tables (a copy)."""
        return {rid: list(t) for rid, t in self._moved.items()}

    def pop_moved_requests(self) -> Dict[Hashable, List[int]]:
        """As :meth:`moved_requests`, and forgets them."""
        moved, self._moved = self._moved, {}
        return moved

    @property
    def num_requests(self) -> int:
        return len(self._reqs)

    def num_tokens(self, request_id: Hashable) -> int:
        """Tokens the request holds (what allocate_slots made room for)."""
        st = self._reqs.get(request_id)
        return st.tokens if st is not None else 0

    def block_view(self, plane: int = 0, dtype: Any = None):
        """Plane ``plane`` of the arena as a NumPy array ``[num_total_blocks, block_size,
        bytes_per_plane_token]`` (uint8, or ``dtype`` over the last axis), without copying:
        ``block_view(p)[b]`` is block ``b`` of :meth:`get_block_ids`. Host backings only."""
        view = self.allocator.plane_view(plane)
        view = view[: self.num_total_blocks * self.block_size]
        if dtype is not None:
            view = view.view(dtype)
        return view.reshape(self.num_total_blocks, self.block_size, view.shape[-1])

    def stats(self) -> Dict[str, Any]:
        return self.allocator.stats()

    def check(self) -> None:
        """Checks odma's invariants and that every table matches its lease."""
        self.allocator.check()
        for rid, st in self._reqs.items():
            table = self.allocator.block_table(st.lease, self.block_size)
            if table != st.blocks:
                raise AssertionError(f"block table of {rid!r} is stale: {st.blocks} vs {table}")

    # --- internals -----------------------------------------------------------------------

    def _admit(self, request_id, num_new_tokens, num_computed_tokens, num_lookahead_tokens,
               prompt_tokens, max_new_tokens, prompt_text, tag):
        total = num_computed_tokens + num_new_tokens + num_lookahead_tokens
        original = self._preempted.get(request_id)
        alloc = self.allocator
        try:
            if original is not None:
                prompt = original.prompt_tokens
                max_new = original.max_new_tokens
                generated = max(0, min(total - prompt, max_new - 1))
                if generated > 0:
                    lease = alloc.resume(prompt, max_new, generated, id=original.odma_id,
                                         prompt_text=original.prompt_text, tag=original.tag)
                else:
                    lease = alloc.admit(prompt, max_new, id=original.odma_id,
                                        prompt_text=original.prompt_text, tag=original.tag)
                held = prompt + generated
                prompt_text, tag, odma_id = original.prompt_text, original.tag, original.odma_id
            else:
                prompt = total if prompt_tokens is None else int(prompt_tokens)
                max_new = (max(1, self.max_model_len - prompt) if max_new_tokens is None
                           else int(max_new_tokens))
                odma_id = self._next_id
                lease = alloc.admit(prompt, max_new, id=odma_id, prompt_text=prompt_text,
                                    tag=tag)
                held = prompt
        except NoMemory:
            return None
        if total != held:
            try:
                alloc.extend(lease, total)
            except NoMemory:
                alloc.abandon(lease)
                return None
            except BaseException:
                alloc.abandon(lease)
                raise
        if original is None:
            self._next_id += 1
        else:
            del self._preempted[request_id]
        table = alloc.block_table(lease, self.block_size)
        self._reqs[request_id] = _RequestState(lease, total, table, self.block_size, prompt,
                                               max_new, prompt_text, tag, odma_id)
        return list(table)
