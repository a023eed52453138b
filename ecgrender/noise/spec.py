"""`--noise SPEC`: one or more `TYPE:SNR` items, e.g. `bw:6,ma:12` or `gauss:inf`."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import EcgError
from .models import noise_names


@dataclass(frozen=True)
class NoiseComponent:
    """One noise type added at `snr_db` (dB, per window and lead; +inf adds nothing)."""

    kind: str
    snr_db: float

    def __str__(self) -> str:
        return f"{self.kind}:{format_snr(self.snr_db)}"


def format_snr(snr_db: float) -> str:
    """An SNR as the shortest text that reads back to the same float: 6, -3, 0.5, inf."""
    return repr(float(snr_db)).removesuffix(".0")


def parse_noise_spec(spec: str) -> list[NoiseComponent]:
    """The components of SPEC in the order given; EcgError for an unknown type, a repeated type or an SNR that is
    not a number."""
    components: list[NoiseComponent] = []
    for item in (part.strip() for part in spec.split(",")):
        kind, colon, value = item.partition(":")
        kind = kind.strip()
        if not colon or not kind:
            raise EcgError(f"--noise {spec!r}: {item!r} is not TYPE:SNR; write e.g. bw:6,ma:12 "
                           f"(types: {', '.join(noise_names())})")
        if kind not in noise_names():
            raise EcgError(f"--noise {spec!r}: unknown noise type {kind!r}; choose from {', '.join(noise_names())}")
        try:
            snr = float(value)
        except ValueError:
            raise EcgError(f"--noise {spec!r}: SNR {value.strip()!r} of {kind} is not a number of dB "
                           "(e.g. 6, -3 or inf)") from None
        if math.isnan(snr) or snr == -math.inf:
            raise EcgError(f"--noise {spec!r}: SNR of {kind} must be a number of dB or inf, got {value.strip()}")
        if any(c.kind == kind for c in components):
            raise EcgError(f"--noise {spec!r}: {kind} is given twice; give each type once")
        components.append(NoiseComponent(kind, snr))
    return components
