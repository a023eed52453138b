"""ecgrender: WFDB databases -> aligned windows -> paper-faithful ECG images -> shared datasets.

`ecgrender.record_inputs(record_path, card, max_windows, images)` (module `ecgrender.inputs`) and
`ecgrender.noise_names()` / `ecgrender.NSTDB_RECORDS` (the `--noise` types, and those NSTDB has real
records of) and `ecgrender.lead_columns(card)` (where each lead lies in a card's images) are loaded on
first use, so importing the package stays cheap.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name in ("record_inputs", "RecordInputs"):
        from . import inputs

        return getattr(inputs, name)
    if name == "lead_columns":
        from .render.geometry import RenderSpec, lead_columns

        def card_lead_columns(card: dict) -> list[float]:
            """Lead boundaries (stored-image columns) of a dataset card's images (render.geometry.lead_columns)."""
            return lead_columns(RenderSpec(**card["render"]), int(card["n_leads"]), int(card["window"]["length"]))

        return card_lead_columns
    if name == "noise_names":
        from .noise.models import noise_names

        return noise_names
    if name == "NSTDB_RECORDS":
        from .noise.nstdb import NSTDB_RECORDS

        return NSTDB_RECORDS
    raise AttributeError(f"module 'ecgrender' has no attribute {name!r}")
