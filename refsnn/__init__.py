"""refsnn: a NumPy reference simulator for binary and quantized spiking transformers.

The package is organised by stage (see ``../shared/STYLE.md``):
``neurons`` and ``quant`` (this level), then layers, attention and blocks, models, training,
information/energy/deployment, and a conformance kit in ``testing``.

``import refsnn`` compiles nothing: Numba kernels are compiled (or loaded from the on-disk
cache) the first time a fast path is called.
"""
import os as _os

# Spinning BLAS/OpenMP threads slow a Numba kernel that runs right after a BLAS call
# (../shared/PERF.md, "Threads").  These only take effect if numpy is not imported yet.
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
_os.environ.setdefault("OMP_WAIT_POLICY", "passive")

from .config import set_backend, get_backend  # noqa: E402

__version__ = "0.1.0"
__all__ = ["set_backend", "get_backend", "__version__"]
