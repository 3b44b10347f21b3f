"""Best-effort single-threaded BLAS for the ADMM loop (no dependency on threadpoolctl).

ADMM runs hundreds of iterations of products and factorisations of matrices of size ≤ 64. A multi-threaded
OpenBLAS splits even these, and on a shared, busy machine its threads spend far longer spinning than computing:
one fit measured 15 s with the default 2 threads under load versus 0.7 s single-threaded. This context manager
lowers numpy's OpenBLAS to one thread for the duration and restores the previous count; where no OpenBLAS is
found (another BLAS, another platform) it does nothing.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

__all__ = ["single_threaded_blas"]

_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("64_", "")


@cache
def _controls_for(path: str) -> tuple[Callable[[], int], Callable[[int], None]] | None:
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    for pre in _PREFIXES:
        for suf in _SUFFIXES:
            get = getattr(lib, f"{pre}_get_num_threads{suf}", None)
            put = getattr(lib, f"{pre}_set_num_threads{suf}", None)
            if get is not None and put is not None:
                get.restype = ctypes.c_int
                put.argtypes = [ctypes.c_int]
                return get, put
    return None


def _loaded_openblas() -> list[tuple[Callable[[], int], Callable[[int], None]]]:
    """Thread controls of every OpenBLAS currently loaded (numpy and scipy each bundle their own)."""
    try:
        with open("/proc/self/maps") as fh:
            paths = sorted(set(re.findall(r"(/\S*openblas\S*\.so\S*)", fh.read())))
    except OSError:
        return []
    return [c for c in (_controls_for(p) for p in paths) if c is not None]


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """Run the block with one thread in every loaded OpenBLAS, then restore the previous settings."""
    import numpy  # noqa: F401  (make sure numpy's OpenBLAS is loaded before looking for it)

    saved = []
    for get, put in _loaded_openblas():
        prev = int(get())
        if prev != 1:
            put(1)
            saved.append((put, prev))
    try:
        yield
    finally:
        for put, prev in saved:
            put(prev)
