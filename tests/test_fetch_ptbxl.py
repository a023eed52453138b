"""`ecgrender fetch ptbxl --fs` against a local HTTP server holding a small PTB-XL 1.0.3 tree laid out like
https://physionet.org/files/ptb-xl/1.0.3/ (both CSV tables, records100/ and records500/, a RECORDS file
listing both rates): only the chosen rate comes down, next to the tables, and the download reads back as
the served folder does."""

from __future__ import annotations

import shutil

import pytest
import synth
from buildutil import ecgrender, error_lines, tree_bytes
from http_mirror import serve

from ecgrender.errors import EcgError
from ecgrender.fetch import fetch_database
from ecgrender.sources import open_source

pytestmark = pytest.mark.timeout(120)

RECORDS = {k: synth.PTBXL_RECORDS[k] for k in (1, 8, 45)}  # NORM; MI; CD and HYP
TABLES = {"ptbxl_database.csv", "scp_statements.csv"}
PN_DIR = "ptb-xl/1.0.3"


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """(base URL, served PTB-XL folder, base URL of a mirror whose PTB-XL lacks scp_statements.csv)."""
    root = tmp_path_factory.mktemp("physionet")
    served = synth.write_ptbxl(root / "good" / PN_DIR, records=RECORDS)
    shutil.copytree(served, root / "broken" / PN_DIR)
    (root / "broken" / PN_DIR / "scp_statements.csv").unlink()
    with serve(root) as base:
        yield base + "good/", served, base + "broken/"


def _records(fs):
    return [synth.ptbxl_record_path(ecg_id, fs) for ecg_id in RECORDS]


def _record_files(fs):
    return {f"{r}.{ext}" for r in _records(fs) for ext in ("hea", "dat")}


def test_served_tree_lists_both_rates(mirror):
    _, served, _ = mirror
    listed = (served / "RECORDS").read_text().split()
    assert set(listed) == set(_records(100)) | set(_records(500))


@pytest.mark.parametrize("fs", [100, 500])
def test_fetch_gives_the_tables_and_the_records_of_one_rate(mirror, tmp_path, fs):
    url, served, _ = mirror
    dest = fetch_database("ptbxl", tmp_path / "ptbxl", base_url=url, progress=False, fs=fs)
    got = tree_bytes(dest)
    assert set(got) == TABLES | _record_files(fs) | {"RECORDS"}
    assert all(got[name] == (served / name).read_bytes() for name in got if name != "RECORDS")
    assert (dest / "RECORDS").read_text().split() == _records(fs)
    assert open_source("ptbxl", dest, fs=fs).scan() == open_source("ptbxl", served, fs=fs).scan()
    assert open_source("ptbxl", dest, fs=fs, task="rhythm").scan() == open_source(
        "ptbxl", served, fs=fs, task="rhythm").scan()


def test_fetch_defaults_to_100_hz(mirror, tmp_path):
    url, _, _ = mirror
    dest = fetch_database("ptbxl", tmp_path / "ptbxl", base_url=url, progress=False)
    assert set(tree_bytes(dest)) == TABLES | _record_files(100) | {"RECORDS"}


def test_fetch_a_records_subset(mirror, tmp_path):
    url, served, _ = mirror
    subset = [synth.ptbxl_record_path(45, 100), synth.ptbxl_record_path(1, 100)]
    dest = fetch_database("ptbxl", tmp_path / "ptbxl", records=subset, base_url=url, progress=False, fs=100)
    assert set(tree_bytes(dest)) == TABLES | {f"{r}.{e}" for r in subset for e in ("hea", "dat")} | {"RECORDS"}
    assert (dest / "RECORDS").read_text().split() == subset
    assert open_source("ptbxl", dest, records=subset).scan() == open_source("ptbxl", served, records=subset).scan()
    whole = open_source("ptbxl", dest).scan().records  # its RECORDS file lists the subset: no --records needed
    assert sorted(whole, key=lambda r: r.name) == sorted(open_source("ptbxl", served, records=subset).scan().records,
                                                         key=lambda r: r.name)


def test_unknown_record_is_a_clear_error(mirror, tmp_path):
    url, _, _ = mirror
    with pytest.raises(EcgError, match=r"'records100/09999/09999_lr' is not in ptbxl at .*ptb-xl/1\.0\.3/.*"
                                       r"--records \(e\.g\. 'records100/00000/00001_lr'\)") as err:
        fetch_database("ptbxl", tmp_path / "x", records=["records100/09999/09999_lr"], base_url=url,
                       progress=False, fs=100)
    assert "\n" not in str(err.value)
    other_rate = synth.ptbxl_record_path(8, 500)
    with pytest.raises(EcgError, match=rf"'{other_rate}' is not among the ptbxl records of --fs 100.*--fs") as err:
        fetch_database("ptbxl", tmp_path / "x", records=[other_rate], base_url=url, progress=False, fs=100)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "x").exists()


def test_unsupported_rate_is_an_error(mirror, tmp_path):
    url, _, _ = mirror
    with pytest.raises(EcgError, match="--fs 250.*100 Hz and 500 Hz"):
        fetch_database("ptbxl", tmp_path / "x", base_url=url, progress=False, fs=250)
    assert not (tmp_path / "x").exists()


def test_fs_for_another_database_is_an_error(tmp_path):
    with pytest.raises(EcgError, match=r"^--fs applies to --db ptbxl, not to --db mitdb") as err:
        fetch_database("mitdb", tmp_path / "x", base_url="http://127.0.0.1:9/", progress=False, fs=100)
    assert "\n" not in str(err.value)


def test_missing_table_on_the_server_is_an_error_naming_it(mirror, tmp_path):
    _, _, broken = mirror
    with pytest.raises(EcgError, match=r"ptb-xl/1\.0\.3/scp_statements\.csv not found") as err:
        fetch_database("ptbxl", tmp_path / "x", base_url=broken, progress=False)
    assert "\n" not in str(err.value)


def test_cli_fetch_ptbxl(mirror, tmp_path):
    url, served, _ = mirror
    result = ecgrender("fetch", "ptbxl", "--dest", tmp_path / "ptbxl", "--mirror", url, "--fs", "100")
    assert result.exit_code == 0, result.output
    assert set(tree_bytes(tmp_path / "ptbxl")) == TABLES | _record_files(100) | {"RECORDS"}
    assert open_source("ptbxl", tmp_path / "ptbxl").scan() == open_source("ptbxl", served).scan()


@pytest.mark.parametrize("args, message", [
    (["ptbxl", "--fs", "250"], "--fs 250"),
    (["mitdb", "--fs", "100"], "--fs applies to --db ptbxl"),
    (["ptbxl", "--records", "records100/09999/09999_lr"], "'records100/09999/09999_lr' is not in ptbxl"),
])
def test_cli_fetch_ptbxl_errors_are_one_line(mirror, tmp_path, args, message):
    url, _, _ = mirror
    result = ecgrender("fetch", *args, "--dest", tmp_path / "x", "--mirror", url)
    assert result.exit_code == 2
    (line,) = error_lines(result.stderr)
    assert message in line and result.stderr.count("\n") == 1


def test_a_second_fetch_adds_to_records_so_both_rates_build(mirror, tmp_path):
    url, served, _ = mirror
    dest = tmp_path / "ptbxl"
    fetch_database("ptbxl", dest, records=[synth.ptbxl_record_path(1, 100)], base_url=url, progress=False, fs=100)
    fetch_database("ptbxl", dest, records=[synth.ptbxl_record_path(8, 500)], base_url=url, progress=False, fs=500)
    assert (dest / "RECORDS").read_text().split() == [synth.ptbxl_record_path(1, 100), synth.ptbxl_record_path(8, 500)]
    assert [r.name for r in open_source("ptbxl", dest, fs=100).scan().records] == [synth.ptbxl_record_path(1, 100)]
    assert [r.name for r in open_source("ptbxl", dest, fs=500).scan().records] == [synth.ptbxl_record_path(8, 500)]
