"""Run the `psp` command exactly as its console script does, timing the command on its own.

`python -m bench.psp_run ARGS` is `psp ARGS`: the same entry point (`psp.cli.main`), the same
exit code and output. The benchmark times the whole process from outside (that is the figure it
reports); this wrapper also records how long the command itself took, after interpreter start-up
and imports, because for a re-poll of an unchanged mailbox those fixed costs are most of the
wall time, and the product engineer needs to see which part to work on.

Environment:
  PSP_BENCH_TIMINGS  file to write {"command_seconds": ...} to (JSON);
  PSP_BENCH_PROFILE  file to write a cProfile of the command to (pstats format).
"""

from __future__ import annotations

import atexit
import cProfile
import json
import os
import sys
import time
from pathlib import Path

from psp.cli import main as psp_main


def main() -> None:
    timings = os.environ.get("PSP_BENCH_TIMINGS")
    profile_path = os.environ.get("PSP_BENCH_PROFILE")
    profiler = cProfile.Profile() if profile_path else None
    sys.argv = ["psp", *sys.argv[1:]]
    started = time.perf_counter()

    def record() -> None:
        """At exit, since psp's entry point ends the process itself once the command is done."""
        elapsed = time.perf_counter() - started
        if profiler is not None and profile_path:
            profiler.disable()
            profiler.dump_stats(profile_path)
        if timings:
            Path(timings).write_text(json.dumps({"command_seconds": elapsed}))

    atexit.register(record)
    if profiler is not None:
        profiler.enable()
    psp_main()


if __name__ == "__main__":
    main()
