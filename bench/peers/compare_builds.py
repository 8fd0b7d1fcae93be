#!/usr/bin/env python3
"""Compare two diffsim binaries on the peer-benchmark cases (solve and grad), interleaved.

usage: compare_builds.py OLD NEW [rounds]   (two diffsim binaries, e.g. target/release/diffsim of two commits)
Prints, per case, the best (min over rounds) of each binary's in-process median and the
ratio new/old, and whether the JSON outputs (u / grad) are bit-identical.
"""
import json, subprocess, sys

old, new = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
L = "10.0,28.0,2.6666666666666665"
S = [
    ("lorenz tsit5", ["solve", "--model", "lorenz", "--u0", "1,0,0", "--p", L, "--alg", "tsit5", "--tspan", "0,100.0", "--saveat-times", "100.0", "--rtol", "1e-8", "--atol", "1e-8", "--repeat", "200"]),
    ("lorenz vern7", ["solve", "--model", "lorenz", "--u0", "1,0,0", "--p", L, "--alg", "vern7", "--tspan", "0,100.0", "--saveat-times", "100.0", "--rtol", "1e-8", "--atol", "1e-8", "--repeat", "200"]),
    ("lorenz dp5", ["solve", "--model", "lorenz", "--u0", "1,0,0", "--p", L, "--alg", "dp5", "--tspan", "0,100.0", "--saveat-times", "100.0", "--rtol", "1e-8", "--atol", "1e-8", "--repeat", "200"]),
    ("robertson rodas5p", ["solve", "--model", "robertson", "--u0", "1,0,0", "--p", "0.04,3e7,1e4", "--alg", "rodas5p", "--tspan", "0,100000.0", "--saveat-times", "100000.0", "--rtol", "1e-6", "--atol", "1e-10", "--repeat", "500"]),
    ("robertson rodas4", ["solve", "--model", "robertson", "--u0", "1,0,0", "--p", "0.04,3e7,1e4", "--alg", "rodas4", "--tspan", "0,100000.0", "--saveat-times", "100000.0", "--rtol", "1e-6", "--atol", "1e-10", "--repeat", "500"]),
    ("robertson ros23", ["solve", "--model", "robertson", "--u0", "1,0,0", "--p", "0.04,3e7,1e4", "--alg", "rosenbrock23", "--tspan", "0,100000.0", "--saveat-times", "100000.0", "--rtol", "1e-6", "--atol", "1e-10", "--repeat", "200"]),
    ("vdp rodas5p", ["solve", "--model", "van-der-pol", "--u0", "2,0", "--p", "1000", "--alg", "rodas5p", "--tspan", "0,3.0", "--saveat-times", "3.0", "--rtol", "1e-6", "--atol", "1e-6", "--repeat", "500"]),
    ("ensemble rodas5p", ["solve", "--model", "robertson", "--alg", "rodas5p", "--ensemble", "1000", "--seed", "1", "--rtol", "1e-6", "--atol", "1e-10", "--repeat", "5"]),
]
LG = ["--model", "lorenz", "--alg", "tsit5", "--tspan", "0.0,1.0", "--u0", "1.0,0.0,0.0", "--p", L, "--saveat-times", ",".join(repr(round(0.1 * i, 10)) for i in range(11)), "--rtol", "1e-8", "--atol", "1e-8", "--loss", "sumsq"]
RG = ["--model", "robertson", "--alg", "rodas5p", "--tspan", "0.0,40.0", "--u0", "1.0,0.0,0.0", "--p", "0.04,30000000.0,10000.0", "--saveat-times", "0.4,4.0,40.0", "--rtol", "1e-6", "--atol", "1e-10", "--loss", "sumsq"]
for m in ["forward-ad", "discrete", "interpolating", "quadrature", "backsolve", "forward"]:
    S.append((f"grad lorenz {m}", ["grad", *LG, "--sensealg", m, "--repeat", "100"]))
for m in ["discrete", "interpolating", "forward"]:
    S.append((f"grad robertson {m}", ["grad", *RG, "--sensealg", m, "--repeat", "100"]))

def run(exe, args):
    p = subprocess.run([exe, *args, "--json"], capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        return None, None
    j = json.loads(p.stdout.strip().splitlines()[-1])
    key = j.get("u") or j.get("grad_p") or j.get("retcodes")
    return j["seconds_median"], json.dumps([key, j.get("grad_u0"), j.get("loss")])

best = {}
for r in range(rounds):
    for name, args in S:
        for tag, exe in (("old", old), ("new", new)):
            t, out = run(exe, args)
            k = (name, tag)
            if t is not None:
                prev = best.get(k)
                best[k] = (min(t, prev[0]) if prev else t, out)
print(f"{'case':28s} {'old ms':>10s} {'new ms':>10s} {'new/old':>8s}  same output")
for name, _ in S:
    o, n = best.get((name, "old")), best.get((name, "new"))
    if not o or not n:
        print(f"{name:28s} failed: old={o is not None} new={n is not None}")
        continue
    print(f"{name:28s} {o[0]*1e3:10.4f} {n[0]*1e3:10.4f} {n[0]/o[0]:8.3f}  {o[1] == n[1]}")
