"""Extension points are registries: the CLIs offer exactly what is registered, and lookups fail clearly."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ecgrender.cli import main as ecgrender_main
from ecgrender.errors import EcgError
from ecgrender.render import make_renderer, renderer_names
from ecgrender.sources import database_names, database_spec, open_source


def _choices(command: list[str], option: str) -> set[str]:
    """The values click offers for `option` of an ecgrender command."""
    ctx = ecgrender_main.make_context("ecgrender", list(command), resilient_parsing=True)
    sub = ecgrender_main.get_command(ctx, command[0])
    param = next(p for p in sub.params if p.name == option)
    return set(param.type.choices)


def test_build_offers_every_registered_database_and_renderer():
    assert _choices(["build"], "db") == set(database_names())
    assert _choices(["build"], "renderer") == set(renderer_names())
    assert {"mitdb", "ptbdb", "incartdb", "demo"} <= set(database_names())
    assert {"fast", "matplotlib"} <= set(renderer_names())


def test_fetch_offers_only_databases_that_can_be_downloaded():
    fetchable = _choices(["fetch"], "db")
    assert fetchable == set(database_names(fetchable=True))
    assert "demo" not in fetchable and all(database_spec(db).fetchable for db in fetchable)
    result = CliRunner().invoke(ecgrender_main, ["fetch", "demo", "--dest", "x"])
    assert result.exit_code == 2 and "'demo' is not one of" in result.output


def test_every_database_spec_is_complete():
    for name in database_names():
        spec = database_spec(name)
        assert spec.name == name and spec.title and spec.version and spec.default_classes
        assert spec.source.database == name and spec.source.version == spec.version


def test_unknown_names_are_one_line_errors():
    with pytest.raises(EcgError, match="unknown database 'afdb': choose one of .*mitdb"):
        database_spec("afdb")
    with pytest.raises(EcgError, match="unknown database 'afdb'"):
        open_source("afdb", ".")
    with pytest.raises(EcgError, match="unknown renderer 'svg': choose one of .*fast"):
        make_renderer("svg")
    with pytest.raises(EcgError, match="--db mitdb needs --source DIR"):
        open_source("mitdb", None)
