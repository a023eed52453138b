"""`ecgrender verify` catches an edited dataset.json: by its self-checksum, and where the editor recomputed
that too, by re-deriving the field from the data (manifest rows, leads, PNG sizes)."""

import pytest
from click.testing import CliRunner
from shards_helpers import IMAGE_SHAPE, edit_card, make_dataset

from ecgrender.cli import main

EDITS = {
    "window.fs": (lambda c: c["window"].update(fs=250.0), "fs 360.0 Hz, dataset.json's window.fs says 250.0"),
    "n_leads": (lambda c: c.update(n_leads=3), "n_leads is 3 but leads names 2"),
    "total": (lambda c: c.update(total=c["total"] + 1), "total is 13, manifest.csv has 12 rows"),
    "render.out_h": (
        lambda c: c["render"].update(out_h=IMAGE_SHAPE[0] + 1),
        f"is {IMAGE_SHAPE[1]}x{IMAGE_SHAPE[0]} px (w x h), dataset.json's render says {IMAGE_SHAPE[1]}x{IMAGE_SHAPE[0] + 1}",
    ),
}


def verify(root):
    return CliRunner().invoke(main, ["verify", str(root)])


@pytest.fixture
def dataset(tmp_path):
    make_dataset(tmp_path / "ds")
    return tmp_path / "ds"


def test_untouched_dataset_verifies(dataset):
    result = verify(dataset)
    assert result.exit_code == 0 and f"{dataset}: OK" in result.output, result.output


@pytest.mark.parametrize("field", EDITS)
def test_edit_with_recomputed_self_checksum_is_caught_by_re_derivation(dataset, field):
    change, message = EDITS[field]
    edit_card(dataset, change, resign=True)
    result = verify(dataset)
    assert result.exit_code == 1 and message in result.output, result.output
    assert "edited after it was written" not in result.output


@pytest.mark.parametrize("field", EDITS)
def test_edit_without_recomputed_self_checksum_is_caught_by_it(dataset, field):
    change, _ = EDITS[field]
    edit_card(dataset, change, resign=False)
    result = verify(dataset)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: dataset.json was edited after it was written: "), result.output
