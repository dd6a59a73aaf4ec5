"""The fast path's CUDA kernels, checked without a GPU.

CuPy turns each ``ElementwiseKernel`` (a C body over named parameters) and each
``RawKernel`` (a whole CUDA function) into CUDA C and compiles it with NVRTC the first time
it is launched; on a machine without a GPU that never happens. This module does both halves
itself, on the very strings :mod:`mlp_core.fast` hands to CuPy:

* :func:`elementwise_source` writes the kernel CuPy generates for an ElementwiseKernel
  launch (``typedef <type> T;``, a grid-stride loop over the elements, each array
  parameter bound by reference to its element, inputs ``const``, scalars by value), and
  :func:`nvrtc_compile` compiles a source with NVRTC (from the ``nvidia-cuda-nvrtc-cu12``
  wheel, the compiler CuPy itself uses) for an architecture: compute_90 is the H100/H200;
* :class:`HostCupy` stands in for the ``cupy`` namespace on NumPy arrays; its kernels are
  those same CUDA sources compiled as host C++ (``__global__`` dropped, ``threadIdx`` and
  the other built-ins set by a loop over the launch grid) and called through ctypes, so the
  kernels' arithmetic, argument order and launch bounds are run for real.

  It has just enough of ``cupy.cuda`` for the calls the fast path makes (streams, events,
  pinned memory, a memory pool, stream capture and a graph's launch), so that the tests
  can drive the library's warm-up → capture → replay sequence: while a stream captures,
  each call through the namespace is recorded instead of run, and ``launch()`` runs the
  recording. The library's own behaviour is what is counted: a call that allocates
  during capture (``capture_allocations``), a call a graph could not hold (refused), the
  host order staged in pinned memory (``pinned_copies``), captures and launches.

What this cannot check is CuPy itself (its broadcasting, ``take`` and ``matmul`` with
``out=``, real streams and CUDA-graph capture) or device arithmetic: that needs a GPU
(the tests marked ``gpu``).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import hashlib
import importlib.util
import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import numpy as np

C_TYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_SCALAR_TYPES = {  # C type -> (ctypes type, the NumPy scalar type CuPy must be given)
    "int": (ctypes.c_int, np.int32),
    "long long": (ctypes.c_longlong, np.int64),
    "float": (ctypes.c_float, np.float32),
    "double": (ctypes.c_double, np.float64),
}
_SIGNATURE = re.compile(r'extern\s+"C"\s+__global__\s+void\s+(\w+)\s*\(([^)]*)\)')
_DEFINE = re.compile(r"^#define\s+(\w+)\s+(\w+)\s*$", re.M)


class KernelCompileError(RuntimeError):
    """A kernel source that a compiler rejected; the message carries its log and source."""


# ------------------------------------------------------------------ the sources CuPy builds


def parse_params(spec: str) -> list[tuple[str, str]]:
    """``"T g, T s"`` -> ``[("T", "g"), ("T", "s")]`` (CuPy's parameter-list syntax)."""
    out = []
    for p in spec.split(","):
        if p.strip():
            *typ, name = p.split()
            out.append((" ".join(typ), name))
    return out


def elementwise_source(
    name: str, in_params: str, out_params: str, body: str, ctype: str, scalars=()
) -> str:
    """The CUDA source of one ElementwiseKernel launch over same-shape contiguous arrays.

    Laid out as CuPy generates it: a ``typedef`` for T, then a grid-stride loop in which
    every array parameter is bound by reference to its element (inputs ``const``); the
    parameters named in ``scalars`` are passed by value. (CuPy also indexes through
    strides and broadcasts; here every input arrives already broadcast and contiguous.)
    """
    params = [(t, n, True) for t, n in parse_params(in_params)] + [
        (t, n, False) for t, n in parse_params(out_params)
    ]
    signature, bind = [], []
    for typ, p, const in params:
        c = "const " if const else ""
        if p in scalars:
            signature.append(f"{typ} {p}")
        else:
            signature.append(f"{c}{typ}* _raw_{p}")
            bind.append(f"    {c}{typ} &{p} = _raw_{p}[_i];\n")
    signature.append("const long long _n")
    return (
        f"typedef {ctype} T;\n"
        f'extern "C" __global__ void {name}({", ".join(signature)}) {{\n'
        f"  for (long long _i = (long long)blockIdx.x * blockDim.x + threadIdx.x; _i < _n;\n"
        f"       _i += (long long)blockDim.x * gridDim.x) {{\n"
        + "".join(bind)
        + f"    {body}\n  }}\n}}\n"
    )


def kernel_name(source: str) -> str:
    """The name of the (first) ``extern "C" __global__`` function in ``source``."""
    match = _SIGNATURE.search(source)
    assert match, 'no extern "C" __global__ function in the source'
    return match.group(1)


# ------------------------------------------------------------------------------- NVRTC


def nvrtc_path() -> pathlib.Path | None:
    """libnvrtc from the ``nvidia-cuda-nvrtc-cu12`` wheel, or None where it is absent."""
    try:
        spec = importlib.util.find_spec("nvidia.cuda_nvrtc")
    except ModuleNotFoundError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        libs = sorted(
            p
            for p in pathlib.Path(root, "lib").glob("libnvrtc.so.*")
            if "builtins" not in p.name and ".alt." not in p.name
        )
        if libs:
            return libs[0]
    return None


def _nvrtc():
    path = nvrtc_path()
    assert path is not None, "NVRTC is missing: pip install nvidia-cuda-nvrtc-cu12"
    nv = ctypes.CDLL(str(path))
    nv.nvrtcGetErrorString.restype = ctypes.c_char_p
    return nv


def nvrtc_version() -> tuple[int, int]:
    major, minor = ctypes.c_int(), ctypes.c_int()
    assert _nvrtc().nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)) == 0
    return major.value, minor.value


def nvrtc_compile(source: str, arch: str = "compute_90") -> tuple[str, str]:
    """Compile ``source`` with NVRTC for ``arch``; returns ``(ptx, log)``.

    Raises :class:`KernelCompileError` with NVRTC's log and the source when it is rejected.
    """
    nv = _nvrtc()

    def read(size_fn, get_fn, prog):
        n = ctypes.c_size_t()
        size_fn(prog, ctypes.byref(n))
        buf = ctypes.create_string_buffer(n.value)
        get_fn(prog, buf)
        return buf.value.decode(errors="replace")

    prog = ctypes.c_void_p()
    status = nv.nvrtcCreateProgram(ctypes.byref(prog), source.encode(), b"kernel.cu", 0, None, None)
    assert status == 0, nv.nvrtcGetErrorString(status).decode()
    try:
        options = [f"--gpu-architecture={arch}".encode()]
        status = nv.nvrtcCompileProgram(
            prog, len(options), (ctypes.c_char_p * len(options))(*options)
        )
        log = read(nv.nvrtcGetProgramLogSize, nv.nvrtcGetProgramLog, prog)
        if status != 0:
            raise KernelCompileError(
                f"NVRTC ({arch}) rejected the kernel: "
                f"{nv.nvrtcGetErrorString(status).decode()}\n{log}\n--- source ---\n{source}"
            )
        return read(nv.nvrtcGetPTXSize, nv.nvrtcGetPTX, prog), log
    finally:
        nv.nvrtcDestroyProgram(ctypes.byref(prog))


# ----------------------------------------------------------- the same sources, on the host

_HOST_PRELUDE = r"""
#include <math.h>
#include <cmath>
using std::exp; using std::log; using std::tanh; using std::log1p; using std::fabs;
struct mlp_dim3 { unsigned int x, y, z; };
static mlp_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
"""


def host_compiler() -> str | None:
    """A C++ compiler for the host (``$CXX``, g++, c++ or clang++), or None."""
    for cxx in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if cxx and shutil.which(cxx):
            return shutil.which(cxx)
    return None


_BUILD_DIR: pathlib.Path | None = None


def _build_dir() -> pathlib.Path:
    global _BUILD_DIR
    if _BUILD_DIR is None:
        _BUILD_DIR = pathlib.Path(tempfile.mkdtemp(prefix="mlp-host-kernels-"))
        atexit.register(shutil.rmtree, _BUILD_DIR, True)
    return _BUILD_DIR


def _split_param(param: str, macros: dict, T: str | None) -> tuple[str, bool]:
    """``"const REAL* __restrict__ Z"`` -> ("float", True): the element or scalar C type,
    and whether the parameter is a pointer."""
    words = param.replace("*", " * ").split()[:-1]  # drop the name
    pointer = "*" in words
    words = [macros.get(w, w) for w in words if w not in ("const", "*", "__restrict__")]
    typ = " ".join(T if w == "T" else w for w in words)
    return typ, pointer


class HostKernel:
    """A CUDA ``extern "C" __global__`` function compiled as host C++, launched with a
    grid like a CUDA kernel: ``kernel(grid, block, args)`` runs every (block, thread) in
    turn. The arguments are checked as the GPU would need them: a pointer must be a
    C-contiguous array of the kernel's element type, a scalar the exact NumPy type."""

    def __init__(self, source: str, T: str | None = None):
        self.source, self.name = source, kernel_name(source)
        macros = dict(_DEFINE.findall(source))
        if T is None:
            match = re.search(r"typedef\s+(\w+)\s+T;", source)
            T = match.group(1) if match else None
        params = [p for p in _SIGNATURE.search(source).group(2).split(",") if p.strip()]
        self.params = [_split_param(p, macros, T) for p in params]
        names = [p.replace("*", " ").split()[-1] for p in params]
        launcher = (
            f'\nextern "C" void mlp_host_launch(unsigned int _grid, unsigned int _block, '
            f"{', '.join(params)}) {{\n"
            "  gridDim.x = _grid; blockDim.x = _block;\n"
            "  gridDim.y = gridDim.z = blockDim.y = blockDim.z = 1;\n"
            "  blockIdx.y = blockIdx.z = threadIdx.y = threadIdx.z = 0;\n"
            "  for (unsigned int b = 0; b < _grid; ++b)\n"
            "    for (unsigned int t = 0; t < _block; ++t) {\n"
            f"    blockIdx.x = b; threadIdx.x = t; {self.name}({', '.join(names)});\n"
            "  }\n}\n"
        )
        self._launch = _compile_host(_HOST_PRELUDE + source + launcher)
        self._launch.restype = None

    def __call__(self, grid, block, args):
        assert len(args) == len(self.params), (
            f"{self.name} takes {len(self.params)} arguments, got {len(args)}"
        )
        c_args = []
        for k, ((typ, pointer), a) in enumerate(zip(self.params, args)):
            if pointer:
                assert isinstance(a, np.ndarray) and a.flags.c_contiguous, (
                    f"{self.name}: argument {k} must be a C-contiguous array (a raw pointer "
                    f"reads a strided view wrongly)"
                )
                assert C_TYPE[a.dtype] == typ, f"{self.name}: argument {k} must hold {typ}"
                c_args.append(ctypes.c_void_p(a.ctypes.data))
            else:
                c_type, np_type = _SCALAR_TYPES[typ]
                assert isinstance(a, np_type), (
                    f"{self.name}: argument {k} ({typ}) must be a {np_type.__name__}, "
                    f"got {type(a).__name__}"
                )
                c_args.append(c_type(a))
        self._launch(ctypes.c_uint(int(grid[0])), ctypes.c_uint(int(block[0])), *c_args)


def _compile_host(source: str):
    """Compile a host C++ source to a shared library; its launcher function."""
    cxx = host_compiler()
    assert cxx, "no C++ compiler found (set CXX, or install g++)"
    key = hashlib.sha1(source.encode()).hexdigest()[:16]
    cpp, lib = _build_dir() / f"{key}.cpp", _build_dir() / f"{key}.so"
    cpp.write_text(source)
    done = subprocess.run(
        [cxx, "-std=c++17", "-O1", "-shared", "-fPIC", "-o", str(lib), str(cpp)],
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise KernelCompileError(
            f"{cxx} rejected the kernel:\n{done.stderr}\n--- source ---\n{source}"
        )
    return ctypes.CDLL(str(lib)).mlp_host_launch


# --------------------------------------------------------------- a stand-in for ``cupy``


# calls a captured epoch may make through the namespace: each writes into ``out``
_CAPTURABLE = {"matmul", "sum", "multiply", "subtract", "add", "take", "copyto"}
_ALLOCATING = {"empty", "zeros", "ones", "empty_like", "zeros_like", "asarray", "array"}


class HostCupy:
    """Enough of the ``cupy`` namespace for the fast path's GPU epoch, on NumPy.

    ``ElementwiseKernel`` and ``RawKernel`` compile their CUDA sources as host C++;
    everything else is NumPy's. ``sources`` collects every distinct CUDA source launched,
    as NVRTC would be given it (without CuPy's own headers). ``cuda`` is a stand-in for
    ``cupy.cuda`` (see the module docstring); ``captures``, ``launches`` and
    ``capture_allocations`` count what happened."""

    def __init__(self):
        self.sources: dict[str, str] = {}  # source -> kernel name
        self.recording: list | None = None  # the calls of a stream capture in progress
        self.captures = self.launches = self.capture_allocations = 0
        self.pinned_copies = 0
        outer = self

        class ElementwiseKernel:
            def __init__(self, in_params, out_params, operation, name):
                self.spec = (in_params, out_params, operation, name)
                self.n_in = len(parse_params(in_params))
                self.names = [n for _, n in parse_params(in_params) + parse_params(out_params)]

            def __call__(self, *args):
                return outer._run(outer._elementwise, self, args)

        class RawKernel:
            def __init__(self, code, name):
                self.code, self.name = code, name

            def __call__(self, grid, block, args):
                assert kernel_name(self.code) == self.name
                outer.sources[self.code] = self.name
                outer._run(_host_kernel(self.code), grid, block, args)

        self.ElementwiseKernel, self.RawKernel = ElementwiseKernel, RawKernel
        self.cuda = _HostCuda(self)

    def __getattr__(self, name):
        attr = getattr(np, name)
        if self.recording is None or not callable(attr):
            return attr
        if name in _CAPTURABLE:
            return lambda *a, **k: self._run(attr, *a, **k)
        if name in _ALLOCATING:
            self.capture_allocations += 1
            return attr
        if isinstance(attr, type):  # dtypes and scalar types
            return attr

        def refused(*a, **k):
            raise RuntimeError(f"cupy.{name} called during stream capture: not capturable")

        return refused

    def asarray(self, a, dtype=None, blocking=True):
        """A host-to-device copy (a new array, as on a GPU); ``blocking=False`` needs a
        pinned source, as CuPy's asynchronous copy does."""
        if self.recording is not None:
            self.capture_allocations += 1
        if not blocking:
            base = a.base if isinstance(a, np.ndarray) else None
            base = base.obj if isinstance(base, memoryview) else base
            assert isinstance(base, _PinnedMemory), "an asynchronous copy needs pinned memory"
            self.pinned_copies += 1
        return np.array(a, dtype=dtype, copy=True)

    def _run(self, fn, *args, **kwargs):
        """Run a call now, or record it while a stream captures (it returns nothing)."""
        if self.recording is None:
            return fn(*args, **kwargs)
        self.recording.append(lambda: fn(*args, **kwargs))
        return None

    def _elementwise(self, kernel, args):
        in_params, out_params, operation, name = kernel.spec
        assert len(args) == len(kernel.names), f"{name} takes {len(kernel.names)} arguments"
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        assert len({a.dtype for a in arrays}) == 1, f"{name}: one type T for every array"
        dtype = arrays[0].dtype
        outs = args[kernel.n_in :]
        assert all(isinstance(o, np.ndarray) for o in outs), f"{name}: outputs are arrays"
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
        assert all(o.shape == shape for o in outs), f"{name}: outputs are not broadcast"
        scalars = {n for n, a in zip(kernel.names, args) if not isinstance(a, np.ndarray)}
        source = elementwise_source(name, in_params, out_params, operation, C_TYPE[dtype], scalars)
        self.sources[source] = name
        assert all(o.flags.c_contiguous for o in outs), (
            f"{name}: the fast path writes only to contiguous buffers"
        )
        call = []
        for k, (n, a) in enumerate(zip(kernel.names, args)):
            if n in scalars:
                call.append(dtype.type(a))  # CuPy casts a Python scalar to T
            elif k < kernel.n_in:  # an input, broadcast (CuPy does it by strides)
                call.append(np.ascontiguousarray(np.broadcast_to(a, shape)))
            else:  # an output, written in place
                call.append(a)
        size = int(np.prod(shape))
        block = 128
        _host_kernel(source)((max(1, -(-size // block)),), (block,), call + [np.int64(size)])


class _PinnedMemory(bytearray):
    """Host memory from ``cuda.alloc_pinned_memory`` (a marked bytearray)."""


class _HostCuda:
    """The parts of ``cupy.cuda`` the fast path calls. Work runs in call order on the
    host, so events and streams order nothing here."""

    def __init__(self, cp: HostCupy):
        ns = self
        self._current: list = []

        class Event:
            def synchronize(self):
                pass

        class Graph:
            def __init__(self, calls):
                self.calls = calls

            def launch(self):
                cp.launches += 1
                for call in self.calls:
                    call()

        class Stream:
            def __init__(self, non_blocking=False):
                pass

            def __enter__(self):
                ns._current.append(self)
                return self

            def __exit__(self, *exc):
                ns._current.pop()

            def record(self, event=None):
                return event or Event()

            def wait_event(self, event):
                pass

            def begin_capture(self):
                cp.recording = []

            def end_capture(self):
                calls, cp.recording = cp.recording, None
                cp.captures += 1
                return Graph(calls)

        class MemoryPool:
            def malloc(self, nbytes):
                return bytearray(nbytes)

        class Device:
            id = 0

        self._null = Stream()
        self.Stream, self.MemoryPool, self.Device = Stream, MemoryPool, Device

    def get_current_stream(self):
        return self._current[-1] if self._current else self._null

    @contextlib.contextmanager
    def using_allocator(self, allocator=None):
        yield

    def alloc_pinned_memory(self, nbytes):
        return _PinnedMemory(int(nbytes))


_HOST_KERNELS: dict = {}  # CUDA source -> HostKernel (each source is compiled once)


def _host_kernel(source: str) -> HostKernel:
    if source not in _HOST_KERNELS:
        _HOST_KERNELS[source] = HostKernel(source)
    return _HOST_KERNELS[source]
