"""Run `ecgrender ARGS...` in this process and SIGKILL it in the middle of writing shard N: after the
first sample of the N-th shard is in its temp file. A deterministic interruption for the resume tests;
pass `--jobs 1`, so that joblib renders in this process, one shard after the other.

    python tests/kill_in_shard.py N build --db demo ... --jobs 1 --out DIR
"""

from __future__ import annotations

import os
import signal
import sys

from ecgrender import render_shards
from ecgrender.cli import main


def kill_in_shard(n: int) -> None:
    """Replace the shard writer so that the process kills itself while writing the n-th shard."""
    write_shard = render_shards.write_shard
    calls = []

    def killing_write_shard(path, samples):
        calls.append(path)
        if len(calls) < n:
            return write_shard(path, samples)

        def first_then_kill():
            for i, sample in enumerate(samples):
                if i == 1:
                    os.kill(os.getpid(), signal.SIGKILL)
                yield sample

        return write_shard(path, first_then_kill())

    render_shards.write_shard = killing_write_shard


if __name__ == "__main__":
    kill_in_shard(int(sys.argv[1]))
    main(sys.argv[2:])
