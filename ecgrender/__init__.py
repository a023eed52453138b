"""ecgrender: WFDB databases -> aligned windows -> paper-faithful ECG images -> shared datasets."""

__version__ = "0.1.0"
