"""Machine facts: what a benchmark result was measured on."""

from __future__ import annotations

import datetime
import glob
import os
import platform
import sys
from pathlib import Path

import numpy as np

from .._version import __version__
from ..core import backend

# What tells idle BLAS and OpenMP threads how long to spin before they sleep. Benchmarks
# run with none of them set: every library's own default (OpenBLAS spins 2^28 cycles, about
# 0.1 s; GNU OpenMP, PyTorch's, a few hundred thousand iterations; Intel's 0.2 s), and the
# run pauses between contenders until they sleep. Told to sleep at once instead, a pool must
# be woken for every small operation: PyTorch's digits epoch took 1.5 to 3 times as long
# with OMP_WAIT_POLICY=passive, and OpenBLAS's GEMM floor as well with
# OPENBLAS_THREAD_TIMEOUT=4.
POOL_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OPENBLAS_THREAD_TIMEOUT")


def cpu_cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def cache_sizes() -> dict:
    """The data and unified caches of CPU 0 (Linux sysfs): ``{"L1": bytes, "L2": ...,
    "L3": ...}`` with ``shared_by`` the CPUs sharing each; ``{}`` where unreadable."""
    out = {}
    for index in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            kind, level, size, shared = (
                Path(index, name).read_text().strip().upper()
                for name in ("type", "level", "size", "shared_cpu_list")
            )
            level = int(level)
        except (OSError, ValueError):
            continue
        if kind == "INSTRUCTION":
            continue
        units = {"K": 2**10, "M": 2**20, "G": 2**30}
        try:
            nbytes = int(size[:-1]) * units[size[-1]] if size[-1:] in units else int(size)
        except ValueError:
            continue
        out[f"L{level}"] = dict(bytes=nbytes, shared_by=_cpu_count(shared))
    return out


def _cpu_count(cpu_list: str) -> int:
    count = 0
    for part in cpu_list.split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


def last_level_cache_bytes() -> int | None:
    """The size of the largest CPU cache (:func:`cache_sizes`), or None where unreadable."""
    return max((c["bytes"] for c in cache_sizes().values()), default=None)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> list:
    """The BLAS/OpenMP libraries loaded in this process (threadpoolctl)."""
    from threadpoolctl import threadpool_info

    keys = ("user_api", "internal_api", "version", "num_threads", "architecture")
    return [
        {k: v for k, v in lib.items() if k in (*keys, "threading_layer")}
        | {"library": os.path.basename(lib.get("filepath", ""))}
        for lib in threadpool_info()
    ]


def _version(module: str):
    try:
        mod = __import__(module)
        return getattr(mod, "__version__", "?")
    except Exception:  # noqa: BLE001
        return None


def command_line(argv=None) -> str:
    """The command as a reader would type it: ``python -m mlp_core bench ...`` rather than
    the path of the package's ``__main__.py`` on the machine that ran it."""
    argv = list(sys.argv if argv is None else argv)
    if argv and os.path.basename(argv[0]) == "__main__.py":
        argv[0] = "-m mlp_core"
    return " ".join(["python"] + argv)


def load_average():
    """The 1, 5 and 15-minute load averages (None where the OS has none)."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def thread_pool_settings(environ=None) -> dict:
    """The :data:`POOL_VARIABLES` as set in the environment (None: the library's default);
    read when the libraries load, so what counts is their value when Python started."""
    environ = os.environ if environ is None else environ
    return {k: environ.get(k) for k in POOL_VARIABLES}


def pools_changed(settings: dict) -> dict:
    """The thread-pool variables of ``settings`` (:func:`thread_pool_settings`) that are set,
    i.e. not left at their library's default."""
    return {k: v for k, v in settings.items() if v is not None}


def environment_with_default_pools(environ=None) -> dict:
    """A copy of the environment without the :data:`POOL_VARIABLES`: a Python started with
    it runs every thread pool at its library's default."""
    environ = os.environ if environ is None else environ
    return {k: v for k, v in environ.items() if k not in POOL_VARIABLES}


def machine_info(use_gpu: bool = False, load_before=None) -> dict:
    """What the numbers were measured on: CPU, cores, GPU, BLAS, versions, date, command,
    the load average read before the run (``load_before``) and after it, and the thread
    pools' idle settings."""

    info = dict(
        cpu=cpu_model(),
        cores=cpu_cores(),
        logical_cpus=os.cpu_count(),
        platform=platform.platform(),
        python=platform.python_version(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        command=command_line(),
        load_average_before=load_before,
        last_level_cache_bytes=last_level_cache_bytes(),
        load_average_after=load_average(),
        thread_pools=thread_pool_settings(),
        versions=dict(
            mlp_core=__version__,
            numpy=np.__version__,
            scipy=_version("scipy"),
            sklearn=_version("sklearn"),
            torch=_version("torch"),
            cupy=_version("cupy") if use_gpu else None,
        ),
        blas=blas_info(),
        gpu=None,
    )
    cp = backend.gpu_xp() if use_gpu else None
    if cp is not None:
        props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
        name = props["name"]
        info["gpu"] = dict(
            name=name.decode() if isinstance(name, bytes) else str(name),
            memory_gib=round(props["totalGlobalMem"] / 2**30, 1),
            cuda_runtime=cp.cuda.runtime.runtimeGetVersion(),
            cupy_tf32=os.environ.get("CUPY_TF32", "0"),
            driver=cp.cuda.runtime.driverGetVersion(),
        )
    return info
