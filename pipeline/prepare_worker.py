"""The entry of a prepare worker process (``pipeline/prepare.py``'s pool).

A worker runs one BLAS/OpenMP thread: the variables are set in the worker itself, first, before
anything it imports loads those libraries (this module imports nothing else at the top, so the
spawned process has loaded none of them when it unpickles its initializer). The parent process,
which embeds on every core, keeps its own environment.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeline.config import Settings

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def init(settings: Settings) -> None:
    for var in THREAD_VARS:
        os.environ[var] = "1"
    from pipeline.prepare import init_worker

    init_worker(settings)
