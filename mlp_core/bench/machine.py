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

# OpenMP's idle threads told to sleep at once. OpenBLAS keeps its own spin (2^28 cycles,
# about 0.1 s) and the run pauses between contenders until it is over: told to sleep at
# once (OPENBLAS_THREAD_TIMEOUT=4), it must wake its threads for every small product.
POOL_SETTINGS = {"OMP_WAIT_POLICY": "passive"}


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


def thread_pool_settings() -> dict:
    """The environment variables that tell OpenBLAS's and OpenMP's idle threads to sleep
    (rather than spin, stealing cores from the next contender); read at library load, so
    they must be set before Python starts."""
    return {k: os.environ.get(k) for k in POOL_SETTINGS}


def pools_told_to_sleep(settings=None) -> bool:
    """True when the environment (or the recorded ``settings`` of
    :func:`thread_pool_settings`) tells the BLAS and OpenMP pools to sleep when idle."""
    settings = os.environ if settings is None else settings
    return all(settings.get(k) == v for k, v in POOL_SETTINGS.items())


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
