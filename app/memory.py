"""Give memory the worker has freed back to the operating system now and then (M1: one worker's
resident memory under the mixed load, at most 150 MB and flat).

Each request allocates and frees a few megabytes (pages, forms, rows). glibc's allocator keeps
much of what Python frees, so a long-running worker's resident size crept up by about 0.45 MB per
1,000 requests while its live Python memory grew by 0.2 MB (measured with tracemalloc inside a
gunicorn worker); a ``malloc_trim(0)`` gave back 2-4 MB each time. So every
``MALLOC_TRIM_EVERY_REQUESTS`` requests (0: never) the worker trims, after the response has been
sent. Written by hand: no library does this. On a C library without ``malloc_trim`` (musl,
macOS) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import itertools
from collections.abc import Callable

from flask import Flask


def malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def init_memory_trim(app: Flask, trim: Callable[[int], int] | None = None) -> None:
    """Trim the allocator after every ``MALLOC_TRIM_EVERY_REQUESTS``-th response is sent."""
    every = int(app.config.get("MALLOC_TRIM_EVERY_REQUESTS", 0))
    trim = trim or malloc_trim()
    if every <= 0 or trim is None:
        return
    served = itertools.count(1)

    @app.after_request
    def trim_now_and_then(response):
        if next(served) % every == 0:
            response.call_on_close(lambda: trim(0))  # once the response is sent: no user waits
        return response
