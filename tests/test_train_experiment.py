"""`ecgtrain experiment FILE`: datasets per scheme, runs per model x recipe x seed, results, resume, bad files."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from ecgtrain.cli import main
from ecgtrain.experiment import load_experiment, plan_runs

REPO = Path(__file__).resolve().parents[1]
CALL = ["--workers", "0", "--device", "cpu", "--no-progress", "--jobs", "1"]

DEMO = """
name = "demo-test"
description = "Ref-ECG on the bundled demo."

[build]
db = "demo"
per-class = 12
seed = 3

[schemes]
window = { split-by = "window" }

[train]
models = ["refecg"]
seeds = [0, 1]
epochs = 1
batch-size = 8
lr = 0.01

[recipes.paper]

[recipes.slow]
lr = 0.001
seeds = [0]
"""


def invoke(*args):
    return CliRunner().invoke(main, ["experiment", *map(str, args)])


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


def fails(*args, match: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and match in last, result.output
    return result.output


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The demo experiment run once: (experiment file, output directory, first run's output)."""
    root = tmp_path_factory.mktemp("experiment")
    path = write(root, DEMO)
    result = invoke(path, "--out", root / "out", *CALL)
    assert result.exit_code == 0, result.output
    return path, root / "out", result.output


def test_runs_every_model_recipe_and_seed(finished):
    _, out, output = finished
    runs = sorted(p.name for p in (out / "runs" / "window").iterdir())
    assert runs == ["refecg-paper-seed0", "refecg-paper-seed1", "refecg-slow-seed0"]
    for run in runs:
        assert (out / "runs" / "window" / run / "report.json").is_file()
    assert (out / "datasets" / "window" / "dataset.json").is_file()
    assert (out / "results.png").stat().st_size > 0 and (out / "learning.png").stat().st_size > 0
    results = (out / "results.md").read_text()
    assert "| Ref-ECG (paper) | " in results and " (2) |" in results  # mean over two seeds
    assert "| Ref-ECG (slow) | " in results and " (1) |" in results
    assert "majority-class baseline" in results and "| N sens / PPV (n) |" in results
    assert "| window | Ref-ECG (slow) | Ref-ECG (paper) | 0 |" in results  # paired: recipe against the first one
    assert "Not run yet" not in results
    assert f"results: {out / 'results.md'}" in output


def test_resume_trains_only_what_is_missing(finished, tmp_path):
    path, out, _ = finished
    import shutil

    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    kept = copy / "runs" / "window" / "refecg-paper-seed0" / "checkpoint.pt"
    before = kept.stat().st_mtime_ns
    shutil.rmtree(copy / "runs" / "window" / "refecg-paper-seed1")
    result = invoke(path, "--out", copy, *CALL)
    assert result.exit_code == 0, result.output
    assert "window/refecg-paper-seed0: finished" in result.output
    assert "window/refecg-paper-seed1: training" in result.output
    assert "dataset window: complete" in result.output
    assert kept.stat().st_mtime_ns == before
    assert (copy / "runs" / "window" / "refecg-paper-seed1" / "report.json").is_file()


def test_unfinished_run_is_resumed_and_subset_leaves_rows_not_run(finished, tmp_path):
    path, out, _ = finished
    import shutil

    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    for name in ("report.json", "predictions.csv"):
        (copy / "runs" / "window" / "refecg-slow-seed0" / name).unlink()
    result = invoke(path, "--out", copy, "--recipes", "paper", *CALL)
    assert result.exit_code == 0, result.output
    results = (copy / "results.md").read_text()
    assert "| Ref-ECG (slow) | not run |" in results
    assert "Not run yet (1)" in results
    assert "--model refecg --seed 0 --out " in results and "refecg-slow-seed0 --epochs 1 --batch-size 8\n" in results
    result = invoke(path, "--out", copy, *CALL)
    assert "window/refecg-slow-seed0: resuming" in result.output, result.output
    assert "Not run yet" not in (copy / "results.md").read_text()


def test_changed_settings_are_refused(finished, tmp_path):
    path, out, _ = finished
    changed = write(tmp_path, DEMO.replace("batch-size = 8", "batch-size = 4"))
    fails(changed, "--out", out, *CALL, match="trained with batch_size 8, the experiment now says 4")


def test_dry_run_prints_commands_and_builds_nothing(tmp_path):
    path = write(tmp_path, DEMO)
    result = invoke(path, "--out", tmp_path / "out", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "dataset window (to build): ecgrender build --out" in result.output
    assert "--db demo --per-class 12 --seed 3 --split-by window" in result.output
    assert "run window/refecg-slow-seed0 (to train): ecgtrain fit" in result.output
    assert not (tmp_path / "out").exists()


def test_shipped_table1_experiment_plans_every_run():
    exp = load_experiment(REPO / "experiments" / "mitdb-table1.toml")
    assert list(exp.schemes) == ["window", "time", "patient"]
    assert exp.models == ["refecg", "imresnet34", "imresnet50", "imecgnet"]
    runs = plan_runs(exp)
    assert len(runs) == 3 * 4 * 3 * 3  # schemes x models x recipes x seeds
    assert [r.name for r in exp.recipes] == ["paper", "paper-pbn", "scratch"]
    assert {r.config["weights"] for r in runs} == {"none"}
    assert len(plan_runs(exp, models=["refecg"], schemes=["time"])) == 3 * 3
    assert exp.paper["accuracy"]["imecgnet"] == pytest.approx(99.62)


def test_failed_build_is_one_line_error(tmp_path):
    path = write(tmp_path, DEMO.replace("per-class = 12", "per-class = 12\nno-such-option = 1"))
    fails(path, "--out", tmp_path / "out", *CALL, match="building the window dataset failed")


@pytest.mark.parametrize("text, match", [
    ("name = [", "not valid TOML"),
    (DEMO + "\n[extra]\n", "unknown key(s) extra"),
    (DEMO.replace("lr = 0.01", "lr = 0.01\nlearning-rate = 1"), "unknown fit option 'learning-rate'"),
    (DEMO.replace("lr = 0.01", "lr = 0.01\nworkers = 2"), "set per call"),
    (DEMO.replace("lr = 0.01", 'lr = "fast"'), "lr must be int"),
    (DEMO.replace('models = ["refecg"]', 'models = ["refecg", "resnet9"]'), "unknown resnet9"),
    (DEMO.replace("seeds = [0, 1]", "seeds = [0, 0]"), "distinct whole numbers"),
    (DEMO.replace('db = "demo"', ""), "[build] needs db"),
    (DEMO.replace("[train]", '[train]\nreference = "imecgnet"'), "reference 'imecgnet' is not one of the models"),
    (DEMO.replace('window = { split-by = "window" }', ""), "[schemes] needs at least one"),
    (DEMO.replace("per-class = 12", 'out = "x"'), "chosen by the experiment"),
])
def test_bad_experiment_files(tmp_path, text, match):
    fails(write(tmp_path, text), "--out", tmp_path / "out", match=match)
    assert not (tmp_path / "out").exists()


def test_filters_must_name_what_the_file_has(tmp_path):
    path = write(tmp_path, DEMO)
    fails(path, "--out", tmp_path / "out", "--models", "imecgnet", match="--models: imecgnet not in")
    fails(path, "--out", tmp_path / "out", "--schemes", "time", match="--schemes: time not in")
    fails(path, "--out", tmp_path / "out", "--seeds", "7", match="no run of")


def test_source_option_replaces_the_files_source(tmp_path):
    path = write(tmp_path, DEMO.replace('db = "demo"', 'db = "mitdb"\nsource = "relative/mitdb"'))
    result = invoke(path, "--out", tmp_path / "out", "--dry-run")
    assert f"--source {tmp_path / 'relative' / 'mitdb'} " in result.output  # relative to the file
    (tmp_path / "mine").mkdir()
    result = invoke(path, "--out", tmp_path / "out", "--dry-run", "--source", tmp_path / "mine")
    assert f"--source {tmp_path / 'mine'} " in result.output, result.output


def test_damaged_run_outside_the_filter_is_a_one_line_error(finished, tmp_path):
    path, out, _ = finished
    import shutil

    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    (copy / "runs" / "window" / "refecg-slow-seed0" / "args.json").write_text("{not json")
    fails(path, "--out", copy, "--recipes", "paper", *CALL, match="args.json is damaged")


def test_multi_label_dataset_is_refused_before_training(tmp_path, synth_ptbxl):
    text = DEMO.replace('db = "demo"\nper-class = 12', f'db = "ptbxl"\nsource = "{synth_ptbxl}"\nallow-missing-classes = true')
    fails(write(tmp_path, text), "--out", tmp_path / "out", *CALL, match="is multi-label")
    assert not (tmp_path / "out" / "runs").exists()
