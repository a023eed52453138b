"""ecgtrain: stream rendered ECG datasets into ImECGnet and the paper's baselines."""

__version__ = "0.1.0"
