"""Noisy copies of a dataset's windows (`ecgrender build --manifest M --noise SPEC`, docs/noise.md).

spec.py parses SPEC (`bw:6,ma:12`), models.py is the registry of noise types and their synthetic
generators, nstdb.py reads real noise from the MIT-BIH Noise Stress Test Database, snr.py holds the
SNR definition (nst's, per window and lead) and apply.py adds the scaled noise to one window.
"""

from .apply import WindowNoise
from .models import noise_names
from .snr import measured_snr
from .spec import NoiseComponent, parse_noise_spec

__all__ = ["NoiseComponent", "WindowNoise", "measured_snr", "noise_names", "parse_noise_spec"]
