"""The host's memory while a job runs on the CPU: freed blocks kept for the next step.

Each optimiser step allocates and frees the same large activations again (a 512 px image's
first VGG layer alone is 45 MB, a 1024 px one's 180 MB). glibc hands every block above its
mmap threshold (at most 32 MB, whatever it has learnt) straight back to the OS when it is
freed, and the next step's block of the same size is then mapped and zeroed page by page
anew: on two CPU cores that took a fifth of the `balanced` preset's finest-scale steps.
While a CPU job runs, `reused_freed_memory` raises the mmap and trim thresholds so that those
blocks stay in the heap and are reused; afterwards it restores glibc's default thresholds and
gives what the job freed back to the OS (`trim`), so that an idle service holds no more than it
did before. The cost: the heap's fragmentation raises the job's peak memory (by 5% on the
`balanced` preset, 12% over eight steps at 512 px; docs/performance.md).
glibc's thresholds cannot be set per thread; jobs that overlap (the Python API from several
threads) share the setting, and the last one to finish restores it. Elsewhere than glibc
(macOS, Windows, musl) this does nothing: their allocators do not behave like this.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import platform
import threading

# mallopt's parameters (malloc.h) and glibc's default for both thresholds.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_GLIBC_DEFAULT = 128 * 1024
_LARGEST = 2**31 - 1  # mallopt takes an int

_lock = threading.Lock()
_jobs = 0


def _glibc():
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


_LIBC = _glibc()


def trim() -> None:
    """Give the memory that the allocator keeps for reuse back to the OS (glibc only)."""
    gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _thresholds(value: int) -> None:
    _LIBC.mallopt(_M_MMAP_THRESHOLD, value)
    _LIBC.mallopt(_M_TRIM_THRESHOLD, value)


@contextlib.contextmanager
def reused_freed_memory():
    """Within: large freed blocks stay in the heap for reuse. After: glibc's default thresholds
    (fixed ones: glibc stops adapting its mmap threshold once it has been set), and the freed
    memory given back."""
    global _jobs
    if _LIBC is None:
        yield
        return
    with _lock:
        _jobs += 1
        if _jobs == 1:
            _thresholds(_LARGEST)
    try:
        yield
    finally:
        with _lock:
            _jobs -= 1
            if _jobs == 0:
                _thresholds(_GLIBC_DEFAULT)
                trim()
