"""`ecgrender.record_inputs`: a new WFDB record -> the model inputs a dataset card describes."""

import json
import subprocess
import sys

import numpy as np
import pytest
from _train_data import SMALL, WINDOW, make_dataset, write_record

import ecgrender
from ecgrender.errors import EcgError


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    root = make_dataset(tmp_path_factory.mktemp("ri") / "ds", counts={"train": 2, "val": 2, "test": 2}, per_shard=2)
    return json.loads((root / "dataset.json").read_text())


@pytest.fixture(scope="module")
def record(tmp_path_factory):
    return write_record(tmp_path_factory.mktemp("rec"), seconds=10.0)


def test_images_and_lead_sums(card, record):
    images = ecgrender.record_inputs(record, card, max_windows=2, images=True)
    assert images.starts == [0, 2000]
    assert images.x.dtype == np.uint8 and images.x.shape == (2, SMALL.out_h, SMALL.out_w)
    sums = ecgrender.record_inputs(record, card, max_windows=60, images=False)
    assert sums.starts == [0, 1000, 2000] and sums.x.dtype == np.float32 and sums.x.shape == (3, WINDOW)
    import wfdb

    signal = wfdb.rdrecord(str(record)).p_signal
    np.testing.assert_allclose(sums.x[1], signal[1000:2000].sum(axis=1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("change,message", [
    ({"leads": ["I", "II", "III"], "n_leads": 3}, r"has leads \['MLII', 'V1'\], the dataset has 3"),
    ({"window": {"length": WINDOW, "fs": 500.0}}, "sampled at 360"),
    ({"window": {"length": 50_000, "fs": 360.0}}, "no complete 50000-sample window"),
])
def test_a_record_that_does_not_fit_the_card(card, record, change, message):
    with pytest.raises(EcgError, match=message):
        ecgrender.record_inputs(record, card | change, max_windows=4, images=False)


def test_a_missing_record_names_its_header(card, tmp_path):
    with pytest.raises(EcgError, match=r"header .*nothing\.hea not found"):
        ecgrender.record_inputs(tmp_path / "nothing", card, max_windows=4, images=True)


def test_importing_ecgrender_stays_light():
    code = "import sys, ecgrender; heavy = {'wfdb', 'matplotlib', 'numba', 'ecgrender.inputs'} & set(sys.modules); print(sorted(heavy))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr


def test_a_resampled_dataset_resamples_the_record_the_same_way(card, record):
    from ecgrender.sources.resample import resample_signal
    from ecgrender.sources.wfdbfiles import read_physical

    resampled = card | {"window": {"length": WINDOW, "fs": 180.0},
                        "source": card["source"] | {"resampled_to_hz": 180.0}}
    sums = ecgrender.record_inputs(record, resampled, max_windows=60, images=False)
    signal, _ = read_physical(record.parent, record.name)
    expected = resample_signal(signal, 360.0, 180.0)  # 3,000 samples at 360 Hz -> 1,500 at 180 Hz: one window
    assert sums.starts == [0] and expected.shape[0] == 1500
    np.testing.assert_allclose(sums.x[0], expected[:WINDOW].sum(axis=1), rtol=1e-5, atol=1e-5)
