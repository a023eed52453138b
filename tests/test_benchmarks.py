"""The benchmarks run and return one JSON-serialisable dict per measured configuration (no timing is asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_bench_build_compares_trees_and_profiles_stages(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import bench_build

    this_tree = str(bench_build.NEW_TREE)  # stands in for an old checkout
    results = bench_build.main(["--per-class", "3", "--jobs", "1", "--repeat", "1", "--compare-with", this_tree,
                                "--stages"])
    json.dumps(results)
    builds = {r["tree"]: r for r in results if r["benchmark"] == "build"}
    assert set(builds) == {"new", "old"} and builds["new"]["ratio_new_old"] > 0
    assert builds["new"]["ratio_new_old_paired_median"] > 0
    stages = {r["tree"]: r["stages"] for r in results if r["benchmark"] == "build-stages"}
    assert set(stages) == {"new", "old"}
    assert {"whole build", "render shards (render + encode + tar)", "card (checksums)"} <= set(stages["new"])


def test_run_all_smoke_writes_one_json_and_one_table_with_every_benchmark(monkeypatch, tmp_path):
    """`run_all.py --smoke` (what CI runs): each benchmark in its child process, results.json with the machine and
    every benchmark's results, results.md with a table per benchmark. Shapes only: no figure is asserted."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import run_all

    report = run_all.main(["--smoke", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert saved["smoke"] is True and saved["machine"]["cores"] and saved["machine"]["commit"]
    results = {bench["name"]: bench["results"] for bench in saved["benchmarks"]}
    assert list(results) == ["render", "build", "decode", "loader", "train"]  # smoke: the same five with or without CUDA
    assert {r["renderer"] for r in results["render"]} >= {"fast", "matplotlib"}
    assert [(r["benchmark"], r["tree"], r["jobs"], r["renderer"]) for r in results["build"]] == [("build", "new", 1, "fast")]
    assert results["build"][0]["windows"] > 0 and results["build"][0]["windows_per_s"] > 0
    assert {"encode_png", "decode reader", "decode Pillow"} <= {r["operation"] for r in results["decode"]}
    assert all(r["ms_per_image"] > 0 and r["images"] > 0 for r in results["decode"])
    assert results["loader"][0]["samples_per_s"] > 0
    train = results["train"][0]
    assert train["model"] == "refecg" and train["images_per_s"] > 0 and train["bf16_peak_fraction"] is None
    assert train["train_gflop_per_image"] > 0
    table = (tmp_path / "results.md").read_text()
    assert "Smoke run" in table and all(f"## {name} (" in table for name in results)


def test_run_all_refuses_an_unknown_benchmark(monkeypatch, tmp_path, capsys):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import run_all

    with pytest.raises(SystemExit) as exc:
        run_all.main(["--smoke", "--only", "render,bogus", "--out", str(tmp_path)])
    assert exc.value.code == 2 and "unknown benchmark(s) bogus" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()
