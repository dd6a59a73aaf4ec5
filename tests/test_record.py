"""``make record`` (mlp_core.bench.record): the load it measures, what it refuses, what it
stamps on a recording, and the recordings the chapters read from book/data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlp_core.bench import record

DATA = Path(__file__).resolve().parent.parent / "book" / "data"


def test_others_share_is_the_busy_time_not_ours():
    # 2 s of wall on every CPU; the machine was busy 3 CPU-seconds × cpus, 1 of them ours
    cpus = record.os.cpu_count()
    before, after = (10.0, 100.0), (10.0 + 3.0 * cpus, 102.0)
    share = record.others_share(before, after, own=1.0 * cpus)
    assert share == pytest.approx(1.0)  # (3 − 1) cpus·s over 2 s × cpus
    assert record.others_share(before, (10.0, 102.0), own=0.5) == 0.0  # never negative
    assert record.others_share(before, (10.0 + 9.0 * cpus, 102.0), own=0.0) == 1.0  # nor > 1


def _fake_part(monkeypatch, others, probes=None):
    """Make every part instant: the worker writes a tiny result (with its host-speed
    probes ``probes``, GFLOP/s, when given), and the machine's load reads as ``others``
    (the share of CPU time other programs used)."""

    real_run = record.subprocess.run

    def run(cmd, **kwargs):
        if "--worker" not in cmd:  # git
            return real_run(cmd, **kwargs)
        out = Path(cmd[cmd.index("--out") + 1])
        result = {"meta": {"command": "x", "cpu": "C", "cores": 2}, "x": 1}
        if probes is not None:
            result["host_speed"] = dict(n=512, **record.steadiness(probes))
        out.write_text(json.dumps(result))
        return record.subprocess.CompletedProcess(cmd, 0)

    def measure(fn):
        done = fn()
        load = dict(
            load_average_before=[0.0] * 3,
            load_average_after=[0.0] * 3,
            others_share_before=others,
            others_share_during=others,
            seconds=0.1,
        )
        return done, dict(load, quiet=others <= record.QUIET_SHARE)

    monkeypatch.setattr(record.subprocess, "run", run)
    monkeypatch.setattr(record, "measure_load", measure)


def test_a_part_recorded_under_load_is_refused_and_kept_aside(monkeypatch, tmp_path):
    _fake_part(monkeypatch, others=0.4)
    lines = []
    assert record.record(tmp_path, ("part3",), say=lines.append) == 3
    assert list(tmp_path.iterdir()) == [tmp_path / "part3-cpu.json.refused"]  # kept aside
    refused = record.load_recording(tmp_path / "part3-cpu.json.refused")
    assert refused["recording"]["quiet"] is False and refused["x"] == 1
    assert "NOT written" in lines[-1] and "40%" in lines[-1] and ".refused" in lines[-1]


def test_allow_load_writes_it_marked_and_the_note_says_so(monkeypatch, tmp_path):
    _fake_part(monkeypatch, others=0.4)
    assert record.record(tmp_path, ("part3",), allow_load=True, say=lambda line: None) == 0
    result = record.load_recording(tmp_path / "part3-cpu.json")
    rec = result["recording"]
    assert rec["quiet"] is False and rec["mlp_core"] == record.__version__
    assert "--allow-load" in rec["command"] and result["meta"]["command"] == rec["command"]
    assert "NOT QUIET" in record.recording_note(result)


def test_a_quiet_part_is_written_with_its_commit(monkeypatch, tmp_path):
    _fake_part(monkeypatch, others=0.01)
    assert record.record(tmp_path, ("allreduce",), say=lambda line: None) == 0
    result = record.load_recording(tmp_path / "allreduce-cpu.json")
    assert result["recording"]["quiet"] is True
    assert set(result["recording"]) >= {"commit", "dirty", "others_share_during"}
    assert "quiet machine" in record.recording_note(result)
    assert list(tmp_path.iterdir()) == [tmp_path / "allreduce-cpu.json"]  # no temporary left


def test_a_part_whose_host_changed_speed_is_refused_and_kept_aside(monkeypatch, tmp_path):
    """Quiet inside the machine, but the probes fell by a third for a while: a host's slow
    spell, which the load cannot see."""
    _fake_part(monkeypatch, others=0.0, probes=[205.0, 150.0, 204.0])
    lines = []
    assert record.record(tmp_path, ("part3",), say=lines.append) == 3
    assert list(tmp_path.iterdir()) == [tmp_path / "part3-cpu.json.refused"]
    assert (
        record.load_recording(tmp_path / "part3-cpu.json.refused")["recording"]["steady"] is False
    )
    assert "NOT written" in lines[-1] and "150 to 205 GFLOP/s" in lines[-1]


def test_allow_load_writes_an_unsteady_part_marked_and_the_note_says_so(monkeypatch, tmp_path):
    _fake_part(monkeypatch, others=0.0, probes=[205.0, 150.0, 204.0])
    assert record.record(tmp_path, ("part3",), allow_load=True, say=lambda line: None) == 0
    result = record.load_recording(tmp_path / "part3-cpu.json")
    rec = result["recording"]
    assert rec["quiet"] is True and rec["steady"] is False
    assert rec["host_speed_max_over_min"] == pytest.approx(205 / 150)
    note = record.recording_note(result)
    assert "HOST NOT STEADY" in note and "37%" in note and "development figures" in note


def test_a_quiet_part_on_a_steady_host_says_both(monkeypatch, tmp_path):
    _fake_part(monkeypatch, others=0.01, probes=[205.0, 198.0, 203.0])
    assert record.record(tmp_path, ("part3",), say=lambda line: None) == 0
    result = record.load_recording(tmp_path / "part3-cpu.json")
    assert result["recording"]["steady"] is True
    note = record.recording_note(result)
    assert "quiet machine" in note and "steady host (speed probes within 4% of" in note


def test_a_part_that_fails_is_reported_and_the_others_are_recorded(monkeypatch, tmp_path):
    _fake_part(monkeypatch, others=0.0)
    fake = record.subprocess.run

    def run(cmd, **kwargs):
        if "gpu" in cmd:
            return record.subprocess.CompletedProcess(cmd, 2)
        return fake(cmd, **kwargs)

    monkeypatch.setattr(record.subprocess, "run", run)
    lines = []
    assert record.record(tmp_path, ("gpu", "part3"), say=lines.append) == 2
    assert any("gpu failed (exit status 2" in line for line in lines)
    assert [p.name for p in tmp_path.iterdir()] == ["part3-cpu.json"]


def test_a_recording_without_the_block_is_named_for_what_it_is():
    assert "predates" in record.recording_note({"meta": {}})


def test_the_load_is_measured_around_the_run():
    _, load = record.measure_load(lambda: sum(range(10**5)), window_s=0.2)
    assert 0.0 <= load["others_share_before"] <= 1.0 and load["seconds"] >= 0.0
    assert isinstance(load["quiet"], bool)


@pytest.mark.parametrize("name", [record.FILES[part] for part in record.PARTS])
def test_the_book_reads_recordings_made_by_make_record(name):
    """Every recording the chapters read carries its version, commit and load."""
    result = record.load_recording(DATA / name)
    rec = result["recording"]
    assert {"mlp_core", "commit", "dirty", "quiet", "others_share_during"} <= set(rec)
    meta = result.get("meta") or result["machine"]
    assert {"cpu", "cores", "date", "command"} <= set(meta)
    if "host_speed" in result:  # a part that probed the host's speed kept it
        assert rec["steady"] is True


def test_the_gpu_part_needs_a_gpu(monkeypatch):
    from mlp_core.core import backend
    from mlp_core.core.errors import ConfigError

    monkeypatch.setattr(backend, "gpu_xp", lambda: None)
    with pytest.raises(ConfigError, match="needs a usable CUDA GPU"):
        record.record_gpu(quick=True)


def test_best_of_rounds_keeps_each_entry_s_best_round():
    """Per cache level and per row of the roofline's points, the round with the highest
    rate, whichever round that is; an entry is kept whole (its bytes or m with its rate)."""
    roofs = [
        {"L2": {"bytes": 7, "gbs": 90.0}, "memory": {"bytes": 11, "gbs": 30.0}},
        {"L2": {"bytes": 7, "gbs": 180.0}, "memory": {"bytes": 11, "gbs": 25.0}},
        {"L2": {"bytes": 7, "gbs": 120.0}, "memory": {"bytes": 11, "gbs": 35.0}},
    ]
    best = record.best_of_rounds(roofs, "gbs")
    assert best == {"L2": {"bytes": 7, "gbs": 180.0}, "memory": {"bytes": 11, "gbs": 35.0}}
    rates = [
        [{"m": 1, "gflops": 3.0}, {"m": 5, "gflops": 40.0}],
        [{"m": 1, "gflops": 4.0}, {"m": 5, "gflops": 20.0}],
    ]
    assert record.best_of_rounds(rates, "gflops") == [
        {"m": 1, "gflops": 4.0},
        {"m": 5, "gflops": 40.0},
    ]
