"""The epoch as a CUDA graph: warm up once, capture once, replay from then on.

A workspace's graph goes through the phases of :class:`Phase`: ``COLD`` (nothing run
yet) → one eager epoch compiles every kernel and warms cuBLAS up → ``WARM`` → the next
epoch is captured on a side stream into a private memory pool → ``CAPTURED`` (or
``FAILED``, with the reason, and the epochs run eagerly). The captured epoch reads its
step η/B from a device scalar and its data from workspace buffers, so neither a new
learning rate (a schedule) nor a new epoch order needs a new capture.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Phase(enum.Enum):
    COLD = "cold"
    WARM = "warm"
    CAPTURED = "captured"
    FAILED = "failed"


@dataclass(frozen=True)
class GraphState:
    """Where a workspace's CUDA graph stands; ``graph`` and ``pool`` when captured (kept
    together: the pool holds the graph's memory), ``error`` when capture failed."""

    phase: Phase = Phase.COLD
    graph: object = None
    pool: object = None
    error: str | None = None


def capture(cp, stream, body, warm_up) -> GraphState:
    """Capture ``body()`` on ``stream`` into a private memory pool; ``warm_up()`` first
    runs on that stream outside the capture (the first cuBLAS call on a stream allocates
    its workspace, which capture forbids). Any failure gives a ``FAILED`` state."""
    cuda = cp.cuda
    pool = cuda.MemoryPool()
    stream.wait_event(cuda.get_current_stream().record())
    try:
        with stream:
            warm_up()
        with cuda.using_allocator(pool.malloc), stream:
            stream.begin_capture()
            try:
                body()
            finally:
                graph = stream.end_capture()
    except Exception as err:  # noqa: BLE001 - any failure means "run eagerly"
        return GraphState(Phase.FAILED, error=f"{type(err).__name__}: {err}")
    return GraphState(Phase.CAPTURED, graph, pool)


def replay(cp, stream, state: GraphState) -> None:
    """Launch the captured epoch on ``stream``, ordered after the caller's stream's work
    and before its next work by events (never by a host wait)."""
    outer = cp.cuda.get_current_stream()
    stream.wait_event(outer.record())
    with stream:
        state.graph.launch()
    outer.wait_event(stream.record())
