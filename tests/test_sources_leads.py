"""Every record of a database is stored in its canonical lead order (mitdb: MLII first); a record that
lacks a canonical lead is left out with the reason; predict reads new records in the same order."""

from __future__ import annotations

import json

import numpy as np
import pytest
import synth
import wfdb
from buildutil import ecgrender

import ecgrender as ecgrender_api
from ecgrender.sources import open_source


def _rewrite_with_leads(root, name, order, names):
    """Rewrite record `name` of a synthetic mitdb folder with its columns in `order` named `names`."""
    record = wfdb.rdrecord(str(root / name), physical=False)
    wfdb.wrsamp(name, fs=record.fs, units=["mV", "mV"], sig_name=names, d_signal=record.d_signal[:, order],
                fmt=["212", "212"], adc_gain=[record.adc_gain[i] for i in order],
                baseline=[record.baseline[i] for i in order], write_dir=str(root))


@pytest.fixture
def mitdb(tmp_path):
    """Synthetic mitdb: 100 as usual (MLII, V1), 119 stored like real 114 (V5 first), 106 without MLII."""
    root = synth.write_mitdb(tmp_path / "mitdb", records={k: synth.MITDB_RECORDS[k] for k in ("100", "106", "119")})
    _rewrite_with_leads(root, "119", [1, 0], ["V5", "MLII"])
    _rewrite_with_leads(root, "106", [1, 0], ["V5", "V2"])
    return root


def test_a_record_stored_the_other_way_round_is_read_mlii_first(mitdb):
    source = open_source("mitdb", mitdb)
    scan = source.scan()
    leads = {r.name: r.leads for r in scan.records}
    assert leads == {"100": ["MLII", "V1"], "119": ["MLII", "V5"]}
    stored = wfdb.rdrecord(str(mitdb / "119")).p_signal
    np.testing.assert_array_equal(source.read_signal("119"), stored[:, [1, 0]].astype(np.float32))
    assert dict(scan.excluded)["106"].startswith("lacks the MLII lead that leads every mitdb record (has V5, V2)")


def test_the_build_and_its_card_put_mlii_first(mitdb, tmp_path):
    out = tmp_path / "d"
    result = ecgrender("build", "--db", "mitdb", "--source", mitdb, "--per-class", "4", "--split-by", "window",
                       "--allow-missing-classes", "--jobs", "1", "--out", out)
    assert result.exit_code == 0, result.output
    assert "left out 106: lacks the MLII lead" in result.output
    card = json.loads((out / "dataset.json").read_text())
    assert card["leads"][0] == "MLII" and set(card["leads"][1].split("/")) == {"V1", "V5"}


def test_predict_inputs_follow_the_canonical_order(mitdb, tmp_path):
    card = {"source": {"database": "mitdb"}, "leads": ["MLII", "V1/V5"], "n_leads": 2,
            "window": {"length": 1000, "fs": 360.0}}
    sums = ecgrender_api.record_inputs(mitdb / "119", card, max_windows=3, images=False)
    stored = wfdb.rdrecord(str(mitdb / "119")).p_signal
    np.testing.assert_allclose(sums.x[0], stored[:1000].sum(axis=1), rtol=1e-5, atol=1e-5)
    with pytest.raises(Exception, match="lacks the MLII lead every mitdb record starts with"):
        ecgrender_api.record_inputs(mitdb / "106", card, max_windows=3, images=False)


def test_real_record_114_is_read_mlii_first(shared_data):
    source = open_source("mitdb", shared_data / "mitdb", records=["114", "101"])
    leads = {r.name: r.leads for r in source.scan().records}
    assert leads["114"][0] == "MLII" and leads["101"][0] == "MLII"
    stored = wfdb.rdrecord(str(shared_data / "mitdb" / "114"), sampto=5000)
    assert stored.sig_name[0] != "MLII"  # PhysioNet stores V5 first in 114
    mlii = stored.sig_name.index("MLII")
    np.testing.assert_array_equal(source.read_signal("114")[:5000, 0], stored.p_signal[:, mlii].astype(np.float32))
