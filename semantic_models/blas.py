"""Keep numpy's OpenBLAS on one thread for the fusion head's products (one job: that switch, portably).

Why: OpenBLAS splits a product over its worker threads once it exceeds ~2.6·10⁵ multiply-adds, which the head's
fusion layer does from batch ~35 on. Waking sleeping workers between the head's short numpy calls costs far more
than the product on a shared machine (measured at batch 256: 3.2 ms with the default two threads, 0.18 ms with
one). OpenBLAS ≥ 0.3.27 has a *thread-local* thread count, so the limit can be scoped to the caller's thread and
one call without touching the process-wide setting other code relies on. Where the symbol is unavailable
(another BLAS, an older OpenBLAS) the switch is a no-op.
"""

from __future__ import annotations

import ctypes
import glob
import os
from collections.abc import Callable

import numpy as np


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
