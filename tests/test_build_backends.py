"""The render stage runs on other joblib backends without code changes and gives the same bytes."""

from __future__ import annotations

import pytest
from buildutil import ecgrender, tree_bytes

OPTIONS = ["--db", "demo", "--per-class", "6", "--renderer", "fast", "--shard-size", "5", "--allow-missing-classes"]


def test_local_dask_cluster_gives_the_same_dataset(tmp_path):
    pytest.importorskip("dask.distributed")
    reference, on_dask = tmp_path / "loky", tmp_path / "dask"
    assert ecgrender("build", *OPTIONS, "--jobs", "2", "--out", reference).exit_code == 0
    result = ecgrender("build", *OPTIONS, "--backend", "dask", "--out", on_dask)
    assert result.exit_code == 0, result.output
    assert tree_bytes(on_dask) == tree_bytes(reference)


def test_unknown_backend_is_a_clear_error(tmp_path):
    result = ecgrender("build", *OPTIONS, "--backend", "slurm-magic", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert "slurm-magic" in result.stderr and not (tmp_path / "o" / "dataset.json").exists()


def test_scheduler_needs_the_dask_backend(tmp_path):
    result = ecgrender("build", *OPTIONS, "--scheduler", "tcp://127.0.0.1:1", "--out", tmp_path / "o")
    assert result.exit_code == 2 and "--backend dask" in result.stderr
