"""ecgrender: WFDB databases -> aligned windows -> paper-faithful ECG images -> shared datasets.

`ecgrender.record_inputs(record_path, card, max_windows, images)` (module `ecgrender.inputs`) is
loaded on first use, so importing the package stays cheap.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    if name in ("record_inputs", "RecordInputs"):
        from . import inputs

        return getattr(inputs, name)
    raise AttributeError(f"module 'ecgrender' has no attribute {name!r}")
