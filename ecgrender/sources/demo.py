"""The bundled demo: short MIT-BIH excerpts (read with the mitdb rules) and one PTB record."""

from __future__ import annotations

from pathlib import Path

from .mitdb import CITATION, DEFAULT_CLASSES, DOI, LEADS, URL, MitdbSource
from .registry import register_database

DEMO_DIR = Path(__file__).resolve().parents[1] / "data" / "demo"


def demo_dir() -> Path:
    """The bundled demo folder: `mitdb/` (rhythm excerpts) and `ptbdb/patient001/s0010_re`."""
    return DEMO_DIR


@register_database("demo", title="bundled sample: 7 MIT-BIH excerpts (no --source needed)",
                   version="mitdb 1.0.0 excerpts (bundled)", default_classes=DEFAULT_CLASSES, leads=LEADS,
                   fetchable=False, licence="ODC-By-1.0", url=URL, doi=DOI, citation=CITATION, mains_hz=60)
class DemoSource(MitdbSource):
    """`--db demo`: the MIT-BIH excerpts under `<demo>/mitdb`, labelled by rhythm like mitdb."""

    def __init__(self, root: Path | str | None = None, records=None, labels=None):
        super().__init__(Path(root or demo_dir()) / "mitdb", records=records, labels=labels)
