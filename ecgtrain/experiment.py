"""`ecgtrain experiment FILE`: datasets per split scheme, every model x recipe x seed trained, one results table.

An experiment file (TOML, e.g. experiments/mitdb-table1.toml) names `ecgrender build` options shared by
all datasets (`[build]`), one dataset per split scheme (`[schemes]`), the `ecgtrain fit` options of every run
with its models and seeds (`[train]`), and optional named recipes that change fit options (`[recipes.NAME]`).
Datasets are built by the `ecgrender build` command itself (the same checks and resume as by hand); runs
are trained in this process. Both resume: a complete dataset or a finished run is not made again, and a
run or dataset that was made with other settings is refused rather than mixed in.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from shards import layout
from shards.card import is_multi_label, read_card

from .engine import FitConfig
from .errors import TrainError
from .models import model_names

DATASETS = "datasets"
RUNS = "runs"
DEFAULT_RECIPE = "paper"
# FitConfig fields an experiment file may set in [train] or a recipe (the rest are per run or per call).
FIT_KEYS = tuple(f.name for f in fields(FitConfig)
                 if f.name not in ("dataset", "model", "out", "seed", "class_weights", "resume", "report",
                                   "progress", "workers", "device", "compile"))
# Per-call settings: they do not change what a run is, so they come from the command line.
CALL_KEYS = ("workers", "device", "progress", "compile")
_TOP_KEYS = {"name", "description", "build", "schemes", "train", "recipes", "paper"}


@dataclass
class Recipe:
    """A named set of fit options (over [train]'s) with the models and seeds it is run for."""

    name: str
    options: dict
    models: list[str]
    seeds: list[int]


@dataclass
class Experiment:
    """A parsed experiment file."""

    path: Path
    name: str
    description: str
    build: dict
    schemes: dict[str, dict]
    recipes: list[Recipe]
    reference: str | None = None
    paper: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        """Every model of any recipe, in the file's order."""
        return list(dict.fromkeys(m for r in self.recipes for m in r.models))


@dataclass
class PlannedRun:
    """One model x recipe x seed on one split scheme's dataset."""

    scheme: str
    model: str
    recipe: str
    seed: int
    config: dict  # FitConfig fields from the file (without dataset/out/per-call settings)

    @property
    def name(self) -> str:
        return f"{self.model}-{self.recipe}-seed{self.seed}"

    def directory(self, out: Path) -> Path:
        return out / RUNS / self.scheme / self.name


def _fail(path: Path, message: str):
    raise TrainError(f"experiment file {path}: {message}")


def _table(path: Path, data: dict, key: str) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        _fail(path, f"[{key}] must be a table, got {value!r}")
    return value


def _names(path: Path, where: str, value, allowed: Sequence[str] | None = None) -> list:
    if not isinstance(value, list) or not value:
        _fail(path, f"{where} must be a non-empty list, got {value!r}")
    if allowed is not None:
        unknown = [v for v in value if v not in allowed]
        if unknown:
            _fail(path, f"{where}: unknown {', '.join(map(str, unknown))} (known: {', '.join(allowed)})")
    return list(value)


def _seeds(path: Path, where: str, value) -> list[int]:
    seeds = _names(path, where, value)
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds) or len(set(seeds)) != len(seeds):
        _fail(path, f"{where} must be distinct whole numbers >= 0, got {value!r}")
    return seeds


def _fit_options(path: Path, where: str, table: dict) -> dict:
    """Fit options of [train] or a recipe, keyed like FitConfig ('-' or '_' both accepted), checked by type."""
    out = {}
    defaults = FitConfig(dataset="", model="", out="")
    for key, value in table.items():
        name = key.replace("-", "_")
        if name in CALL_KEYS:
            _fail(path, f"{where}: {key} is set per call (`ecgtrain experiment --{name}`), not in the file")
        if name not in FIT_KEYS:
            _fail(path, f"{where}: unknown fit option {key!r} (known: {', '.join(k.replace('_', '-') for k in FIT_KEYS)})")
        default = getattr(defaults, name)
        kinds = (int, float) if isinstance(default, float) else (type(default),) if default is not None else (str,)
        if isinstance(value, bool) != isinstance(default, bool) or not isinstance(value, kinds):
            _fail(path, f"{where}: {key} must be {kinds[0].__name__}, got {value!r}")
        out[name] = value
    return out


def _build_options(path: Path, where: str, table: dict) -> dict:
    """`ecgrender build` options as given (checked by that command); paths relative to the file's folder."""
    out = {}
    for key, value in table.items():
        name = key.replace("_", "-")
        if name in ("out", "force", "manifest"):
            _fail(path, f"{where}: {key} is chosen by the experiment, not the file")
        if not isinstance(value, (str, int, float, bool, list)):
            _fail(path, f"{where}: {key} must be a string, number, true/false or list, got {value!r}")
        if name in ("source", "labels", "split-file") and isinstance(value, str) and not Path(value).is_absolute():
            candidate = path.parent / value
            value = os.path.normpath(candidate) if name != "split-file" or candidate.exists() else value  # split-file: or a shipped name
        out[name] = value
    return out


def load_experiment(path) -> Experiment:
    """Read and check an experiment file; TrainError naming the file and the key at fault."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TrainError(f"cannot read experiment file {path}: {exc.strerror}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise TrainError(f"experiment file {path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        _fail(path, f"unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_TOP_KEYS))})")
    build = _build_options(path, "[build]", _table(path, data, "build"))
    if "db" not in build:
        _fail(path, "[build] needs db (the database kind, as for `ecgrender build --db`)")
    schemes_table = _table(path, data, "schemes")
    if not schemes_table:
        _fail(path, "[schemes] needs at least one split scheme, e.g. window = { split-by = \"window\" }")
    schemes = {}
    for name, options in schemes_table.items():
        if not isinstance(options, dict) or not name.replace("-", "").replace("_", "").isalnum():
            _fail(path, f"[schemes] {name} must be a table of build options with a plain name")
        schemes[name] = build | _build_options(path, f"[schemes] {name}", options)
    train = dict(_table(path, data, "train"))
    models = _names(path, "[train] models", train.pop("models", None), model_names())
    seeds = _seeds(path, "[train] seeds", train.pop("seeds", [0]))
    reference = train.pop("reference", None)
    if reference is not None and reference not in models:
        _fail(path, f"[train] reference {reference!r} is not one of the models {', '.join(models)}")
    base = _fit_options(path, "[train]", train)
    recipes_table = _table(path, data, "recipes") or {DEFAULT_RECIPE: {}}
    recipes = []
    for name, table in recipes_table.items():
        if not isinstance(table, dict) or not name.replace("-", "").replace("_", "").isalnum():
            _fail(path, f"[recipes.{name}] must be a table of fit options with a plain name")
        table = dict(table)
        r_models = _names(path, f"[recipes.{name}] models", table.pop("models", models), model_names())
        r_seeds = _seeds(path, f"[recipes.{name}] seeds", table.pop("seeds", seeds))
        recipes.append(Recipe(name, base | _fit_options(path, f"[recipes.{name}]", table), r_models, r_seeds))
    paper = _table(path, data, "paper")
    for metric, values in paper.items():
        if not isinstance(values, dict) or not all(isinstance(v, (int, float)) for v in values.values()):
            _fail(path, f"[paper.{metric}] must map model names to published values")
    return Experiment(path, str(data.get("name", path.stem)), str(data.get("description", "")), build, schemes,
                      recipes, reference, paper)


def plan_runs(exp: Experiment, schemes: list[str] | None = None, models: list[str] | None = None,
              recipes: list[str] | None = None, seeds: list[int] | None = None) -> list[PlannedRun]:
    """Every run of the experiment, optionally only those of the given schemes/models/recipes/seeds."""
    for what, chosen, known in (("scheme", schemes, list(exp.schemes)), ("model", models, exp.models),
                                ("recipe", recipes, [r.name for r in exp.recipes])):
        unknown = [c for c in chosen or [] if c not in known]
        if unknown:
            raise TrainError(f"--{what}s: {', '.join(unknown)} not in {exp.path} (it has {', '.join(known)})")
    return [PlannedRun(scheme, model, recipe.name, seed, dict(recipe.options))
            for scheme in exp.schemes if not schemes or scheme in schemes
            for recipe in exp.recipes if not recipes or recipe.name in recipes
            for model in recipe.models if not models or model in models
            for seed in recipe.seeds if seeds is None or seed in seeds]


def build_command(options: dict, out: Path, jobs: int | None) -> list[str]:
    """The `ecgrender build` arguments (after `ecgrender`) of one scheme's dataset."""
    cmd = ["build", "--out", str(out)]
    for name, value in options.items():
        if isinstance(value, bool):
            cmd += [f"--{name}"] if value else []
        else:
            cmd += [f"--{name}", ",".join(map(str, value)) if isinstance(value, list) else str(value)]
    return cmd + (["--jobs", str(jobs)] if jobs is not None else [])


def fit_command(run: PlannedRun, out: Path) -> str:
    """The `ecgtrain fit` command that trains `run` by hand (shown by --dry-run and in the results)."""
    defaults = FitConfig(dataset="", model="", out="")
    opts = []
    for name, value in run.config.items():
        flag = name.replace("_", "-")
        if value == getattr(defaults, name):
            continue
        if isinstance(value, bool):
            opts.append(f"--{flag}" if value else f"--no-{flag}")  # --precise-bn, --no-amp, --no-channels-last
        else:
            opts.append(f"--{flag} {shlex.quote(str(value))}")
    return shlex.join(["ecgtrain", "fit", str(out / DATASETS / run.scheme), "--model", run.model, "--seed",
                       str(run.seed), "--out", str(run.directory(out))]) + "".join(f" {o}" for o in opts)


def dataset_complete(dataset: Path) -> bool:
    return (dataset / layout.CARD).is_file()


def run_finished(run: PlannedRun, out: Path) -> bool:
    """True when the run's report exists; TrainError when its settings are not the planned ones."""
    directory = run.directory(out)
    args_path = directory / "args.json"
    if not args_path.is_file():
        return False
    try:
        args = json.loads(args_path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise TrainError(f"{args_path} is damaged: delete {directory} to train that run again") from None
    for name, value in [("model", run.model), ("seed", run.seed), *run.config.items()]:
        stored = args.get(name, getattr(FitConfig, name, None))
        if name == "weights" and value is None:
            continue  # the model's default, resolved when the run started
        if name == "epochs" and isinstance(stored, int) and stored < value:
            return False  # more epochs than before: `fit --resume` continues the run
        if stored != value:
            raise TrainError(f"{directory} was trained with {name} {stored!r}, the experiment now says {value!r}: "
                             f"delete that run or use another --out")
    return (directory / "report.json").is_file() and (directory / "predictions.csv").is_file()


def build_datasets(exp: Experiment, out: Path, schemes: list[str], jobs: int | None, echo) -> None:
    """Build each scheme's dataset with `ecgrender build` (it resumes an unfinished one); the first multi-label one
    stops the experiment (its tables are single-label)."""
    for scheme in schemes:
        dataset = out / DATASETS / scheme
        if dataset_complete(dataset):
            echo(f"dataset {scheme}: complete ({dataset})")
        else:
            cmd = build_command(exp.schemes[scheme], dataset, jobs)
            echo(f"dataset {scheme}: {shlex.join(['ecgrender', *cmd])}")
            rc = subprocess.run([sys.executable, "-m", "ecgrender.cli", *cmd], check=False).returncode
            if rc != 0:
                raise TrainError(f"building the {scheme} dataset failed (`ecgrender build` exit {rc}, its error is "
                                 f"above): fix the [build]/[schemes] options in {exp.path} and run again")
        if is_multi_label(read_card(dataset)):
            raise TrainError(f"dataset {scheme} of {exp.path} is multi-label: experiments tabulate the paper's "
                             "single-label accuracies; train multi-label datasets with `ecgtrain fit` and compare the "
                             "runs with `ecgtrain compare` (macro AUROC)")


def train_runs(runs: list[PlannedRun], out: Path, call: dict, echo) -> None:
    """Train (or resume) every run that has no report yet."""
    from .engine import fit

    for i, run in enumerate(runs, 1):
        directory = run.directory(out)
        if run_finished(run, out):
            echo(f"[{i}/{len(runs)}] {run.scheme}/{run.name}: finished")
            continue
        resume = (directory / "checkpoint.pt").is_file()
        echo(f"[{i}/{len(runs)}] {run.scheme}/{run.name}: {'resuming' if resume else 'training'}")
        cfg = FitConfig(dataset=str((out / DATASETS / run.scheme).resolve()), model=run.model, out=str(directory),
                        seed=run.seed, resume=resume, **run.config, **call)
        fit(cfg)
