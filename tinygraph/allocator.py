"""An opt-in allocator setting for training loops over large graphs.

A graph keeps every intermediate value and gradient alive (that is what you
inspect), so each forward + backward allocates many arrays at once and frees them
together when the graph is dropped. With its default settings glibc's malloc then
hands that memory back to the operating system, and the next iteration pays the
kernel to map and zero it again: measured here, 64x256 arrays cost 40-70 us each
instead of ~5 us once about eight of them are alive, and a 1024x1024 LayerNorm
spends about half its time in page faults.

`keep_freed_memory()` tells glibc to keep freed memory for reuse. It is a
process-wide setting (it changes how every library in the process allocates), so
tinygraph never makes it on import: call it yourself, once, like
`torch.set_num_threads`. The environment variables `MALLOC_TRIM_THRESHOLD_` and
`MALLOC_MMAP_THRESHOLD_` do the same from outside the process.
"""

from __future__ import annotations

import ctypes
import ctypes.util

_M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # the largest value glibc accepts on 64-bit machines


def keep_freed_memory(keep_bytes: int = 1 << 30) -> bool:
    """Let glibc keep up to `keep_bytes` of freed memory, and serve arrays up to 32 MB
    from it, instead of returning memory to the OS after every graph.

    Returns True if the setting was made, False where the C library is not glibc
    (macOS, Windows, musl), where there is nothing to do.
    """
    if not isinstance(keep_bytes, int) or keep_bytes < 0:
        raise ValueError(f"keep_bytes must be a non-negative int, got {keep_bytes!r}")
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    keep = min(keep_bytes, 2**31 - 1)
    return bool(mallopt(_M_MMAP_THRESHOLD, min(keep, _MMAP_THRESHOLD_MAX)) and mallopt(_M_TRIM_THRESHOLD, keep))
