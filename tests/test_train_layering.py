"""ecgtrain's structure: one registry of models, ecgrender used through its package's doors only (record_inputs,
lead_columns, noise_names, NSTDB_RECORDS), no engine <-> report cycle."""

import ast
from pathlib import Path

from ecgtrain.models import model_names

PACKAGE = Path(__file__).resolve().parents[1] / "ecgtrain"


def _trees():
    return {path.relative_to(PACKAGE).as_posix(): ast.parse(path.read_text()) for path in PACKAGE.rglob("*.py")}


def _imports(tree):
    """(module, names) of every import statement, with `from .x` written as `.x`."""
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            yield "." * node.level + (node.module or ""), [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []


def test_ecgtrain_uses_ecgrender_through_its_package_doors_only():
    found = sorted((path, module, names) for path, tree in _trees().items() for module, names in _imports(tree)
                   if module.split(".")[0] == "ecgrender")
    assert found == [("cli.py", "ecgrender", ["noise_names"]),
                     ("explain.py", "ecgrender", ["lead_columns", "record_inputs"]),
                     ("predict.py", "ecgrender", ["record_inputs"]),
                     ("robustness.py", "ecgrender", ["NSTDB_RECORDS", "noise_names"])]


def test_model_names_are_written_only_in_their_own_module():
    own = {}
    for path, tree in _trees().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in model_names():
                own.setdefault(node.value, set()).add(path)
    assert all(len(paths) == 1 and next(iter(paths)).startswith("models/") for paths in own.values()), own


def test_inference_and_report_do_not_import_the_engine():
    trees = _trees()
    below = {"inference.py": {".engine", ".report", ".cli"}, "rundir.py": {".engine", ".report", ".cli", ".inference"},
             "report.py": {".engine", ".cli"}, "predict.py": {".engine", ".cli"}}
    for path, forbidden in below.items():
        assert not {module for module, _ in _imports(trees[path])} & forbidden, path
    engine_imports = [node for node in ast.walk(trees["engine.py"]) if isinstance(node, ast.FunctionDef)
                      for inner in ast.walk(node) if isinstance(inner, (ast.Import, ast.ImportFrom))]
    assert not engine_imports, "engine.py imports inside a function"
