"""Run one command and record its wall time, CPU time and memory, untainted by the caller's size.

Why a separate launcher: on Linux a child's `ru_maxrss` starts from the RSS of the process that
spawned it (at exec the kernel folds the old address space's high-water mark into the child's
counter, and a vfork/fork child's old address space is the parent's). The benchmark driver
holds imapclient, psycopg and the corpus index, so children it spawned directly could report
its size instead of their own. This launcher is plain Python without `site` (about 10 MB), so the
figure it reports is the phase's own peak whenever that exceeds ~10 MB, which every phase does.

Why it also samples the process tree: the poller parses in worker processes, and `ru_maxrss`
is the peak of the largest single process, not of the poll as a whole. A thread reads
/proc/PID/smaps_rollup of the command and all its descendants every SAMPLE_SECONDS and keeps
the largest sum of PSS (proportional set size: pages shared between the poller and its forked
workers are counted once, split between them) and of RSS (shared pages counted in each).

Usage: python -S bench/launch.py RESULT.json TIMEOUT_SECONDS PROGRAM [ARGS...]
stdin/stdout/stderr are passed through; RESULT.json gets wall_seconds, cpu_seconds (the
command and the descendants it waited for), max_rss_kib, tree_pss_kib, tree_rss_kib,
tree_processes (most processes seen at once) and returncode. The command is killed after
TIMEOUT_SECONDS. Only the standard library, so that it runs without the virtualenv's packages.
"""

import json
import os
import signal
import sys
import threading
import time

SAMPLE_SECONDS = 0.2


def _children() -> dict[int, list[int]]:
    """Parent pid → child pids, for every process visible in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        children.setdefault(parent, []).append(int(entry))
    return children


def _memory_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in KiB; (0, 0) once it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass  # exited meanwhile: it holds no memory any more
    return pss, rss


class TreeSampler(threading.Thread):
    """Largest total memory of a process and its descendants, sampled until stopped."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.stop = threading.Event()
        self.pss = self.rss = self.processes = 0

    def run(self) -> None:
        while not self.stop.is_set():
            children = _children()
            tree, index = [self.root], 0
            while index < len(tree):
                tree.extend(children.get(tree[index], []))
                index += 1
            sizes = [_memory_kib(pid) for pid in tree]
            self.pss = max(self.pss, sum(pss for pss, _ in sizes))
            self.rss = max(self.rss, sum(rss for _, rss in sizes))
            self.processes = max(self.processes, sum(1 for pss, _ in sizes if pss))
            self.stop.wait(SAMPLE_SECONDS)


def main() -> None:
    result_path, timeout, program, *arguments = sys.argv[1:]
    started = time.perf_counter()
    pid = os.posix_spawn(program, [program, *arguments], os.environ)
    sampler = TreeSampler(pid)
    sampler.start()
    signal.signal(signal.SIGALRM, lambda *_: os.kill(pid, signal.SIGKILL))
    signal.alarm(int(timeout))
    _, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - started
    signal.alarm(0)
    sampler.stop.set()
    sampler.join()
    result = {
        "wall_seconds": wall,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "max_rss_kib": usage.ru_maxrss,
        "tree_pss_kib": sampler.pss,
        "tree_rss_kib": sampler.rss,
        "tree_processes": sampler.processes,
        "returncode": os.waitstatus_to_exitcode(status),
    }
    with open(result_path, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main()
