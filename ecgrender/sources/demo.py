"""The bundled demo: short MIT-BIH excerpts (read with the mitdb rules) and one PTB record."""

from __future__ import annotations

from pathlib import Path

from .mitdb import MitdbSource

DEMO_DIR = Path(__file__).resolve().parents[1] / "data" / "demo"


def demo_dir() -> Path:
    """The bundled demo folder: `mitdb/` (rhythm excerpts) and `ptbdb/patient001/s0010_re`."""
    return DEMO_DIR


class DemoSource(MitdbSource):
    """`--db demo`: the MIT-BIH excerpts under `<demo>/mitdb`, labelled by rhythm like mitdb."""

    database = "demo"
    version = "mitdb 1.0.0 excerpts (bundled)"

    def __init__(self, root: Path | str | None = None, records=None, labels=None):
        super().__init__(Path(root or demo_dir()) / "mitdb", records=records, labels=labels)
