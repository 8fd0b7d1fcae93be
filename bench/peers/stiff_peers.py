#!/usr/bin/env python3
"""Work-precision benchmark on the stiff test set (HIRES, OREGO, POLLU, VDPOL, ROBER,
Akzo Nobel, E5): diffsim's stiff methods against scipy's solve_ivp (Radau, BDF, LSODA)
and diffsol (BDF, ESDIRK34, TR-BDF2).

Every problem is solved at rtol = 1e-4, 10^-4.5, 1e-5, ..., 1e-13 (half-decade steps: on a
decade grid a solver whose run at 1e-12 gives 10.95 digits is charged its 1e-13 run at 11
digits, a grid effect of up to 10x in time; down to 1e-13 so that each solver's tolerance
scale, which differs by about a decade between implementations, reaches 12 digits) with
atol = atol_ratio * rtol (per problem, see stiff_problems.py), saving only the end state.
Each run counts its correct digits against the test set's published reference (the mixed
error count, floor = atol_ratio) and its median wall time. The table gives, for each
problem and each digit level 2..12, the fastest run of every solver that reached at least
that many digits, and diffsim's fastest over the fastest peer's.

    stiff_peers.py [--diffsim BIN] [--diffsol BIN] [--budget S] [--only diffsim,scipy,diffsol]
                   [--problems hires,...] [--rtols 1e-4,...] [--out FILE.jsonl] [--md FILE.md]
    stiff_peers.py --table FILE.jsonl [FILE.jsonl ..]      # the table from raw results

Raw results go to results/stiff.jsonl (one JSON object per run), the table to
results/stiff.md and stdout.

Timing: diffsim's is its CLI's in-process median over `--repeat K` solves (K sized so the
repeats take about --budget seconds, after a probe solve); scipy's the median of
solve_ivp calls over about --budget seconds (one call when a call takes longer); diffsol's
the median inside diffsol-bench the same way. A failed run is recorded (success false,
no digits) and the sweep goes on; a solver that takes more than --max-seconds for one
solve is not run at tighter tolerances on that problem.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from common import load_jsonl, timed_calls
from stiff_problems import PROBLEMS, digits

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
RTOLS = [10.0 ** (-k / 2) for k in range(8, 27)]
LEVELS = range(2, 13)
# diffsim's algorithms for stiff problems (those a CLI build rejects are skipped).
DIFFSIM_ALGS = ["rodas5p", "rodas4", "rosenbrock23", "bdf", "radau5", "radau9"]
SCIPY_METHODS = ["Radau", "BDF", "LSODA"]
DIFFSOL_METHODS = ["BDF", "ESDIRK34", "TR-BDF2"]


def emit(out, **rec):
    line = json.dumps(rec)
    print(line, file=out, flush=True)


def note(msg: str):
    print(f"stiff_peers.py: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- diffsim

def diffsim_call(exe: str, args: list[str], timeout: float):
    cmd = [exe, "solve", *args, "--json"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    out = None
    lines = p.stdout.strip().splitlines()
    if lines and lines[-1].startswith("{"):
        out = json.loads(lines[-1])
    return p.returncode, out, p.stderr.strip()


def diffsim_algorithms(exe: str) -> list[str]:
    """The algorithms of DIFFSIM_ALGS this CLI accepts (probed with a tiny solve)."""
    ok = []
    for alg in DIFFSIM_ALGS:
        code, out, err = diffsim_call(exe, ["--model", "rober", "--alg", alg, "--tspan", "0,1e-3"], 60)
        if out is not None:
            ok.append(alg)
        else:
            note(f"diffsim CLI does not run --alg {alg}; skipped ({err[:160]})")
    return ok


def run_diffsim(out, exe, problems, rtols, budget, max_seconds):
    algs = diffsim_algorithms(exe)
    for problem in problems:
        pr = PROBLEMS[problem]
        for alg in algs:
            for rtol in rtols:
                atol = rtol * pr["atol_ratio"]
                args = ["--model", problem, "--alg", alg, "--rtol", repr(rtol), "--atol", repr(atol),
                        "--saveat-times", repr(pr["t1"])]
                rec = dict(peer="diffsim", problem=problem, solver=alg, rtol=rtol, atol=atol)
                try:
                    t0 = time.perf_counter()
                    code, probe, err = diffsim_call(exe, [*args, "--repeat", "1"], 10 * max_seconds + 60)
                    wall = time.perf_counter() - t0
                    if probe is None:
                        raise RuntimeError(err[:300] or f"exit {code}")
                    est = max(float(probe.get("seconds_median") or 0.0), 1e-7)
                    reps = int(min(2000, max(1, budget / est)))
                    res = probe
                    if reps > 1 and probe.get("retcode") == "Success":
                        code, res, err = diffsim_call(exe, [*args, "--repeat", str(reps)], 10 * max_seconds + 60)
                        if res is None:
                            raise RuntimeError(err[:300] or f"exit {code}")
                    else:
                        reps = 1
                except Exception as exc:  # a crash or timeout is a failed run, reported
                    emit(out, **rec, success=False, seconds_median=None, error=str(exc)[:300])
                    note(f"diffsim {problem}/{alg} rtol {rtol:g} failed: {exc}")
                    break
                u = (res.get("u") or [[]])[-1]
                ok = res.get("retcode") == "Success" and float(res.get("t", [0])[-1]) == pr["t1"]
                st = res.get("stats") or {}
                d = digits(problem, u) if ok else None
                emit(out, **rec, success=ok, retcode=res.get("retcode"), seconds_median=res.get("seconds_median"),
                     repeats=reps, u_final=u, digits=d,
                     stats={k: st.get(k) for k in ("nsteps", "naccept", "nreject", "nf", "njac", "nlu")})
                if not ok:
                    note(f"diffsim {problem}/{alg} rtol {rtol:g}: {res.get('retcode')}")
                if wall > max_seconds:
                    note(f"diffsim {problem}/{alg}: {wall:.1f} s at rtol {rtol:g}; not run at tighter ones")
                    break


# --------------------------------------------------------------------------- scipy

def run_scipy(out, problems, rtols, budget, max_seconds):
    import scipy
    from scipy.integrate import solve_ivp

    for problem in problems:
        pr = PROBLEMS[problem]
        for method in SCIPY_METHODS:
            for rtol in rtols:
                atol = rtol * pr["atol_ratio"]

                def one():
                    return solve_ivp(pr["f"], (0.0, pr["t1"]), pr["u0"], method=method, jac=pr["jac"],
                                     rtol=rtol, atol=atol, t_eval=[pr["t1"]])

                t0 = time.perf_counter()
                try:
                    sol = one()
                except Exception as exc:
                    emit(out, peer="scipy", problem=problem, solver=method, rtol=rtol, atol=atol, success=False,
                         seconds_median=None, error=str(exc)[:300])
                    break
                first = time.perf_counter() - t0
                times = [first]
                if first < budget and sol.success:
                    more, sol = timed_calls(one, budget, 1, 200)
                    times = more
                y = np.asarray(sol.y, dtype=float)
                ok = bool(sol.success) and y.ndim == 2 and y.shape[1] == 1
                u = [float(x) for x in y[:, -1]] if ok else []
                if ok and "full_state" in pr:
                    u = pr["full_state"](u)
                rec = dict(peer="scipy", version=scipy.__version__, problem=problem, solver=method, rtol=rtol,
                           atol=atol, success=ok, seconds_median=statistics.median(times), repeats=len(times),
                           u_final=u, digits=digits(problem, u) if ok else None,
                           stats=dict(nf=int(sol.nfev), njac=int(sol.njev), nlu=int(sol.nlu)),
                           jacobian="analytic")
                if problem == "akzo":
                    rec["form"] = "ODE (y6 = Ks y1 y4 eliminated)"
                if not ok:
                    rec["error"] = str(sol.message)[:300]
                emit(out, **rec)
                if not ok:
                    note(f"scipy {problem}/{method} rtol {rtol:g}: {str(sol.message)[:120]}")
                if first > max_seconds:
                    note(f"scipy {problem}/{method}: {first:.1f} s at rtol {rtol:g}; not run at tighter ones")
                    break


# --------------------------------------------------------------------------- diffsol

def run_diffsol(out, exe, problems, rtols, budget, max_seconds):
    if not exe or not os.access(exe, os.X_OK):
        note(f"diffsol-bench binary {exe!r} not found; diffsol = n/a")
        return
    for problem in problems:
        pr = PROBLEMS[problem]
        stopped: set[str] = set()
        for rtol in rtols:
            if len(stopped) == len(DIFFSOL_METHODS):
                break
            atol = rtol * pr["atol_ratio"]
            methods = [m for m in DIFFSOL_METHODS if m not in stopped]
            cmd = [exe, "--stiff", problem, "--rtol", repr(rtol), "--atol", repr(atol), "--budget", str(budget),
                   "--methods", ",".join(methods)]
            t0 = time.perf_counter()
            try:
                p = subprocess.run(cmd, capture_output=True, text=True, timeout=30 * max_seconds + 60)
            except subprocess.TimeoutExpired:
                note(f"diffsol {problem} rtol {rtol:g}: timed out; stopping")
                for m in methods:
                    emit(out, peer="diffsol", problem=problem, solver=m, rtol=rtol, atol=atol, success=False,
                         seconds_median=None, error="timed out")
                break
            wall = time.perf_counter() - t0
            for line in p.stdout.splitlines():
                if not line.startswith("{"):
                    continue
                rec = json.loads(line)
                if rec["solver"] in stopped:
                    continue
                ok = bool(rec.get("success")) and rec.get("t_final") == pr["t1"]
                rec.update(rtol=rtol, atol=atol, success=ok, digits=digits(problem, rec.get("u_final")) if ok else None)
                emit(out, **rec)
                if not ok:
                    note(f"diffsol {problem}/{rec['solver']} rtol {rtol:g}: failed")
                if (rec.get("seconds_median") or 0.0) > max_seconds:
                    stopped.add(rec["solver"])
                    note(f"diffsol {problem}/{rec['solver']}: slower than {max_seconds:g} s; not run at tighter rtol")
            if p.returncode != 0:
                note(f"diffsol {problem} rtol {rtol:g}: exit {p.returncode}: {p.stderr.strip()[:200]}")
            if wall > 3 * max_seconds:
                note(f"diffsol {problem}: {wall:.0f} s at rtol {rtol:g}; stopping")
                break


# --------------------------------------------------------------------------- table

def fmt_ms(s):
    if s is None:
        return "–"
    ms = s * 1e3
    return f"{ms:.3g}" if ms < 1000 else f"{ms:,.0f}"


def table(recs) -> str:
    """Markdown: per problem, the fastest run of each solver reaching each digit level."""
    recs = [r for r in recs if r.get("success") and r.get("digits") is not None and r.get("seconds_median")]
    lines = []
    problems = [p for p in PROBLEMS if any(r["problem"] == p for r in recs)]
    solvers = []
    for r in recs:
        key = (r["peer"], r["solver"])
        if key not in solvers:
            solvers.append(key)
    order = {"diffsim": 0, "scipy": 1, "diffsol": 2}
    solvers.sort(key=lambda k: order.get(k[0], 9))
    for problem in problems:
        mine = [r for r in recs if r["problem"] == problem]
        here = [k for k in solvers if any((r["peer"], r["solver"]) == k for r in mine)]
        best_digits = max(r["digits"] for r in mine)
        lines.append(f"### {problem} (atol = {PROBLEMS[problem]['atol_ratio']:g} rtol; best {best_digits:.1f} digits)")
        lines.append("")
        head = ["digits"] + [f"{p} {s}" for p, s in here] + ["ours/best peer"]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---:|" * len(head))
        for level in LEVELS:
            row, ours, peers = [f"≥{level}"], None, None
            for k in here:
                runs = [r for r in mine if (r["peer"], r["solver"]) == k and r["digits"] >= level]
                best = min((r["seconds_median"] for r in runs), default=None)
                row.append(fmt_ms(best))
                if best is not None:
                    if k[0] == "diffsim":
                        ours = best if ours is None else min(ours, best)
                    else:
                        peers = best if peers is None else min(peers, best)
            if ours is None and peers is None:
                continue
            row.append(f"{ours / peers:.3g}" if ours is not None and peers is not None else "–")
            lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines.append("ms = median wall time of one solve (end state only) of the fastest run reaching at least that many "
                 "correct digits (the test set's mixed error count against its published reference, floor = "
                 "atol/rtol); – = no run got there. ours/best peer = diffsim's fastest / the fastest peer's: below "
                 "1 means diffsim is faster. Akzo: scipy solves the ODE left after eliminating y6 = Ks y1 y4 "
                 "(no mass matrices in solve_ivp). E5: the published y2 and y3 differ by 1.4e-3 although y2 - y3 - "
                 "y4 = 0 and y4 = 0, so a solver that keeps that invariant shows at most 3.1 digits.")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--diffsim", default=os.environ.get("DIFFSIM_BIN", os.path.join(ROOT, "target/release/diffsim")))
    ap.add_argument("--diffsol", default=os.path.join(HERE, "diffsol-bench/target/release/diffsol-bench"))
    ap.add_argument("--budget", type=float, default=0.5, help="seconds of repeated solving per run")
    ap.add_argument("--max-seconds", type=float, default=20.0,
                    help="a solver slower than this per solve is not run at tighter tolerances")
    ap.add_argument("--only", default="diffsim,scipy,diffsol")
    ap.add_argument("--problems", default=",".join(PROBLEMS))
    ap.add_argument("--rtols", default=",".join(f"{r:g}" for r in RTOLS))
    ap.add_argument("--out", default=os.path.join(HERE, "results/stiff.jsonl"))
    ap.add_argument("--md", default=os.path.join(HERE, "results/stiff.md"))
    ap.add_argument("--table", nargs="+", help="only print the table of these JSONL files")
    a = ap.parse_args()
    if a.table:
        text = table(load_jsonl(a.table, "stiff_peers.py"))
        print(text)
        return
    problems = [p for p in a.problems.split(",") if p]
    unknown = [p for p in problems if p not in PROBLEMS]
    if unknown:
        sys.exit(f"stiff_peers.py: unknown problem(s) {unknown}; choose from {list(PROBLEMS)}")
    rtols = [float(x) for x in a.rtols.split(",") if x]
    only = set(a.only.split(","))
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    start = time.perf_counter()
    with open(a.out, "w") as out:
        if "diffsim" in only:
            if os.access(a.diffsim, os.X_OK):
                run_diffsim(out, a.diffsim, problems, rtols, a.budget, a.max_seconds)
            else:
                note(f"no diffsim binary at {a.diffsim}; diffsim = n/a")
        if "diffsol" in only:
            run_diffsol(out, a.diffsol, problems, rtols, a.budget, a.max_seconds)
        if "scipy" in only:
            run_scipy(out, problems, rtols, a.budget, a.max_seconds)
    text = table(load_jsonl([a.out]))
    text += f"\n\nBenchmark time: {time.perf_counter() - start:.0f} s (budget {a.budget:g} s per run)."
    with open(a.md, "w") as fh:
        fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
