"""A header that does not describe its signal files stops the build: a signal file of another size than
the header implies (wrong format code or length), or values no ECG has (wrong gain). Every real record
passes both checks with margin."""

from __future__ import annotations

import numpy as np
import pytest
import synth
import wfdb
from buildutil import ecgrender

from ecgrender.sources import demo_dir, open_source
from ecgrender.sources.wfdbfiles import MAX_SPREAD_MV, SPREAD_PERCENTILE, expected_dat_bytes, lead_spread

RECORDS = {"100": [("N", 30)], "119": synth.MITDB_RECORDS["119"]}


@pytest.fixture
def source(tmp_path):
    return synth.write_mitdb(tmp_path / "src", records=RECORDS)


def _edit_header(source, old, new):
    hea = source / "100.hea"
    text = hea.read_text()
    assert old in text
    hea.write_text(text.replace(old, new))


def _build_fails(source, tmp_path, *expected):
    result = ecgrender("build", "--db", "mitdb", "--source", source, "--per-class", "2", "--jobs", "1",
                       "--allow-missing-classes", "--out", tmp_path / "o")
    assert result.exit_code == 2, result.output
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error:") and all(e in message for e in expected), message
    assert not (tmp_path / "o" / "dataset.json").exists()
    return message


def test_wrong_format_code_is_refused(source, tmp_path):
    _edit_header(source, " 212 ", " 80 ")
    _build_fails(source, tmp_path, "100.dat", "32400 bytes", "21600", "format or length is wrong")


def test_wrong_length_is_refused(source, tmp_path):
    _edit_header(source, "100 2 360 10800", "100 2 360 10000")
    _build_fails(source, tmp_path, "100.dat", "32400 bytes", "30000", "format or length is wrong")


def test_gain_divided_by_100_is_refused(source, tmp_path):
    _edit_header(source, "200.0(1024)/mV", "2.0(1024)/mV")
    _build_fails(source, tmp_path, "lead MLII", "gain", "100.hea")


@pytest.mark.parametrize("fmt", ["16", "24", "32", "80", "212"])
def test_expected_sizes_match_what_wfdb_writes(fmt, tmp_path):
    for n, n_sig in ((999, 1), (1000, 2), (1001, 3)):
        d = np.random.default_rng(0).integers(-100, 100, (n, n_sig)).astype(np.int32)
        wfdb.wrsamp("r", fs=100, units=["mV"] * n_sig, sig_name=[f"s{i}" for i in range(n_sig)], d_signal=d,
                    fmt=[fmt] * n_sig, adc_gain=[100.0] * n_sig, baseline=[0] * n_sig, write_dir=str(tmp_path))
        size = (tmp_path / "r.dat").stat().st_size
        assert expected_dat_bytes(fmt, n * n_sig) == (size, size)


def test_expected_sizes_of_formats_wfdb_only_reads():
    assert expected_dat_bytes("8", 10) == (10, 10) and expected_dat_bytes("61", 10) == (20, 20)
    assert expected_dat_bytes("160", 10, byte_offset=4) == (24, 24)
    assert expected_dat_bytes("310", 3) == (4, 4) and expected_dat_bytes("311", 4) == (6, 8)
    assert expected_dat_bytes("516", 10) is None  # compressed: size not implied


def _spread(signal):
    return np.nanpercentile(np.abs(signal - np.nanmedian(signal, axis=0)), 99.9, axis=0)


def _passes_with_margin(source):
    source.scan()  # reads every header, checking the size of every signal file
    for name in source.records:
        spread = _spread(source.read_signal(name))  # the plausibility rule passes ...
        assert spread.max() <= MAX_SPREAD_MV / 4, (name, spread)  # ... with a margin of 4


def test_every_demo_record_passes_both_checks_with_margin():
    _passes_with_margin(open_source("demo", None))
    _passes_with_margin(open_source("ptbdb", demo_dir() / "ptbdb"))


@pytest.mark.parametrize("db", ["mitdb", "ptbdb"])
def test_every_real_record_passes_both_checks_with_margin(db, shared_data):
    _passes_with_margin(open_source(db, shared_data / db))


@pytest.mark.parametrize("nan", [False, True])
def test_lead_spread_decides_like_the_full_percentile_at_the_limit(nan):
    rng = np.random.default_rng(3)
    lead = rng.standard_normal(20_000).astype(np.float32)
    if nan:
        lead[100:900] = np.nan
    full = np.nanpercentile(np.abs(lead - np.nanmedian(lead)), SPREAD_PERCENTILE)
    for factor in (0.5, 0.99, 0.999999, 1.0, 1.000001, 1.01, 3.0):
        scaled = lead * np.float32(MAX_SPREAD_MV / full * factor)
        exact = np.nanpercentile(np.abs(scaled - np.nanmedian(scaled)), SPREAD_PERCENTILE)
        got = lead_spread(scaled)
        assert (got is not None and got > MAX_SPREAD_MV) == (exact > MAX_SPREAD_MV), factor
        assert got is None or got == exact
    assert lead_spread(np.full(10, np.nan, np.float32)) is None
