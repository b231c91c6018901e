"""Single-threaded BLAS for the `plan-fit` process, unless the user chose otherwise.

Fitting solves many tiny systems, where threaded BLAS brings nothing and its spinning threads
cost much: on a busy 2-core machine, scipy's L-BFGS-B and numpy's batched solves ran 4-12x
slower with OpenBLAS's default threads. The variables only take effect when set before numpy
loads, so `fits.cli` imports this module first, and `fits/__init__` loads numpy lazily.
Library users (who import `fits` from their own programs) are not affected.
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
