"""What a build's dataset card says about its origin: the source database's licence, DOI, URL and citation,
the command that rebuilds it, and the optional description and creators; `ecgrender info` shows them."""

from __future__ import annotations

import json
import shlex

import pytest
from buildutil import ecgrender, tree_bytes

from ecgrender.sources import database_names
from ecgrender.sources.registry import provenance

OPTIONS = ["--db", "demo", "--per-class", "4", "--split-by", "window", "--window", "720", "--seed", "2"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("card") / "ds"
    result = ecgrender("build", *OPTIONS, "--jobs", "1", "--out", out, "--description", "Four windows per class.",
                       "--creator", "Ada Lovelace", "--creator", "Alan Turing")
    assert result.exit_code == 0, result.output
    return out


def test_card_records_the_source_databases_licence_doi_and_citation(built):
    card = json.loads((built / "dataset.json").read_text())
    assert card["format_version"] == 2
    source = card["source"]
    assert source["licence"] == "ODC-By-1.0"
    assert source["doi"] == "10.13026/C2F305" and source["url"] == "https://physionet.org/content/mitdb/1.0.0/"
    assert source["citation"].startswith("@article{moody2001mitbih,") and "goldberger2000physionet" in source["citation"]


@pytest.mark.parametrize("db", database_names())
def test_every_database_has_a_licence_a_url_and_a_citation(db):
    found = provenance(db)
    assert found["licence"] in ("ODC-By-1.0", "CC-BY-4.0") and found["url"].startswith("https://physionet.org/")
    assert found["doi"].startswith("10.13026/") and found["citation"].count("@") >= 2  # its own entry and PhysioNet's


def test_card_holds_description_creators_and_the_command_that_rebuilds_it(built, tmp_path):
    card = json.loads((built / "dataset.json").read_text())
    assert card["description"] == "Four windows per class." and card["creators"] == ["Ada Lovelace", "Alan Turing"]
    command = shlex.split(card["command"])
    assert command[:2] == ["ecgrender", "build"] and command[-2:] == ["--out", "OUT"]
    assert "--jobs" not in command and "--description" not in command
    again = tmp_path / "again"
    result = ecgrender(*command[1:-1], again, "--jobs", "2",
                       "--description", "Four windows per class.", "--creator", "Ada Lovelace", "--creator", "Alan Turing")
    assert result.exit_code == 0, result.output
    assert tree_bytes(again) == tree_bytes(built)


def test_ptbxl_card_names_its_licence_and_options(synth_ptbxl, tmp_path):
    out = tmp_path / "ptbxl"
    result = ecgrender("build", "--db", "ptbxl", "--source", synth_ptbxl, "--split-by", "fold", "--folds-test", "10,1",
                       "--allow-missing-classes", "--jobs", "1", "--out", out)
    assert result.exit_code == 0, result.output
    card = json.loads((out / "dataset.json").read_text())
    assert card["source"]["licence"] == "CC-BY-4.0" and card["source"]["doi"] == "10.13026/kfzx-aw45"
    assert "wagner2020ptbxl" in card["source"]["citation"]
    assert card["format_version"] == 3  # multi-label; the demo's single-label card stays version 2
    assert card["command"] == ("ecgrender build --db ptbxl --source SOURCE --split-by fold --allow-missing-classes "
                               "--folds-test 10,1 --out OUT")


def test_info_prints_licence_and_citation(built):
    result = ecgrender("info", built)
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert "licence      ODC-By-1.0 (https://physionet.org/content/mitdb/1.0.0/, 10.13026/C2F305)" in lines
    assert "cite the source database (BibTeX):" in lines and "  @article{moody2001mitbih," in lines
    assert any(line.startswith("command      ecgrender build --db demo") for line in lines)
