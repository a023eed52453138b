"""A shard is data, never code: every reader decodes only .cls/.json/.png with explicit decoders and refuses
any other member, even when the card was rewritten to match the tampered shard."""

import io
import pickle
import re
import tarfile

import pytest
from _train_data import make_dataset as make_train_dataset
from click.testing import CliRunner
from PIL import Image
from shards_helpers import add_member, make_dataset, reseal_card

from ecgrender.cli import main
from ecgtrain.data import make_batches
from shards.errors import DatasetError
from shards.reader import decode_sample, iter_samples
from shards.verify import verify_dataset

SHARD = "images/train-000000.tar"


class Payload:
    """Unpickling it creates `marker` (what a real attack would replace with any code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant_pickle(root, shard, marker) -> str:
    """Add `{first key}.pyd` holding a Payload to `shard`, rewrite the card to match; returns the member name."""
    with tarfile.open(root / shard) as tar:
        key = tar.getnames()[0].split(".")[0]
    add_member(root / shard, f"{key}.pyd", pickle.dumps(Payload(marker)))
    reseal_card(root)
    return f"{key}.pyd"


@pytest.fixture
def tampered(tmp_path):
    root = tmp_path / "ds"
    make_dataset(root)
    marker = tmp_path / "pwned"
    member = plant_pickle(root, SHARD, marker)
    return root, marker, member


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


def test_preview_refuses_the_shard_and_runs_nothing(tampered, tmp_path):
    root, marker, member = tampered
    result = CliRunner().invoke(main, ["preview", str(root), "-o", str(tmp_path / "grid.png")])
    assert result.exit_code == 2, result.output
    line = one_error_line(result.output)
    assert SHARD in line and f"unexpected member {member!r}" in line
    assert not marker.exists() and not (tmp_path / "grid.png").exists()


def test_verify_reports_the_member_and_runs_nothing(tampered):
    root, marker, member = tampered
    result = CliRunner().invoke(main, ["verify", str(root)])
    assert result.exit_code == 1, result.output
    line = one_error_line(result.output)
    assert SHARD in line and f"unexpected member {member!r}" in line
    assert not marker.exists()


@pytest.mark.parametrize("workers", [0, 1])
def test_training_loader_refuses_the_shard_and_runs_nothing(tmp_path, workers):
    root = make_train_dataset(tmp_path / "ds", counts={"train": 8, "val": 2, "test": 2}, per_shard=4)
    marker = tmp_path / "pwned"
    member = plant_pickle(root, "images/train-000001.tar", marker)
    batches = make_batches(root, "train", "imresnet34", batch_size=4, workers=workers, train=True)
    with pytest.raises(DatasetError, match=rf"train-000001\.tar: unexpected member '{member}'") as info:
        list(batches)
    assert "\n" not in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "name, kind",
    [
        ("{key}.txt", tarfile.REGTYPE),  # another extension
        ("{key}.PNG", tarfile.REGTYPE),  # webdataset would lower-case it into a second .png
        ("{key}.png.gz", tarfile.REGTYPE),  # webdataset would gunzip it
        ("{key}.png", tarfile.SYMTYPE),  # not a regular file (webdataset skips these silently)
        ("dir", tarfile.DIRTYPE),
        ("__meta__", tarfile.REGTYPE),  # webdataset skips these silently
    ],
)
def test_any_other_member_is_refused_by_the_reader_and_verify(tmp_path, name, kind):
    root = tmp_path / "ds"
    rows = make_dataset(root)
    name = name.format(key=rows[0]["key"])
    add_member(root / SHARD, name, b"data" if kind == tarfile.REGTYPE else b"", kind)
    reseal_card(root)
    with pytest.raises(DatasetError, match=f"shard .*{SHARD}: unexpected member '{name}'"):
        list(iter_samples(root, "train"))
    assert any(f"unexpected member '{name}'" in p for p in verify_dataset(root))


def _png_bytes(mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (4, 3)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    "ext, data, message",
    [
        ("png", b"GIF89a" + bytes(40), "png is damaged (ValueError: not a PNG"),
        ("png", _png_bytes("RGB"), "png is damaged (ValueError: 8-bit RGB, not 8-bit grey (L))"),
        ("png", _png_bytes("I;16"), "png is damaged (ValueError: 16-bit grey, not 8-bit grey (L))"),
        ("png", _png_bytes("L")[:-20], "png is damaged (ValueError: PNG chunk b'IDAT'"),
        ("cls", b"one", "cls is damaged (ValueError"),
        ("json", b"[1, 2]", "json is damaged (ValueError: a JSON list, not an object)"),
    ],
)
def test_decode_sample_uses_only_the_formats_decoders(ext, data, message):
    raw = {"__key__": "k", "__url__": "s.tar", "cls": b"1", "json": b"{}", "png": _png_bytes("L")}
    key, image, label, row = decode_sample(raw)
    assert (key, image.dtype, image.ndim, label, row) == ("k", "uint8", 2, 1, {})
    with pytest.raises(DatasetError, match=re.escape(f"shard s.tar: member k.{message}")):
        decode_sample({**raw, ext: data})
    with pytest.raises(DatasetError, match=r"shard s.tar: sample k lacks \['png'\]"):
        decode_sample({k: v for k, v in raw.items() if k != "png"})
