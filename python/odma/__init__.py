"""odma: on-demand, contiguous KV-cache memory for LLM serving.

The Python package binds odma's C API (odma_c.h), so C, Rust and Python engines share one
implementation:

- :class:`Allocator`: the allocator itself (admit / extend / release / abandon / resume, runs,
  block tables, a zero-copy NumPy view of the arena, stats, check, and resize of a 'host_vmm'
  arena at run time);
- :class:`BlockManager`: a block-table front end shaped like vLLM V1's ``KVCacheManager``
  (``allocate_slots`` / ``free`` / ``get_block_ids`` / ``usage``) for engines that think in
  blocks; see docs/engines.md for where it matches vLLM and where it differs;
- :class:`Error` and its subclasses (``.code`` is the status name, e.g. ``"no_memory"``).
"""

from ._odma import (  # noqa: F401  (re-exports)
    Allocator,
    BadFormat,
    DeviceError,
    Error,
    InternalError,
    InvalidArgument,
    InvalidLease,
    InvalidRequest,
    InvariantViolation,
    IoError,
    Lease,
    NoMemory,
    OutOfHostMemory,
    Request,
    Unsupported,
    status_name,
    tag_of,
)
from .block_manager import BlockManager  # noqa: F401

__version__ = "0.1.0"

__all__ = [
    "Allocator",
    "BadFormat",
    "BlockManager",
    "DeviceError",
    "Error",
    "InternalError",
    "InvalidArgument",
    "InvalidLease",
    "InvalidRequest",
    "InvariantViolation",
    "IoError",
    "Lease",
    "NoMemory",
    "OutOfHostMemory",
    "Request",
    "Unsupported",
    "status_name",
    "tag_of",
]
