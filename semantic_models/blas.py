"""Keep numpy's OpenBLAS on one thread where its threads cost more than they give (one job, portably).

Two switches, both no-ops where no OpenBLAS is found (another BLAS, another platform):

* :data:`set_local_threads` (hot path, the fusion head): OpenBLAS splits a product over its worker threads once it
  exceeds ~2.6·10⁵ multiply-adds, which the head's fusion layer does from batch ~35 on. Waking sleeping workers
  between the head's short numpy calls costs far more than the product on a shared machine (measured at batch
  256: 3.2 ms with the default two threads, 0.18 ms with one). OpenBLAS ≥ 0.3.27 has a *thread-local* count, so
  the limit is scoped to the caller's thread and one call without touching the process-wide setting.
* :func:`single_threaded_blas` (the ADMM aligner's loop of hundreds of small products and factorisations): lowers
  every loaded OpenBLAS (numpy's and scipy's) to one thread for a block and restores the previous counts. One fit
  measured 15 s with the default 2 threads on a busy machine versus 0.7 s single-threaded.
"""

from __future__ import annotations

import ctypes
import glob
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

import numpy as np

__all__ = ["set_local_threads", "single_threaded_blas"]


def _find_local_setter() -> Callable[[int], int] | None:
    libs = os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs, "lib*openblas*.so*"))):
        try:
            fn = ctypes.CDLL(path).openblas_set_num_threads_local  # already loaded by numpy: same handle
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
        return fn
    return None


set_local_threads: Callable[[int], int] | None = _find_local_setter()

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
