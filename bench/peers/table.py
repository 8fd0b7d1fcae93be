#!/usr/bin/env python3
"""Merge the JSON lines written by peers.py, diffsol-bench and the diffsim runner into one
markdown table (see README.md for the columns).

usage: table.py RESULTS.jsonl [more.jsonl ...]
"""

from __future__ import annotations

import json
import math
import sys

from common import load_jsonl

ORDER = ["lorenz", "robertson", "van-der-pol", "ensemble"]
TITLE = {
    "lorenz": "Lorenz, t∈[0,100], rtol=atol=1e-8",
    "robertson": "Robertson, t∈[0,1e5], rtol=1e-6 atol=1e-10",
    "van-der-pol": "Van der Pol μ=1e3, t∈[0,3], rtol=atol=1e-6",
    "ensemble": "Robertson ensemble ×1000, rtol=1e-6 atol=1e-10",
}
PEER_ORDER = {"diffsim": 0, "diffsol": 1, "cvode": 2, "diffrax": 3, "scipy": 4}
OK_REL = 1e-4  # "ok" if the end state matches the reference to this relative error
LOOSE_REL = 1e-2  # "loose" up to this, "FAIL" beyond
LORENZ_BOX = (30.0, 35.0, 60.0)  # |x|, |y| bounds and z upper bound of the attractor


def load(paths):
    return load_jsonl(paths)


def relerr(u, ref, atol):
    """max_i |u_i - ref_i| / max(|ref_i|, 1e3*atol)."""
    if u is None or ref is None or len(u) != len(ref):
        return math.inf
    floor = 1e3 * (atol or 0.0)
    return max(abs(a - b) / max(abs(b), floor, 1e-300) for a, b in zip(u, ref))


def grade(err):
    if not math.isfinite(err):
        return "FAIL"
    word = "ok" if err <= OK_REL else ("loose" if err <= LOOSE_REL else "FAIL")
    return f"{word} {err:.0e}"


def check(r, refs):
    if not r.get("success", False):
        return "FAIL (" + str(r.get("retcode") or r.get("error") or "no success")[:40] + ")"
    prob = r["problem"]
    if prob == "lorenz":
        u = r.get("u_final")
        if not u or not all(math.isfinite(x) for x in u):
            return "FAIL"
        bx, by, bz = LORENZ_BOX
        inside = abs(u[0]) < bx and abs(u[1]) < by and 0.0 < u[2] < bz
        return "ok (attractor)†" if inside else "FAIL (off attractor)"
    if prob == "ensemble":
        members, ref = r.get("u_final_members"), refs.get("ensemble", {}).get("u_final_members")
        nok = r.get("n_success")
        if r.get("scaled_to"):
            tag = ""
        elif nok is not None:
            tag = f"{nok}/1000 succeeded"
        else:
            tag = "all succeeded"
        if members and ref:
            err = max(relerr(m, q, r.get("atol")) for m, q in zip(members, ref))
            return (grade(err) + f" ({len(members)} members)" + (f"; {tag}" if tag else "")).strip()
        return f"n/a (own RNG){'; ' + tag if tag else ''}"
    ref = refs.get(prob, {}).get("u_final")
    if ref is None:
        return "n/a (no reference)"
    return grade(relerr(r.get("u_final"), ref, r.get("atol")))


def steps(r):
    st = r.get("stats") or {}
    if r.get("peer") == "diffrax":
        acc, rej = st.get("naccept"), st.get("nreject")
    elif r.get("peer") == "diffsim":
        acc, rej = st.get("naccept", st.get("nsteps")), st.get("nreject")
    else:  # scipy, CVODE: accepted steps only; diffsol: accepted + error-test failures
        acc, rej = st.get("nsteps"), st.get("nreject")
    if acc is None:
        return "n/a"
    s = str(acc)
    if rej is not None:
        s += f" (+{rej})"
    if r.get("scaled_to"):
        s += "*"
    return s


def fmt_ms(sec):
    if sec is None:
        return "n/a"
    ms = sec * 1e3
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def fastest_rounds(runs):
    """One record per (problem, peer, solver): the successful round with the smallest median
    time (run.sh's ROUNDS), else the first record. Returns the records and the most rounds
    any case had."""
    best, rounds = {}, {}
    for r in runs:
        key = (r.get("problem"), r.get("peer"), r.get("solver"))
        rounds[key] = rounds.get(key, 0) + 1
        cur = best.get(key)
        t = r.get("seconds_median") if r.get("success") else None
        t_cur = cur.get("seconds_median") if cur is not None and cur.get("success") else None
        if cur is None or (t is not None and (t_cur is None or t < t_cur)):
            best[key] = r
    return list(best.values()), max(rounds.values(), default=0)


def main(paths):
    recs = load(paths)
    refs = {r["problem"]: r for r in recs if r.get("peer") == "reference"}
    runs, n_rounds = fastest_rounds([r for r in recs if r.get("peer") not in (None, "reference")])
    print("| problem | solver | time (ms, median) | steps | ratio ours/theirs | check |")
    print("|---|---|---:|---:|---:|---|")
    for prob in ORDER:
        rows = [r for r in runs if r.get("problem") == prob]
        ours = [r for r in rows if r["peer"] == "diffsim"]
        default = next((r for r in ours if r.get("default")), None)
        t_ours = default.get("seconds_median") if default and default.get("success") else None
        if not ours:  # binary absent: still show the row so the table says n/a
            alg = {"lorenz": "tsit5", "ensemble": "rodas5p"}.get(prob, "rodas5p")
            rows.insert(0, dict(peer="diffsim", problem=prob, solver=alg, default=True,
                                seconds_median=None, success=None))
        rows.sort(key=lambda r: (PEER_ORDER.get(r["peer"], 9), not r.get("default", False)))
        for r in rows:
            t = r.get("seconds_median")
            ratio = f"{t_ours / t:.3g}" if (t_ours and t) else "n/a"
            name = f"{r['peer']} {r['solver']}"
            if r["peer"] == "diffsim" and r.get("default"):
                name = f"**{name}** (default)"
            if r.get("success") is None:
                chk, st, ratio = "n/a (binary missing)", "n/a", "n/a"
            else:
                chk, st = check(r, refs), steps(r)
            print(f"| {TITLE[prob]} | {name} | {fmt_ms(t)} | {st} | {ratio} | {chk} |")
    print()
    print("ratio = (our default method's median time) / (this row's median time); "
          "< 1 means diffsim is faster. steps = accepted (+rejected); * = scaled from a subset. "
          "check = max relative end-state error vs a tight-tolerance scipy reference "
          f"(ok ≤ {OK_REL:g}, loose ≤ {LOOSE_REL:g}); † Lorenz is chaotic at t=100, so only "
          "'still on the attractor' is checked."
          + (f" Each time is the fastest of {n_rounds} interleaved rounds." if n_rounds > 1 else ""))


if __name__ == "__main__":
    main(sys.argv[1:])
