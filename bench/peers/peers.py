#!/usr/bin/env python3
"""Python peer solvers for the diffsim benchmark: scipy, diffrax (JAX) and SUNDIALS CVODE.

Every run prints one JSON object per line on stdout:

    {"peer", "problem", "solver", "seconds_median", "repeats", "t_final", "u_final",
     "success", "stats": {...}, "rtol", "atol", ...}

`--only reference` prints tight-tolerance reference end states ("peer": "reference")
that bench/peers/table.py uses for the check column.

Timing is `time.perf_counter` around one complete solve call (solver set-up included,
problem definition and JIT compilation excluded), repeated until a time budget is spent
(at least --min-repeats, at most --max-repeats repeats), and the median is reported.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time

from common import timed_calls

import numpy as np

# --------------------------------------------------------------------------- problems
# The same definitions are used by diffsol-bench/src/main.rs and by `diffsim solve`.

LORENZ_P = (10.0, 28.0, 8.0 / 3.0)  # sigma, rho, beta
ROBER_K = (0.04, 3e7, 1e4)  # k1, k2 (u2^2), k3 (u2*u3)
VDP_MU = 1e3
# u2' = mu((1-u1^2)u2 - u1) has relaxation period ~ (3 - 2 ln 2) ~ 1.6 in this (Hairer)
# scaling, so [0, 3] covers about two periods. See README.md ("Van der Pol time span").
VDP_T1 = 3.0

PROBLEMS = {
    "lorenz": dict(u0=[1.0, 0.0, 0.0], t1=100.0, rtol=1e-8, atol=1e-8),
    "robertson": dict(u0=[1.0, 0.0, 0.0], t1=1e5, rtol=1e-6, atol=1e-10),
    "van-der-pol": dict(u0=[2.0, 0.0], t1=VDP_T1, rtol=1e-6, atol=1e-6),
    "ensemble": dict(u0=[1.0, 0.0, 0.0], t1=1e5, rtol=1e-6, atol=1e-10, n=1000, seed=1),
}
ENSEMBLE_SUBSET = 20  # scipy loops over this many members; time is scaled to n
CVODE_ENSEMBLE_SUBSET = 100  # CVODE loops over this many members; time is scaled to n


def lorenz_f(t, u, p=LORENZ_P):
    s, r, b = p
    return np.array([s * (u[1] - u[0]), u[0] * (r - u[2]) - u[1], u[0] * u[1] - b * u[2]])


def rober_f(t, u, k=ROBER_K):
    k1, k2, k3 = k
    return np.array([
        -k1 * u[0] + k3 * u[1] * u[2],
        k1 * u[0] - k2 * u[1] * u[1] - k3 * u[1] * u[2],
        k2 * u[1] * u[1],
    ])


def rober_jac(t, u, k=ROBER_K):
    k1, k2, k3 = k
    return np.array([
        [-k1, k3 * u[2], k3 * u[1]],
        [k1, -2.0 * k2 * u[1] - k3 * u[2], -k3 * u[1]],
        [0.0, 2.0 * k2 * u[1], 0.0],
    ])


def vdp_f(t, u, mu=VDP_MU):
    return np.array([u[1], mu * ((1.0 - u[0] * u[0]) * u[1] - u[0])])


def vdp_jac(t, u, mu=VDP_MU):
    return np.array([[0.0, 1.0], [mu * (-2.0 * u[0] * u[1] - 1.0), mu * (1.0 - u[0] * u[0])]])


def ensemble_rates(n: int, seed: int) -> np.ndarray:
    """(n, 3) rate constants: each of k1, k2, k3 times an independent log-uniform factor in [0.5, 2]."""
    rng = np.random.default_rng(seed)
    fac = np.exp(math.log(2.0) * rng.uniform(-1.0, 1.0, size=(n, 3)))
    return np.asarray(ROBER_K) * fac


# --------------------------------------------------------------------------- timing

class Timer:
    def __init__(self, budget: float, min_repeats: int, max_repeats: int):
        self.budget, self.min_repeats, self.max_repeats = budget, min_repeats, max_repeats

    def run(self, fn, warmup: bool = True):
        """Call fn() repeatedly; return (median seconds, repeats, last result)."""
        if warmup:
            fn()
        times, res = timed_calls(fn, self.budget, self.min_repeats, self.max_repeats)
        return statistics.median(times), len(times), res


def emit(**rec):
    rec.setdefault("rtol", None)
    print(json.dumps(rec), flush=True)


def fl(x):
    return [float(v) for v in np.asarray(x).ravel()]


# --------------------------------------------------------------------------- scipy

def run_scipy(problems, timer: Timer):
    import scipy
    from scipy.integrate import solve_ivp

    ver = scipy.__version__

    def one(name, method, f, jac, pr):
        kw = dict(method=method, rtol=pr["rtol"], atol=pr["atol"])
        if jac is not None:
            kw["jac"] = jac
        return solve_ivp(f, (0.0, pr["t1"]), pr["u0"], **kw)

    def rec(problem, method, secs, reps, sol, pr, **extra):
        emit(peer="scipy", version=ver, problem=problem, solver=method, seconds_median=secs,
             repeats=reps, t_final=float(sol.t[-1]), u_final=fl(sol.y[:, -1]),
             success=bool(sol.success),
             stats=dict(nsteps=int(sol.t.size - 1), nf=int(sol.nfev), njac=int(sol.njev),
                        nlu=int(sol.nlu)),
             rtol=pr["rtol"], atol=pr["atol"], **extra)

    if "lorenz" in problems:
        pr = PROBLEMS["lorenz"]
        for m in ("DOP853", "RK45"):
            s, n, sol = timer.run(lambda: one("lorenz", m, lorenz_f, None, pr), warmup=False)
            rec("lorenz", m, s, n, sol, pr)
    for name, f, jac in (("robertson", rober_f, rober_jac), ("van-der-pol", vdp_f, vdp_jac)):
        if name not in problems:
            continue
        pr = PROBLEMS[name]
        for m in ("Radau", "BDF", "LSODA"):
            s, n, sol = timer.run(lambda: one(name, m, f, jac, pr), warmup=False)
            rec(name, m, s, n, sol, pr, jacobian="analytic")
    if "ensemble" in problems:
        pr = PROBLEMS["ensemble"]
        ks = ensemble_rates(pr["n"], pr["seed"])[:ENSEMBLE_SUBSET]

        def loop():
            out = []
            for k in ks:
                kk = tuple(k)
                out.append(solve_ivp(lambda t, u: rober_f(t, u, kk), (0.0, pr["t1"]), pr["u0"],
                                     method="Radau", jac=lambda t, u: rober_jac(t, u, kk),
                                     rtol=pr["rtol"], atol=pr["atol"]))
            return out

        s, n, sols = timer.run(loop, warmup=False)
        scale = pr["n"] / len(ks)
        emit(peer="scipy", version=ver, problem="ensemble",
             solver=f"Radau (loop, {len(ks)} members x{scale:g})",
             seconds_median=s * scale, repeats=n, subset=len(ks), scaled_to=pr["n"],
             success=all(x.success for x in sols), n_success=sum(x.success for x in sols),
             u_final_members=[fl(x.y[:, -1]) for x in sols],
             stats=dict(nsteps=int(sum(x.t.size - 1 for x in sols) * scale),
                        nf=int(sum(x.nfev for x in sols) * scale)),
             rtol=pr["rtol"], atol=pr["atol"], jacobian="analytic")


# --------------------------------------------------------------------------- diffrax

def run_diffrax(problems, timer: Timer):
    import jax

    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_platforms", "cpu")
    import diffrax
    import jax.numpy as jnp

    ver = f"diffrax {diffrax.__version__}, jax {jax.__version__}"

    def lorenz(t, u, p):
        s, r, b = p
        return jnp.stack([s * (u[1] - u[0]), u[0] * (r - u[2]) - u[1], u[0] * u[1] - b * u[2]])

    def rober(t, u, k):
        return jnp.stack([
            -k[0] * u[0] + k[2] * u[1] * u[2],
            k[0] * u[0] - k[1] * u[1] * u[1] - k[2] * u[1] * u[2],
            k[1] * u[1] * u[1],
        ])

    def vdp(t, u, mu):
        return jnp.stack([u[1], mu * ((1.0 - u[0] * u[0]) * u[1] - u[0])])

    def make(fn, solver, pr, stiff):
        if stiff:  # PID controller as recommended by diffrax for stiff problems
            ctrl = diffrax.PIDController(rtol=pr["rtol"], atol=pr["atol"], pcoeff=0.3, icoeff=0.4)
        else:
            ctrl = diffrax.PIDController(rtol=pr["rtol"], atol=pr["atol"])
        term = diffrax.ODETerm(fn)

        def solve(args):
            sol = diffrax.diffeqsolve(term, solver, t0=0.0, t1=pr["t1"], dt0=None,
                                      y0=jnp.asarray(pr["u0"]), args=args,
                                      saveat=diffrax.SaveAt(t1=True), stepsize_controller=ctrl,
                                      max_steps=1_000_000, throw=False)
            return sol.ys[-1], sol.result == diffrax.RESULTS.successful, sol.stats
        return solve

    def bench(problem, name, solve, args, pr, **extra):
        f = jax.jit(solve)
        t0 = time.perf_counter()
        jax.block_until_ready(f(args))  # compile + first run
        compile_s = time.perf_counter() - t0
        s, n, (y, ok, st) = timer.run(lambda: jax.block_until_ready(f(args)), warmup=False)
        stats = {k: np.asarray(v) for k, v in st.items()}
        return s, n, y, ok, stats, compile_s

    def steps(stats):
        return dict(nsteps=int(np.sum(stats["num_steps"])),
                    naccept=int(np.sum(stats["num_accepted_steps"])),
                    nreject=int(np.sum(stats["num_rejected_steps"])))

    one_cases = []
    if "lorenz" in problems:
        one_cases.append(("lorenz", "Tsit5", lorenz, diffrax.Tsit5(), jnp.asarray(LORENZ_P), False))
    if "robertson" in problems:
        one_cases.append(("robertson", "Kvaerno5", rober, diffrax.Kvaerno5(), jnp.asarray(ROBER_K), True))
    if "van-der-pol" in problems:
        one_cases.append(("van-der-pol", "Kvaerno5", vdp, diffrax.Kvaerno5(), jnp.asarray(VDP_MU), True))
    for problem, sname, fn, solver, args, stiff in one_cases:
        pr = PROBLEMS[problem]
        s, n, y, ok, stats, cs = bench(problem, sname, make(fn, solver, pr, stiff), args, pr)
        emit(peer="diffrax", version=ver, problem=problem, solver=sname + " (jit)",
             seconds_median=s, repeats=n, compile_seconds=cs, t_final=pr["t1"],
             u_final=fl(y), success=bool(ok), stats=steps(stats), rtol=pr["rtol"],
             atol=pr["atol"], jacobian="autodiff")
    if "ensemble" in problems:
        pr = PROBLEMS["ensemble"]
        ks = jnp.asarray(ensemble_rates(pr["n"], pr["seed"]))
        solve = jax.vmap(make(rober, diffrax.Kvaerno5(), pr, True))
        s, n, y, ok, stats, cs = bench("ensemble", "Kvaerno5", solve, ks, pr)
        y = np.asarray(y)
        emit(peer="diffrax", version=ver, problem="ensemble", solver="Kvaerno5 (jit+vmap, 1000)",
             seconds_median=s, repeats=n, compile_seconds=cs, success=bool(np.all(ok)),
             n_success=int(np.sum(ok)), u_final_members=[fl(r) for r in y[:ENSEMBLE_SUBSET]],
             stats=steps(stats), rtol=pr["rtol"], atol=pr["atol"], jacobian="autodiff")


# --------------------------------------------------------------------------- CVODE

def run_cvode(problems, timer: Timer):
    try:
        import sksundae
        from sksundae.cvode import CVODE
    except Exception as exc:  # optional peer
        print(f"peers.py: SUNDIALS binding unavailable ({exc}); skipping CVODE", file=sys.stderr)
        return
    ver = f"scikit-sundae {sksundae.__version__}, SUNDIALS {sksundae.SUNDIALS_VERSION}"

    # sksundae infers "userdata" from the number of parameters, so the callbacks are
    # closures with exactly (t, y, yp) and (t, y, yp, JJ) parameters.
    def rober_fns(k):
        k1, k2, k3 = k

        def rhs(t, y, yp):
            yp[0] = -k1 * y[0] + k3 * y[1] * y[2]
            yp[1] = k1 * y[0] - k2 * y[1] * y[1] - k3 * y[1] * y[2]
            yp[2] = k2 * y[1] * y[1]

        def jac(t, y, yp, JJ):
            JJ[0, 0] = -k1
            JJ[0, 1] = k3 * y[2]
            JJ[0, 2] = k3 * y[1]
            JJ[1, 0] = k1
            JJ[1, 1] = -2.0 * k2 * y[1] - k3 * y[2]
            JJ[1, 2] = -k3 * y[1]
            JJ[2, 0] = 0.0
            JJ[2, 1] = 2.0 * k2 * y[1]
            JJ[2, 2] = 0.0
        return rhs, jac

    def vdp_fns(mu):
        def rhs(t, y, yp):
            yp[0] = y[1]
            yp[1] = mu * ((1.0 - y[0] * y[0]) * y[1] - y[0])

        def jac(t, y, yp, JJ):
            JJ[0, 0] = 0.0
            JJ[0, 1] = 1.0
            JJ[1, 0] = mu * (-2.0 * y[0] * y[1] - 1.0)
            JJ[1, 1] = mu * (1.0 - y[0] * y[0])
        return rhs, jac

    def solve(rhs, jac, pr):
        s = CVODE(rhs, method="BDF", rtol=pr["rtol"], atol=pr["atol"], jacfn=jac,
                  max_num_steps=1_000_000)
        return s.solve(np.array([0.0, pr["t1"]]), np.asarray(pr["u0"], dtype=float))

    for name, (rhs, jac) in (("robertson", rober_fns(ROBER_K)), ("van-der-pol", vdp_fns(VDP_MU))):
        if name not in problems:
            continue
        pr = PROBLEMS[name]
        s, n, sol = timer.run(lambda: solve(rhs, jac, pr), warmup=True)
        emit(peer="cvode", version=ver, problem=name, solver="CVODE BDF", seconds_median=s,
             repeats=n, t_final=float(sol.t[-1]), u_final=fl(sol.y[-1]),
             success=bool(sol.success),
             stats=dict(nsteps=int(sol.t.size - 1), nf=int(sol.nfev), njac=int(sol.njev)),
             rtol=pr["rtol"], atol=pr["atol"], jacobian="analytic")
    if "ensemble" in problems:
        pr = PROBLEMS["ensemble"]
        ks = ensemble_rates(pr["n"], pr["seed"])[:CVODE_ENSEMBLE_SUBSET]

        def loop():
            out = []
            for k in ks:
                out.append(solve(*rober_fns(tuple(float(x) for x in k)), pr))
            return out

        s, n, sols = timer.run(loop, warmup=False)
        scale = pr["n"] / len(ks)
        emit(peer="cvode", version=ver, problem="ensemble",
             solver=f"CVODE BDF (loop, {len(ks)} members x{scale:g})",
             seconds_median=s * scale, repeats=n, subset=len(ks), scaled_to=pr["n"],
             success=all(x.success for x in sols), n_success=sum(bool(x.success) for x in sols),
             u_final_members=[fl(x.y[-1]) for x in sols[:ENSEMBLE_SUBSET]],
             stats=dict(nsteps=int(sum(x.t.size - 1 for x in sols) * scale),
                        nf=int(sum(x.nfev for x in sols) * scale)),
             rtol=pr["rtol"], atol=pr["atol"], jacobian="analytic")


# --------------------------------------------------------------------------- ours (diffsim CLI)

OURS = {  # problem -> (default alg, other algs); the default is first
    "lorenz": ["tsit5", "vern7", "dp5"],
    "robertson": ["rodas5p", "rodas4", "rosenbrock23"],
    "van-der-pol": ["rodas5p", "rodas4", "rosenbrock23"],
    "ensemble": ["rodas5p"],
}
OURS_ARGS = {
    "lorenz": ["--model", "lorenz", "--u0", "1,0,0", "--p", ",".join(repr(x) for x in LORENZ_P)],
    "robertson": ["--model", "robertson", "--u0", "1,0,0", "--p", "0.04,3e7,1e4"],
    "van-der-pol": ["--model", "van-der-pol", "--u0", "2,0", "--p", "1000"],
}


def run_ours(problems, timer: Timer, exe: str):
    """Run `diffsim solve --json` (in-process median of --repeat N) for every case."""
    import os
    import subprocess

    if not exe or not os.access(exe, os.X_OK):
        print(f"peers.py: diffsim binary {exe!r} not found; ours = n/a", file=sys.stderr)
        return

    def call(args, repeat):
        cmd = [exe, "solve", *args, "--repeat", str(repeat), "--json"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr.strip()[:300]}")
        return json.loads(p.stdout.strip().splitlines()[-1])

    def succeeded(code):
        return str(code).lower() in ("success", "ok", "default", "terminated")

    for problem in ("lorenz", "robertson", "van-der-pol", "ensemble"):
        if problem not in problems:
            continue
        pr = PROBLEMS[problem]
        for i, alg in enumerate(OURS[problem]):
            if problem == "ensemble":
                args = ["--model", "robertson", "--alg", alg, "--ensemble", str(pr["n"]),
                        "--seed", str(pr["seed"])]
            else:
                # Save only the end point, as the peers do (diffrax SaveAt(t1=True)).
                args = [*OURS_ARGS[problem], "--alg", alg, "--tspan", f"0,{pr['t1']!r}",
                        "--saveat-times", repr(pr["t1"])]
            args += ["--rtol", repr(pr["rtol"]), "--atol", repr(pr["atol"])]
            try:
                probe = call(args, 1)  # also a warm-up of caches; picks the repeat count
                est = max(float(probe.get("seconds_median", 0.0)), 1e-6)
                reps = int(min(timer.max_repeats * 5, max(timer.min_repeats, timer.budget / est)))
                out = call(args, reps)
            except Exception as exc:
                print(f"peers.py: diffsim {problem}/{alg} failed: {exc}", file=sys.stderr)
                emit(peer="diffsim", problem=problem, solver=alg, default=(i == 0),
                     seconds_median=None, success=False, error=str(exc)[:300])
                continue
            st = out.get("stats", {}) or {}
            rec = dict(peer="diffsim", problem=problem, solver=alg, default=(i == 0),
                       seconds_median=out.get("seconds_median"), repeats=reps,
                       stats={k: st.get(k) for k in ("nsteps", "naccept", "nreject", "nf", "njac", "nlu")},
                       rtol=pr["rtol"], atol=pr["atol"])
            if problem == "ensemble":
                codes = out.get("retcodes", {}) or {}
                nok = sum(int(v) for k, v in codes.items() if succeeded(k))
                rec.update(retcodes=codes, n_success=nok, success=nok == pr["n"])
            else:
                u = out.get("u") or [[]]
                t = out.get("t") or [None]
                rec.update(retcode=out.get("retcode"), success=succeeded(out.get("retcode")),
                           t_final=t[-1], u_final=[float(x) for x in u[-1]])
            emit(**rec)


# --------------------------------------------------------------------------- reference

def run_reference(problems):
    """Tight-tolerance scipy Radau end states (and DOP853 for Lorenz)."""
    from scipy.integrate import solve_ivp

    def ref(f, jac, u0, t1, method="Radau", tol=1e-12, atol=None):
        kw = dict(method=method, rtol=tol, atol=atol if atol is not None else tol)
        if jac is not None:
            kw["jac"] = jac
        sol = solve_ivp(f, (0.0, t1), u0, **kw)
        assert sol.success, sol.message
        return fl(sol.y[:, -1])

    if "lorenz" in problems:
        pr = PROBLEMS["lorenz"]
        # Chaotic: the t=100 state is not reproducible at rtol 1e-8 (errors grow ~e^{0.9 t}),
        # so this is only informative; table.py checks Lorenz for staying on the attractor.
        emit(peer="reference", problem="lorenz", solver="DOP853 rtol=atol=1e-13",
             u_final=ref(lorenz_f, None, pr["u0"], pr["t1"], "DOP853", 1e-13))
    if "robertson" in problems:
        pr = PROBLEMS["robertson"]
        emit(peer="reference", problem="robertson", solver="Radau rtol=1e-12 atol=1e-16",
             u_final=ref(rober_f, rober_jac, pr["u0"], pr["t1"], tol=1e-12, atol=1e-16))
    if "van-der-pol" in problems:
        pr = PROBLEMS["van-der-pol"]
        emit(peer="reference", problem="van-der-pol", solver="Radau rtol=atol=1e-11",
             u_final=ref(vdp_f, vdp_jac, pr["u0"], pr["t1"], tol=1e-11))
    if "ensemble" in problems:
        pr = PROBLEMS["ensemble"]
        ks = ensemble_rates(pr["n"], pr["seed"])[:ENSEMBLE_SUBSET]
        members = []
        for k in ks:
            kk = tuple(k)
            members.append(ref(lambda t, u: rober_f(t, u, kk), lambda t, u: rober_jac(t, u, kk),
                               pr["u0"], pr["t1"], tol=1e-10, atol=1e-14))
        emit(peer="reference", problem="ensemble",
             solver=f"Radau rtol=1e-10 atol=1e-14, first {ENSEMBLE_SUBSET} members (numpy seed 1)",
             u_final_members=members)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="scipy,diffrax,cvode",
                    help="comma list of: diffsim, scipy, diffrax, cvode, reference")
    ap.add_argument("--diffsim", default="", help="path to the diffsim binary (for --only diffsim)")
    ap.add_argument("--problems", default="lorenz,robertson,van-der-pol,ensemble")
    ap.add_argument("--budget", type=float, default=2.0,
                    help="seconds of repeated solving per case (after warm-up)")
    ap.add_argument("--min-repeats", type=int, default=3)
    ap.add_argument("--max-repeats", type=int, default=200)
    a = ap.parse_args(argv)
    problems = set(a.problems.split(","))
    timer = Timer(a.budget, a.min_repeats, a.max_repeats)
    for peer in a.only.split(","):
        try:
            if peer == "scipy":
                run_scipy(problems, timer)
            elif peer == "diffrax":
                run_diffrax(problems, timer)
            elif peer == "cvode":
                run_cvode(problems, timer)
            elif peer == "diffsim":
                run_ours(problems, timer, a.diffsim)
            elif peer == "reference":
                run_reference(problems)
            else:
                ap.error(f"unknown peer {peer}")
        except Exception as exc:  # keep going: one broken peer must not hide the others
            print(f"peers.py: peer {peer} failed: {exc!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
