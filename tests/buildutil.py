"""Run `ecgrender` the way a user does, and read back what it wrote (shared by the build tests)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner, Result

from ecgrender.cli import main

ECGRENDER = [sys.executable, "-c", "from ecgrender.cli import main; main()"]


def ecgrender(*args) -> Result:
    """Invoke the CLI in-process; returns click's Result (exit_code, output, stderr)."""
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def ecgrender_process(*args, **popen) -> subprocess.Popen:
    """Start the CLI as a separate process (for kill-and-resume)."""
    return subprocess.Popen(ECGRENDER + [str(a) for a in args], **popen)


def ecgrender_run(*args, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the CLI as a separate process to its end (a crash shows as a negative return code)."""
    return subprocess.run(ECGRENDER + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def error_lines(stderr: str) -> list[str]:
    """The `error: ...` lines of a command's stderr (progress bars left out)."""
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def tree_bytes(root: Path) -> dict[str, bytes]:
    """Every file under root (relative path -> content)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def refused(result: Result, *expected: str) -> str:
    """The one `error:` line of a refused command (exit status 2), containing every `expected` text."""
    assert result.exit_code == 2, result.output + result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]
