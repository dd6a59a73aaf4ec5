"""The benchmark's settings: the loop's example count, and the command as recorded."""

from __future__ import annotations

import pytest

from mlp_core import bench
from mlp_core.core.errors import ConfigError


def test_bench_refuses_loop_examples_below_one():
    with pytest.raises(ConfigError, match="loop_examples"):
        bench.run_bench(
            sizes=("tiny",),
            dtypes=("float32",),
            repeats=1,
            warmup=0,
            contenders=("loop",),
            loop_examples=0,
        )


def test_recorded_command_reads_as_typed():
    assert (
        bench.command_line(["/x/y/mlp_core/__main__.py", "bench", "--quick"])
        == "python -m mlp_core bench --quick"
    )
