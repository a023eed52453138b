"""shards.refecg: refecg.h5 round trip, plain h5py layout, determinism, nothing left after a failure."""

import time

import h5py
import numpy as np
import pytest

from shards.errors import DatasetError
from shards.refecg import RefEcgWriter, read_refecg

LENGTH = 25
COUNTS = {"train": 5, "val": 2, "test": 0}


def windows(split, n):
    rng = np.random.default_rng(len(split))
    x = rng.standard_normal((n, LENGTH)).astype(np.float32)
    return x, [i % 3 for i in range(n)], [f"{split}-r_{i:09d}" for i in range(n)]


def write(path, order=None):
    with RefEcgWriter(path, COUNTS, LENGTH) as h5:
        for split, n in COUNTS.items():
            x, y, keys = windows(split, n)
            for i in order(n) if order else range(n):
                h5.put(split, i, x[i], y[i], keys[i])


def test_plain_h5py_reads_every_split_in_order(tmp_path):
    write(tmp_path / "refecg.h5")
    with h5py.File(tmp_path / "refecg.h5", "r") as f:
        assert sorted(f) == ["test", "train", "val"]
        for split, n in COUNTS.items():
            x, y, keys = windows(split, n)
            assert f[split]["x"].dtype == np.float32 and f[split]["x"].shape == (n, LENGTH)
            assert f[split]["y"].dtype == np.int64
            assert h5py.check_string_dtype(f[split]["key"].dtype).encoding == "utf-8"
            np.testing.assert_array_equal(f[split]["x"][...], x.reshape(n, LENGTH))
            assert f[split]["y"][...].tolist() == y
            assert list(f[split]["key"].asstr()[...]) == keys


def test_read_refecg_round_trip(tmp_path):
    write(tmp_path / "refecg.h5")
    x, y, keys = read_refecg(tmp_path / "refecg.h5", "train")
    ex, ey, ekeys = windows("train", 5)
    np.testing.assert_array_equal(x, ex)
    assert y.dtype == np.int64 and y.tolist() == ey and keys == ekeys
    x, y, keys = read_refecg(tmp_path / "refecg.h5", "test")
    assert x.shape == (0, LENGTH) and y.shape == (0,) and keys == []


def test_content_does_not_depend_on_put_order_or_time(tmp_path):
    write(tmp_path / "a.h5")
    time.sleep(1.1)  # HDF5 object times have 1 s resolution
    write(tmp_path / "b.h5", order=lambda n: reversed(range(n)))
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_batch_put_equals_single_puts(tmp_path):
    write(tmp_path / "a.h5")
    with RefEcgWriter(tmp_path / "b.h5", COUNTS, LENGTH) as h5:
        for split, n in COUNTS.items():
            x, y, keys = windows(split, n)
            h5.put_batch(split, 0, x, y, keys)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_put_rows_in_any_order_equals_single_puts(tmp_path):
    write(tmp_path / "a.h5")
    with RefEcgWriter(tmp_path / "b.h5", COUNTS, LENGTH) as h5:
        for split, n in COUNTS.items():
            x, y, keys = windows(split, n)
            for rows in (np.arange(n)[::-2], np.arange(n)[-2::-2]):  # two calls, rows descending
                h5.put_rows(split, rows, x[rows], [y[i] for i in rows], [keys[i] for i in rows])
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


def test_exception_inside_the_block_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError):
        with RefEcgWriter(tmp_path / "refecg.h5", COUNTS, LENGTH) as h5:
            h5.put("train", 0, np.zeros(LENGTH, np.float32), 0, "k")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_unfilled_rows_fail_and_leave_no_file(tmp_path):
    with pytest.raises(DatasetError, match="never written"):
        with RefEcgWriter(tmp_path / "refecg.h5", COUNTS, LENGTH) as h5:
            h5.put("train", 0, np.zeros(LENGTH, np.float32), 0, "k")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "put, message",
    [
        (lambda h5: h5.put("train", 5, np.zeros(LENGTH, np.float32), 0, "k"), "outside train"),
        (lambda h5: h5.put("train", 0, np.zeros(LENGTH + 1, np.float32), 0, "k"), "window length"),
        (lambda h5: h5.put("dev", 0, np.zeros(LENGTH, np.float32), 0, "k"), "unknown split"),
        (lambda h5: h5.put_rows("train", [1, 1], np.zeros((2, LENGTH), np.float32), [0, 0], ["a", "b"]), "twice"),
    ],
)
def test_bad_puts_raise_dataset_error(tmp_path, put, message):
    with pytest.raises(DatasetError, match=message):
        with RefEcgWriter(tmp_path / "refecg.h5", COUNTS, LENGTH) as h5:
            put(h5)
    assert list(tmp_path.iterdir()) == []


def test_reading_a_missing_or_foreign_file_raises_dataset_error(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_refecg(tmp_path / "refecg.h5", "train")
    (tmp_path / "refecg.h5").write_bytes(b"not hdf5")
    with pytest.raises(DatasetError, match="cannot read"):
        read_refecg(tmp_path / "refecg.h5", "train")
