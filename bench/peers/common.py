"""Helpers shared by the peer-benchmark scripts (run from this directory's scripts only)."""
from __future__ import annotations

import json
import sys
import time


def timed_calls(fn, budget: float, min_repeats: int, max_repeats: int):
    """Call fn() at least min_repeats and at most max_repeats times, stopping once budget
    seconds have passed; return (list of seconds per call, last result)."""
    times, start, res = [], time.perf_counter(), None
    while True:
        t0 = time.perf_counter()
        res = fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= max_repeats:
            break
        if len(times) >= min_repeats and time.perf_counter() - start >= budget:
            break
    return times, res


def load_jsonl(paths, who: str | None = None):
    """Every JSON object line of the files `paths` (other lines skipped); a missing file is
    skipped, with a note on stderr when `who` names the calling script."""
    recs = []
    for p in paths:
        try:
            with open(p) as fh:
                for line in fh:
                    line = line.strip()
                    if line.startswith("{"):
                        try:
                            recs.append(json.loads(line))
                        except json.JSONDecodeError:
                            pass
        except FileNotFoundError:
            if who:
                print(f"{who}: no file {p}", file=sys.stderr)
    return recs
