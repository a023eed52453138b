"""Shared fixtures: the real records in ../shared/data (or a skip) and tiny synthetic databases.

The synthetic databases are session-scoped and must be treated as read-only; a test that damages
files writes its own copy with `synth.write_mitdb(tmp_path)` etc.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real PhysioNet mitdb records and PTB s0010_re), or skip when absent."""
    if not (SHARED_DATA / "mitdb").is_dir():
        pytest.skip(f"real records not available ({SHARED_DATA} missing)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def synth_mitdb(tmp_path_factory) -> Path:
    """Synthetic mitdb folder with the records of `synth.MITDB_RECORDS` (read-only)."""
    return synth.write_mitdb(tmp_path_factory.mktemp("mitdb"))


@pytest.fixture(scope="session")
def synth_ptbdb(tmp_path_factory) -> Path:
    """Synthetic ptbdb folder with the records of `synth.PTBDB_RECORDS` (read-only)."""
    return synth.write_ptbdb(tmp_path_factory.mktemp("ptbdb"))


@pytest.fixture(scope="session")
def synth_incartdb(tmp_path_factory) -> Path:
    """Synthetic incartdb folder with the records of `synth.INCARTDB_RECORDS` (read-only)."""
    return synth.write_incartdb(tmp_path_factory.mktemp("incartdb"))


@pytest.fixture(scope="session")
def synth_ptbxl(tmp_path_factory) -> Path:
    """Synthetic PTB-XL 1.0.3 folder with the records of `synth.PTBXL_RECORDS` at 100 and 500 Hz (read-only)."""
    return synth.write_ptbxl(tmp_path_factory.mktemp("ptbxl"))
