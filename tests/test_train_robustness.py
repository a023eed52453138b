"""`ecgtrain robustness`: runs evaluated on noisy copies of their test windows, table and plot."""

from __future__ import annotations

import json

import pytest
from buildutil import ecgrender, refused
from click.testing import CliRunner

from ecgtrain.cli import main
from shards.card import read_card

TRAIN = ["--model", "refecg", "--epochs", "1", "--batch-size", "16", "--workers", "0", "--device", "cpu",
         "--no-progress"]


def ecgtrain(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """A 1-epoch Ref-ECG run on a small demo dataset (the noisy copies need a real WFDB source: the demo's)."""
    root = tmp_path_factory.mktemp("robust")
    clean = root / "clean"
    result = ecgrender("build", "--db", "demo", "--split-by", "window", "--per-class", "10", "--jobs", "1",
                       "--out", clean)
    assert result.exit_code == 0, result.output
    run = root / "run"
    result = ecgtrain("fit", clean, "--out", run, *TRAIN)
    assert result.exit_code == 0, result.output
    return run, clean


def test_robustness_on_the_demo_with_two_snrs(demo_run, tmp_path):
    run, clean = demo_run
    out = tmp_path / "robust"
    args = ["robustness", run, "--dataset", clean, "--noise", "gauss,pl", "--snr", "12,0", "--out", out,
            "--jobs", "1", "--workers", "0", "--device", "cpu", "--no-progress"]
    result = ecgtrain(*args)
    assert result.exit_code == 0, result.output
    rows = json.loads((out / "robustness.json").read_text())["rows"]
    assert [(r["noise"], r["snr_db"]) for r in rows] == [("clean", "inf"), ("gauss", 12), ("gauss", 0),
                                                         ("pl", 12), ("pl", 0)]
    n_test = sum(read_card(clean)["counts"]["test"].values())
    for r in rows:
        assert r["n_windows"] == n_test and 0 <= r["accuracy"] <= 1 and 0 <= r["macro_f1"] <= 1
        lo, hi = r["accuracy_ci95"]
        assert lo <= r["accuracy"] <= hi
    assert rows[0]["accuracy"] == json.loads((run / "report.json").read_text())["metrics"]["accuracy"]
    for kind, snr in (("gauss", 12), ("pl", 0)):
        card = read_card(out / "datasets" / f"{kind}-{snr}dB")
        assert card["noise"]["components"] == [{"type": kind, "snr_db": float(snr), "origin": "synthetic"}]
    assert (out / "robustness.png").read_bytes().startswith(b"\x89PNG")
    table = (out / "robustness.md").read_text()
    assert "| run | Ref-ECG | pl | 0 |" in table and "| run | Ref-ECG | clean | clean |" in table
    assert len((out / "robustness.csv").read_text().splitlines()) == 1 + len(rows)
    # a second call reuses the noisy sets and the reports
    before = {p: p.stat().st_mtime_ns for p in out.glob("datasets/*/dataset.json")}
    result = ecgtrain(*args)
    assert result.exit_code == 0, result.output
    assert result.output.count(": complete (") == 4 and "evaluating" not in result.output
    assert before == {p: p.stat().st_mtime_ns for p in out.glob("datasets/*/dataset.json")}
    # a report of an older checkpoint, or one that cannot be read, is evaluated again
    reports = sorted(run.glob("eval-*/report.json"))
    current = json.loads(reports[0].read_text())["epoch"]  # the last finished epoch's index
    stale = json.loads(reports[0].read_text()) | {"epoch": current - 1}
    reports[0].write_text(json.dumps(stale))
    reports[1].write_text("{")
    result = ecgtrain(*args)
    assert result.exit_code == 0, result.output
    assert result.output.count("evaluating") == 2
    assert json.loads(reports[0].read_text())["epoch"] == current


def test_a_run_of_another_dataset_is_refused(demo_run, tmp_path):
    run, clean = demo_run
    other = tmp_path / "other"
    assert ecgrender("build", "--db", "demo", "--split-by", "window", "--per-class", "10", "--seed", "1",
                     "--jobs", "1", "--out", other).exit_code == 0
    result = ecgtrain("robustness", run, "--dataset", other, "--noise", "gauss", "--snr", "6", "--out",
                      tmp_path / "r", "--device", "cpu")
    refused(result, f"run {run} was trained on another dataset than {other}")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("options,expected", [
    (["--noise", "hum"], "unknown noise type 'hum'"),
    (["--snr", "inf"], "give finite SNRs in dB"),
])
def test_bad_noise_options_are_one_line_errors(demo_run, tmp_path, options, expected):
    run, clean = demo_run
    refused(ecgtrain("robustness", run, "--dataset", clean, "--out", tmp_path / "r", *options), expected)


def test_an_snr_that_is_not_a_number_is_a_usage_error(demo_run, tmp_path):
    run, clean = demo_run
    result = ecgtrain("robustness", run, "--dataset", clean, "--out", tmp_path / "r", "--snr", "12,loud")
    assert result.exit_code == 2 and "expected comma-separated float values, got '12,loud'" in result.output
