"""`fetch_database` against a local HTTP server holding a small PhysioNet-shaped tree (PhysioNet
itself is not reachable here), and a closed port giving a clear error."""

from __future__ import annotations

import socket
import time

import pytest
import synth
from http_mirror import serve

from ecgrender.errors import EcgError
from ecgrender.fetch import fetch_database
from ecgrender.sources import open_source

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """(base URL, served root): mitdb/1.0.0 with ANNOTATORS, ptbdb/1.0.0 without (as on PhysioNet)."""
    root = tmp_path_factory.mktemp("physionet")
    synth.write_mitdb(root / "mitdb" / "1.0.0", records={k: synth.MITDB_RECORDS[k] for k in ("100", "201", "202")})
    (root / "mitdb" / "1.0.0" / "ANNOTATORS").write_text("atr\treference beat, rhythm, and signal quality\n")
    synth.write_ptbdb(root / "ptbdb" / "1.0.0", records=dict(list(synth.PTBDB_RECORDS.items())[:3]), seconds=2)
    with serve(root) as url:
        yield url, root


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_fetch_mitdb_gives_a_usable_source(mirror, tmp_path):
    url, served = mirror
    dest = fetch_database("mitdb", tmp_path / "mitdb", base_url=url, progress=False)
    got = _files(dest)
    assert set(got) == {"RECORDS"} | {f"{r}.{e}" for r in ("100", "201", "202") for e in ("hea", "dat", "atr")}
    assert all(got[name] == (served / "mitdb" / "1.0.0" / name).read_bytes() for name in got)
    expected = open_source("mitdb", served / "mitdb" / "1.0.0").scan()
    assert open_source("mitdb", dest).scan() == expected


def test_fetch_ptbdb_subset_with_xyz_files(mirror, tmp_path):
    url, _ = mirror
    dest = fetch_database("ptbdb", tmp_path / "ptb", records=["patient002/s0015lre"], base_url=url, progress=False)
    assert sorted(p for p in _files(dest)) == ["RECORDS", "patient002/s0015lre.dat", "patient002/s0015lre.hea",
                                               "patient002/s0015lre.xyz"]
    (rec,) = open_source("ptbdb", dest).scan().records
    assert len(rec.leads) == 15 and rec.patient == "patient002"


def test_unknown_record_and_database(mirror, tmp_path):
    url, _ = mirror
    with pytest.raises(EcgError, match="'999'"):
        fetch_database("mitdb", tmp_path / "x", records=["999"], base_url=url, progress=False)
    with pytest.raises(EcgError, match="'afdb'"):
        fetch_database("afdb", tmp_path / "x", base_url=url)


def test_unreachable_server_is_a_clear_error(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(EcgError) as err:
        fetch_database("incartdb", tmp_path / "incart", base_url=f"http://127.0.0.1:{port}/", progress=False)
    message = str(err.value)
    assert f"http://127.0.0.1:{port}/incartdb/1.0.0/" in message and "incartdb" in message
    assert "local copy" in message and "\n" not in message
    assert time.monotonic() - started < 60


def test_cli_fetch_then_build_from_the_download(mirror, tmp_path):
    from buildutil import ecgrender

    url, _ = mirror
    result = ecgrender("fetch", "mitdb", "--dest", tmp_path / "mitdb", "--records", "201,202", "--mirror", url)
    assert result.exit_code == 0, result.output
    result = ecgrender("build", "--db", "mitdb", "--source", tmp_path / "mitdb", "--per-class", "4",
                       "--jobs", "1", "--split-by", "window", "--allow-missing-classes", "--out", tmp_path / "dataset")
    assert result.exit_code == 0, result.output
    assert ecgrender("verify", tmp_path / "dataset").exit_code == 0


def test_cli_fetch_from_an_unreachable_mirror_is_one_line(tmp_path):
    from buildutil import ecgrender

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = ecgrender("fetch", "ptbdb", "--dest", tmp_path / "p", "--mirror", f"http://127.0.0.1:{port}/")
    assert result.exit_code == 2
    assert result.stderr.startswith("error:") and result.stderr.count("\n") == 1
