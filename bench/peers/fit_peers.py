#!/usr/bin/env python3
"""Parameter estimation benchmark: the Lorenz fit of issue 20, diffsim against scipy.

Data: Lorenz (sigma 10, rho 28, beta 8/3) from [1, 0, 0], every state every 0.01 on [0, 3],
written by `diffsim solve --csv` (Vern7 at 1e-12). Every fitter starts from [9, 20, 2]
inside the bounds [9, 11] x [20, 30] x [2, 3] and solves at rtol = atol = 1e-10.

- diffsim `fit --optimizer lm` (Levenberg-Marquardt, Jacobian from forward sensitivities),
  `--optimizer bobyqa` (derivative-free), `lbfgs` and `nelder-mead`, and `lm` with each
  strategy (multiple-shooting, collocation, pem, growing, minibatch); the time is the CLI's in-process
  `seconds` (the fit alone, as for scipy below).
- scipy `least_squares` (trf, bounds, 2-point finite-difference Jacobian) with `solve_ivp`
  (DOP853) inside; and `least_squares` with the Jacobian from scipy's own forward
  sensitivities (the augmented system, the analytic Jacobian of f given);
- scipy `minimize(method="Powell")` with bounds: a derivative-free peer.

Prints one markdown table: the largest relative parameter error, iterations, function
evaluations, seconds (best of --repeats) and the ratio to diffsim lm.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from scipy.integrate import solve_ivp
from scipy.optimize import least_squares, minimize

TRUTH = np.array([10.0, 28.0, 8.0 / 3.0])
P0 = np.array([9.0, 20.0, 2.0])
LO, HI = np.array([9.0, 20.0, 2.0]), np.array([11.0, 30.0, 3.0])
TOL = 1e-10


def lorenz(t, u, s, r, b):
    x, y, z = u
    return [s * (y - x), x * (r - z) - y, x * y - b * z]


def lorenz_jac(u, p):
    x, y, z = u
    s, r, b = p
    return np.array([[-s, s, 0.0], [r - z, -1.0, -x], [y, x, -b]])


def lorenz_dfdp(u, p):
    x, y, z = u
    return np.array([[y - x, 0.0, 0.0], [0.0, x, 0.0], [0.0, 0.0, -z]])


def load(path):
    d = np.genfromtxt(path, delimiter=",", names=True)
    t = d["t"]
    y = np.stack([d["u0"], d["u1"], d["u2"]], axis=1)
    return t, y


def scipy_fd(t, y):
    nfev = [0]

    def res(p):
        nfev[0] += 1
        s = solve_ivp(lorenz, (0.0, t[-1]), [1.0, 0.0, 0.0], method="DOP853", t_eval=t, args=tuple(p), rtol=TOL, atol=TOL)
        return (s.y.T - y).ravel()

    r = least_squares(res, P0, bounds=(LO, HI), method="trf", x_scale="jac", ftol=1e-14, xtol=1e-14, gtol=1e-14)
    return r.x, r.nfev, nfev[0]


def scipy_sens(t, y):
    """least_squares with the Jacobian from the forward-sensitivity system."""
    nfev = [0]
    cache = {}

    def aug(tt, z, p):
        u, S = z[:3], z[3:].reshape(3, 3)
        dS = lorenz_jac(u, p) @ S + lorenz_dfdp(u, p)
        return np.concatenate([lorenz(tt, u, *p), dS.ravel()])

    def solve(p):
        key = tuple(p)
        if key not in cache:
            nfev[0] += 1
            s = solve_ivp(aug, (0.0, t[-1]), np.concatenate([[1.0, 0.0, 0.0], np.zeros(9)]), method="DOP853",
                          t_eval=t, args=(np.array(p),), rtol=TOL, atol=TOL)
            cache.clear()
            cache[key] = s.y.T
        return cache[key]

    def res(p):
        return (solve(p)[:, :3] - y).ravel()

    def jac(p):
        z = solve(p)
        return z[:, 3:].reshape(len(t), 3, 3).reshape(len(t) * 3, 3)

    r = least_squares(res, P0, jac=jac, bounds=(LO, HI), method="trf", x_scale="jac", ftol=1e-14, xtol=1e-14, gtol=1e-14)
    return r.x, r.nfev, nfev[0]


def scipy_powell(t, y):
    nfev = [0]

    def loss(p):
        nfev[0] += 1
        s = solve_ivp(lorenz, (0.0, t[-1]), [1.0, 0.0, 0.0], method="DOP853", t_eval=t, args=tuple(p), rtol=TOL, atol=TOL)
        if not s.success:
            return 1e300
        return 0.5 * float(np.sum((s.y.T - y) ** 2))

    r = minimize(loss, P0 + 0.05 * (HI - LO), method="Powell", bounds=list(zip(LO, HI)),
                 options={"xtol": 1e-10, "ftol": 1e-14, "maxfev": 20000})
    return r.x, r.nit, nfev[0]


def best_of(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--diffsim", default=os.path.join(os.path.dirname(__file__), "../../target/release/diffsim"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-slow", action="store_true", help="skip the finite-difference and Powell scipy runs")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp()
    csv = os.path.join(tmp, "lorenz.csv")
    subprocess.run([a.diffsim, "solve", "--model", "lorenz", "--u0", "1,0,0", "--tspan", "0,3", "--saveat", "0.01",
                    "--alg", "vern7", "--rtol", "1e-12", "--atol", "1e-12", "--csv", csv], check=True, capture_output=True)
    t, y = load(csv)
    rows = []

    def err(p):
        return float(np.max(np.abs((np.asarray(p) - TRUTH) / TRUTH)))

    configs = [(opt, "single") for opt in ["lm", "bobyqa", "lbfgs", "nelder-mead"]]
    configs += [("lm", s) for s in ["multiple-shooting", "collocation", "pem", "growing", "minibatch"]]
    for opt, strategy in configs:
        best = None
        for _ in range(a.repeats):
            out = subprocess.run([a.diffsim, "fit", "--model", "lorenz", "--data", csv, "--u0", "1,0,0", "--t0", "0",
                                  "--p0", "9,20,2", "--lower", "9,20,2", "--upper", "11,30,3", "--rtol", str(TOL),
                                  "--atol", str(TOL), "--optimizer", opt, "--strategy", strategy,
                                  "--max-iters", "2000", "--json"],
                                 check=True, capture_output=True, text=True).stdout
            d = json.loads(out)
            if best is None or d["seconds"] < best["seconds"]:
                best = d
        name = f"diffsim fit {opt}" + ("" if strategy == "single" else f" --strategy {strategy}")
        rows.append((name, err(best["p"]), best["iters"], "", best["seconds"]))
    runs = [("scipy least_squares + sensitivities (DOP853)", scipy_sens)]
    if not a.skip_slow:
        runs += [("scipy least_squares, 2-point Jacobian (DOP853)", scipy_fd), ("scipy minimize Powell (DOP853)", scipy_powell)]
    for name, fn in runs:
        secs, (p, iters, nfev) = best_of(lambda: fn(t, y), a.repeats if "sensitivities" in name else 1)
        rows.append((name, err(p), iters, nfev, secs))
    base = rows[0][4]
    fd = next((r[4] for r in rows if "2-point" in r[0]), None)
    print("| fitter | max rel. error | iterations | solves | seconds | / diffsim lm | scipy 2-point / this |")
    print("|---|---|---|---|---|---|---|")
    for name, e, it, nf, s in rows:
        speedup = f"{fd / s:.0f}" if fd else ""
        print(f"| {name} | {e:.1e} | {it} | {nf} | {s:.4f} | {s / base:.1f} | {speedup} |")


if __name__ == "__main__":
    sys.exit(main())
