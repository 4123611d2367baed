"""The host's memory during a CPU job (engine/host_memory.py): a large block freed inside the
context stays in the heap and is reused without the OS mapping it anew; afterwards what the job
freed goes back to the OS, and glibc's defaults are back: a large block is mapped apart from
the heap and given back when freed.

The test reads the allocator's own account (mallinfo2: the bytes it holds from the OS) rather
than counting page faults: the kernel's faults vary with its load and were flaky under CI."""

import ctypes
import platform
import resource

import pytest
import torch

from swag_core.engine import host_memory


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def _libc():
    if platform.libc_ver()[0] != "glibc":
        return None
    libc = ctypes.CDLL("libc.so.6")
    if not hasattr(libc, "mallinfo2"):  # glibc < 2.33
        return None
    libc.mallinfo2.restype = _MallInfo2
    return libc


_LIBC = _libc()
pytestmark = pytest.mark.skipif(_LIBC is None, reason="glibc's allocator (2.33 or later) only")

BLOCK = 64 * 2**20 // 4  # float32 elements: 64 MB, above any mmap threshold glibc learns by itself
BLOCK_BYTES = BLOCK * 4


def _held() -> int:
    """Bytes the allocator holds from the OS: its heaps and its separately mapped blocks."""
    info = _LIBC.mallinfo2()
    return info.arena + info.hblkhd


def _step() -> int:
    """Allocates, writes and frees three large blocks the way an optimiser step does its
    activations; returns what the allocator held while they were alive."""
    a = torch.empty(BLOCK).fill_(1.0)
    b = torch.empty(BLOCK).fill_(2.0)
    c = a * b
    held = _held()
    del a, b, c
    return held


def _steps_reuse_the_heap() -> bool:
    """Whether, after a few steps, a step is served from memory that earlier steps freed: the
    allocator then holds no more during the step than it did before it. torch's aligned
    allocations ask for a little more than the blocks freed before them, so the heap takes a
    few steps to grow to what a step needs."""
    for _ in range(8):
        before = _held()
        if _step() - before < BLOCK_BYTES / 2:
            return True
    return False


def _mapped_apart() -> bool:
    """Whether a fresh large block (larger than all the heap's free memory, so that none of it
    can serve the block) is mapped apart from the heap, to be given back when freed, rather
    than added to the heap. Not written to: only the mapping matters here."""
    before = _LIBC.mallinfo2()
    nbytes = before.fordblks + BLOCK_BYTES
    block = torch.empty(nbytes // 4)
    mapped = _LIBC.mallinfo2().hblkhd - before.hblkhd
    del block
    return mapped >= nbytes


def _resident() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def test_a_freed_block_is_reused_only_while_a_job_runs():
    with host_memory.reused_freed_memory():
        assert _steps_reuse_the_heap()
        assert not _mapped_apart()
        holding = _resident()  # the freed blocks the steps wrote, kept in the heap
    # Afterwards glibc's defaults are back, and what the job freed has gone back to the OS.
    assert _resident() < holding - 2 * BLOCK_BYTES
    assert _mapped_apart()


def test_overlapping_jobs_keep_the_setting_until_the_last_ends():
    with host_memory.reused_freed_memory():
        with host_memory.reused_freed_memory():
            pass
        assert _steps_reuse_the_heap()
        assert not _mapped_apart()
    assert _mapped_apart()
