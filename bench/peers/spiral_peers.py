#!/usr/bin/env python3
"""Spiral neural-ODE benchmark for Python peers: diffrax (JAX + optax) and torchdiffeq (PyTorch).

The problem is the classic spiral of the DiffEqFlux / torchdiffeq / diffrax examples:

    true system   du/dt = ((u.^3)^T A)^T, i.e. du_j = sum_i u_i^3 A[i][j],
                  A = [[-0.1, 2.0], [-2.0, -0.1]], u0 = [2, 0], t in [0, 1.5]
    data          the true solution at linspace(0, 1.5, 30), solved once with scipy DOP853
                  at rtol=1e-13, atol=1e-14 (the same data for every peer)
    model         du/dt = W2 tanh(W1 u.^3 + b1) + b2   (Linear(2,50) -> tanh -> Linear(50,2),
                  252 parameters), initial parameters from numpy default_rng(0) with
                  PyTorch's default Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the same
                  numbers for every peer
    loss          sum over the 30 save times and both components of (pred - data)^2
    solver        diffrax Tsit5 + PIDController; torchdiffeq "dopri5" (torchdiffeq has no
                  Tsit5); rtol=1e-7, atol=1e-9 for the forward (and adjoint) solves

Measurements (one JSON object per line on stdout):

    case "loss_grad"  median seconds of one loss-and-gradient evaluation (after JIT warm-up)
                      diffrax: RecursiveCheckpointAdjoint (default) and BacksolveAdjoint
                      torchdiffeq: odeint (direct backprop) and odeint_adjoint
    case "adam300"    wall time of 300 Adam(lr=0.05) iterations end to end (compilation
                      excluded: the jitted step is compiled on a throw-away call first);
                      torchdiffeq runs fewer and extrapolates if 300 would exceed
                      --train-budget seconds ("extrapolated": true)
    case "forward"    one forward solve: solver steps and function evaluations

Usage:
    bench/peers/.venv/bin/python bench/peers/spiral_peers.py [--only diffrax,torch]
        [--dtypes float64,float32] [--budget 2] [--train-budget 120] [--quick]
    bench/peers/.venv/bin/python bench/peers/spiral_peers.py --table results/spiral.jsonl ...
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

from common import timed_calls

# One thread everywhere (same policy as run.sh / peers.py), unless the caller set otherwise.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

A = np.array([[-0.1, 2.0], [-2.0, -0.1]])
U0 = np.array([2.0, 0.0])
T0, T1, NT = 0.0, 1.5, 30
RTOL, ATOL = 1e-7, 1e-9
HIDDEN = 50
SEED = 0
ADAM_LR = 0.05
ADAM_ITERS = 300


def emit(**rec):
    print(json.dumps(rec), flush=True)


def true_data():
    """(ts, data[30, 2]) from the true system, solved tightly with scipy DOP853."""
    from scipy.integrate import solve_ivp

    ts = np.linspace(T0, T1, NT)
    sol = solve_ivp(lambda t, u: (u ** 3) @ A, (T0, T1), U0, method="DOP853", t_eval=ts,
                    rtol=1e-13, atol=1e-14)
    assert sol.success, sol.message
    return ts, sol.y.T.copy()


def init_params():
    """(W1[50,2], b1[50], W2[2,50], b2[2]) in float64, PyTorch-style uniform init, seeded."""
    rng = np.random.default_rng(SEED)
    k1, k2 = 1.0 / np.sqrt(2.0), 1.0 / np.sqrt(HIDDEN)
    w1 = rng.uniform(-k1, k1, size=(HIDDEN, 2))
    b1 = rng.uniform(-k1, k1, size=(HIDDEN,))
    w2 = rng.uniform(-k2, k2, size=(2, HIDDEN))
    b2 = rng.uniform(-k2, k2, size=(2,))
    return w1, b1, w2, b2


# Parameters after 300 Adam iterations of the first float64 diffrax run (shared with the
# torchdiffeq peer, so that both measure loss+gradient on the same fitted network).
TRAINED = {"params": None, "label": None}


class Timer:
    def __init__(self, budget, min_repeats=3, max_repeats=200):
        self.budget, self.min_repeats, self.max_repeats = budget, min_repeats, max_repeats

    def run(self, fn):
        """Median seconds of fn() over repeats (no warm-up here: callers warm up)."""
        times, res = timed_calls(fn, self.budget, self.min_repeats, self.max_repeats)
        return statistics.median(times), len(times), min(times), res


# --------------------------------------------------------------------------- diffrax

def run_diffrax(dtypes, timer, iters, do_train, ts_np, data_np, adjoints):
    import jax

    jax.config.update("jax_enable_x64", True)
    import diffrax
    import equinox
    import jax.numpy as jnp
    import optax

    ver = (f"diffrax {diffrax.__version__}, jax {jax.__version__}, equinox {equinox.__version__}, "
           f"optax {optax.__version__}")

    def vf(t, u, p):
        w1, b1, w2, b2 = p
        return w2 @ jnp.tanh(w1 @ (u ** 3) + b1) + b2

    term = diffrax.ODETerm(vf)
    solver = diffrax.Tsit5()
    ctrl = diffrax.PIDController(rtol=RTOL, atol=ATOL)
    all_adjoints = {
        "RecursiveCheckpointAdjoint": diffrax.RecursiveCheckpointAdjoint(),
        "BacksolveAdjoint": diffrax.BacksolveAdjoint(),
    }

    for dt in dtypes:
        jdt = {"float64": jnp.float64, "float32": jnp.float32}[dt]
        ts = jnp.asarray(ts_np, dtype=jdt)
        data = jnp.asarray(data_np, dtype=jdt)
        y0 = jnp.asarray(U0, dtype=jdt)
        p0 = tuple(jnp.asarray(x, dtype=jdt) for x in init_params())

        def solve(p, adjoint):
            return diffrax.diffeqsolve(term, solver, t0=ts[0], t1=ts[-1], dt0=None, y0=y0, args=p,
                                       saveat=diffrax.SaveAt(ts=ts), stepsize_controller=ctrl,
                                       adjoint=adjoint, throw=False)

        # Forward solve stats at the initial parameters.
        fwd = jax.jit(lambda p: (lambda s: (s.ys, s.stats, s.result == diffrax.RESULTS.successful))(
            solve(p, all_adjoints["RecursiveCheckpointAdjoint"])))
        jax.block_until_ready(fwd(p0))
        s, n, mn, (ys, st, ok) = timer.run(lambda: jax.block_until_ready(fwd(p0)))
        emit(peer="diffrax", case="forward", dtype=dt, solver="Tsit5", seconds=s, seconds_min=mn,
             repeats=n, num_steps=int(st["num_steps"]), num_accepted_steps=int(st["num_accepted_steps"]),
             num_rejected_steps=int(st["num_rejected_steps"]), success=bool(ok),
             loss=float(jnp.sum((ys - data) ** 2)), rtol=RTOL, atol=ATOL, version=ver)

        vgs = {}
        for aname in adjoints:
            adj = all_adjoints[aname]

            def loss(p, adj=adj):
                return jnp.sum((solve(p, adj).ys - data) ** 2)

            vg = vgs[aname] = jax.jit(jax.value_and_grad(loss))
            t0 = time.perf_counter()
            jax.block_until_ready(vg(p0))
            compile_s = time.perf_counter() - t0
            s, n, mn, (lv, g) = timer.run(lambda: jax.block_until_ready(vg(p0)))
            gnorm = float(np.sqrt(sum(float(jnp.sum(x.astype(jnp.float64) ** 2)) for x in g)))
            emit(peer="diffrax", case="loss_grad", params="init", dtype=dt, solver="Tsit5",
                 adjoint=aname, seconds=s, seconds_min=mn, repeats=n, compile_seconds=compile_s,
                 num_steps=int(st["num_steps"]), loss=float(lv), grad_norm=gnorm, rtol=RTOL,
                 atol=ATOL, version=ver)

            if not do_train:
                continue
            opt = optax.adam(ADAM_LR)

            @jax.jit
            def step(p, st, loss=loss):
                lv, g = jax.value_and_grad(loss)(p)
                upd, st = opt.update(g, st, p)
                return optax.apply_updates(p, upd), st, lv

            def train(n_iter):
                p, st = p0, opt.init(p0)
                for _ in range(n_iter):
                    p, st, lv = step(p, st)
                return jax.block_until_ready((p, lv))

            t0 = time.perf_counter()
            train(1)  # compile
            compile_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            p, last = train(iters)
            wall = time.perf_counter() - t0
            final = float(jax.jit(loss)(p))
            fwd_final = fwd(p)
            emit(peer="diffrax", case=f"adam{iters}", dtype=dt, solver="Tsit5", adjoint=aname,
                 seconds=wall, iterations=iters, iterations_run=iters, extrapolated=False,
                 seconds_per_iteration=wall / iters, compile_seconds=compile_s,
                 loss_initial=float(jax.jit(loss)(p0)), loss_last_iteration=float(last),
                 final_loss=final, num_steps_final=int(fwd_final[1]["num_steps"]),
                 lr=ADAM_LR, rtol=RTOL, atol=ATOL, version=ver)
            if dt == "float64" and aname == "RecursiveCheckpointAdjoint" and TRAINED["params"] is None:
                TRAINED["params"] = tuple(np.asarray(x, dtype=np.float64) for x in p)
                TRAINED["label"] = f"trained (diffrax float64 Tsit5, Adam x{iters})"
                emit(peer="diffrax", case="trained_params", label=TRAINED["label"],
                     shapes=[list(x.shape) for x in TRAINED["params"]],
                     values=[x.ravel().tolist() for x in TRAINED["params"]])

        # Loss and gradient at trained parameters: the fitted spiral needs far more solver
        # steps than the nearly linear dynamics of the random initial network.
        if TRAINED["params"] is not None:
            pt = tuple(jnp.asarray(x, dtype=jdt) for x in TRAINED["params"])
            _, st_t, ok_t = fwd(pt)
            for aname, vg in vgs.items():
                jax.block_until_ready(vg(pt))
                s, n, mn, (lv, g) = timer.run(lambda: jax.block_until_ready(vg(pt)))
                gnorm = float(np.sqrt(sum(float(jnp.sum(x.astype(jnp.float64) ** 2)) for x in g)))
                emit(peer="diffrax", case="loss_grad", params=TRAINED["label"], dtype=dt,
                     solver="Tsit5", adjoint=aname, seconds=s, seconds_min=mn, repeats=n,
                     num_steps=int(st_t["num_steps"]),
                     num_accepted_steps=int(st_t["num_accepted_steps"]),
                     num_rejected_steps=int(st_t["num_rejected_steps"]), success=bool(ok_t),
                     loss=float(lv), grad_norm=gnorm, rtol=RTOL, atol=ATOL, version=ver)


# --------------------------------------------------------------------------- torchdiffeq

def run_torch(dtypes, timer, iters, do_train, train_budget, ts_np, data_np, adjoints):
    import torch
    import torchdiffeq
    from torchdiffeq import odeint, odeint_adjoint

    torch.set_num_threads(1)
    try:
        from importlib.metadata import version as _v
        tdv = _v("torchdiffeq")
    except Exception:
        tdv = getattr(torchdiffeq, "__version__", "?")
    ver = f"torchdiffeq {tdv}, torch {torch.__version__} (1 thread)"

    class Func(torch.nn.Module):
        def __init__(self, dt, values=None):
            super().__init__()
            self.l1 = torch.nn.Linear(2, HIDDEN)
            self.l2 = torch.nn.Linear(HIDDEN, 2)
            w1, b1, w2, b2 = init_params() if values is None else values
            with torch.no_grad():
                for prm, v in ((self.l1.weight, w1), (self.l1.bias, b1), (self.l2.weight, w2),
                               (self.l2.bias, b2)):
                    prm.copy_(torch.as_tensor(np.array(v)))
            self.to(dt)
            self.nfe = 0

        def forward(self, t, u):
            self.nfe += 1
            return self.l2(torch.tanh(self.l1(u ** 3)))

    fns = {"odeint": odeint, "odeint_adjoint": odeint_adjoint}
    for dt in dtypes:
        tdt = {"float64": torch.float64, "float32": torch.float32}[dt]
        ts = torch.as_tensor(ts_np, dtype=tdt)
        data = torch.as_tensor(data_np, dtype=tdt)
        y0 = torch.as_tensor(U0, dtype=tdt)

        f = Func(tdt)
        with torch.no_grad():
            odeint(f, y0, ts, method="dopri5", rtol=RTOL, atol=ATOL)  # warm-up
            f.nfe = 0
            pred = odeint(f, y0, ts, method="dopri5", rtol=RTOL, atol=ATOL)
        nfe = f.nfe

        def fwd():
            with torch.no_grad():
                return odeint(f, y0, ts, method="dopri5", rtol=RTOL, atol=ATOL)

        s, n, mn, _ = timer.run(fwd)
        emit(peer="torchdiffeq", case="forward", dtype=dt, solver="dopri5", seconds=s,
             seconds_min=mn, repeats=n, nfe=nfe,
             num_steps_estimate=(nfe - 2) // 6,  # dopri5: 2 evals to pick dt0, then 6 per step (FSAL)
             loss=float(torch.sum((pred - data) ** 2)), rtol=RTOL, atol=ATOL, version=ver,
             note="torchdiffeq has no Tsit5; dopri5 used")

        def measure_loss_grad(aname, values, label):
            solve = fns[aname]
            f = Func(tdt, values)
            params = list(f.parameters())

            def loss_grad():
                pred = solve(f, y0, ts, method="dopri5", rtol=RTOL, atol=ATOL)
                lv = torch.sum((pred - data) ** 2)
                g = torch.autograd.grad(lv, params)
                return lv, g

            with torch.no_grad():
                f.nfe = 0
                odeint(f, y0, ts, method="dopri5", rtol=RTOL, atol=ATOL)
                nfe_fwd = f.nfe
            loss_grad()  # warm-up
            f.nfe = 0
            loss_grad()
            nfe_lg = f.nfe
            s, n, mn, (lv, g) = timer.run(loss_grad)
            gnorm = float(torch.sqrt(sum(torch.sum(x.double() ** 2) for x in g)))
            emit(peer="torchdiffeq", case="loss_grad", params=label, dtype=dt, solver="dopri5",
                 adjoint=aname, seconds=s, seconds_min=mn, repeats=n, loss=float(lv.detach()),
                 grad_norm=gnorm, nfe=nfe_fwd, num_steps_estimate=(nfe_fwd - 2) // 6,
                 nfe_forward_plus_backward=nfe_lg, rtol=RTOL, atol=ATOL, version=ver,
                 note="torchdiffeq has no Tsit5; dopri5 used")

        for aname in adjoints:
            measure_loss_grad(aname, None, "init")
        if TRAINED["params"] is not None:
            for aname in adjoints:
                measure_loss_grad(aname, TRAINED["params"], TRAINED["label"])

        for aname in adjoints:
            solve = fns[aname]

            if not do_train:
                continue
            f = Func(tdt)
            opt = torch.optim.Adam(f.parameters(), lr=ADAM_LR)
            lv0 = None
            t0 = time.perf_counter()
            done, last, stamps = 0, None, []
            for it in range(iters):
                opt.zero_grad()
                pred = solve(f, y0, ts, method="dopri5", rtol=RTOL, atol=ATOL)
                lv = torch.sum((pred - data) ** 2)
                lv.backward()
                opt.step()
                done, last = it + 1, float(lv.detach())
                if lv0 is None:
                    lv0 = last
                stamps.append(time.perf_counter() - t0)
                if done >= 5 and stamps[-1] > train_budget:
                    break
            wall = stamps[-1]
            extrap = done < iters
            # Iterations get dearer as the fit improves (the random initial network needs ~6
            # solver steps, the fitted spiral ~110), so the remaining iterations are
            # extrapolated at the rate of the last 20 % of those run, not the mean rate.
            tail = max(2, done // 5)
            recent = (stamps[-1] - stamps[-1 - tail]) / tail if done > tail else wall / done
            est = wall + (iters - done) * recent
            rec = dict(peer="torchdiffeq", case=f"adam{iters}", dtype=dt, solver="dopri5",
                       adjoint=aname, seconds=est, iterations=iters,
                       iterations_run=done, extrapolated=extrap,
                       seconds_measured=wall, seconds_per_iteration=wall / done,
                       seconds_per_iteration_recent=recent,
                       seconds_linear_extrapolation=wall / done * iters,
                       loss_initial=lv0, loss_last_iteration=last, lr=ADAM_LR, rtol=RTOL,
                       atol=ATOL, version=ver, note="torchdiffeq has no Tsit5; dopri5 used")
            if not extrap:
                with torch.no_grad():
                    pred = odeint(f, y0, ts, method="dopri5", rtol=RTOL, atol=ATOL)
                rec["final_loss"] = float(torch.sum((pred - data) ** 2))
            else:
                rec["note"] += (f"; only {done} of {iters} iterations run in {train_budget:g} s; "
                                f"time = measured + remaining x per-iteration time of the last "
                                f"{tail} iterations")
            emit(**rec)


# --------------------------------------------------------------------------- table

def table(paths):
    recs = []
    for p in paths:
        with open(p) as fh:
            recs += [json.loads(x) for x in fh if x.strip().startswith("{")]
    out = ["| peer | case | dtype | method / adjoint | time | steps / nfe | loss |",
           "|---|---|---|---|---:|---|---|"]
    for r in recs:
        if r.get("case") in (None, "data", "trained_params", "init_params"):
            continue
        sec = r.get("seconds")
        if sec is None:
            tm = "n/a"
        elif sec < 1:
            tm = f"{sec * 1e3:.3g} ms"
        else:
            tm = f"{sec:.3g} s" + (" (extrapolated)" if r.get("extrapolated") else "")
        meth = r.get("solver", "") + (" / " + r["adjoint"] if r.get("adjoint") else "")
        if r.get("params"):
            meth += ", " + ("trained params" if r["params"].startswith("trained") else r["params"] + " params")
        if r.get("threads") is not None:
            meth += f", {r['threads']} thr"
        if "batch" in r:
            meth = f"{r.get('net')} batch {r['batch']}, {r.get('threads')} thr"
        steps = ""
        if "num_steps" in r:
            steps = str(r["num_steps"])
            if r.get("num_accepted_steps") is not None:
                steps += f" ({r['num_accepted_steps']}+{r['num_rejected_steps']}r)"
        elif "nfe" in r:
            steps = f"~{r.get('num_steps_estimate')} (nfe {r['nfe']})"
        elif "nfe_forward_plus_backward" in r:
            steps = f"nfe {r['nfe_forward_plus_backward']} (fwd+bwd)"
        elif "num_steps_final" in r:
            steps = f"{r['num_steps_final']} at end"
        loss = r.get("final_loss", r.get("loss"))
        loss = "" if loss is None else f"{loss:.4g}" + (" (final)" if "final_loss" in r else "")
        if r.get("extrapolated"):
            loss = f"{r.get('loss_last_iteration'):.4g} at it. {r.get('iterations_run')}"
        out.append(f"| {r['peer']} | {r['case']} | {r.get('dtype', '')} | {meth} | {tm} | {steps} | {loss} |")
    print("\n".join(out))
    ratios(recs)


# Which diffsim method answers which peer adjoint (same idea: store and differentiate the
# discrete steps; or solve u backwards with the adjoint).
COUNTERPARTS = {"RecursiveCheckpointAdjoint": ("discrete-checkpointing", "checkpointing"),
                "BacksolveAdjoint": ("backsolve",), "odeint": ("discrete",),
                "odeint_adjoint": ("backsolve",)}


def ratios(recs):
    """Ratios ours / theirs for loss+gradient at the same parameters (float64)."""
    grads = [r for r in recs if r.get("case") == "loss_grad" and r.get("dtype") == "float64"
             and r.get("seconds")]
    ours = [r for r in grads if r["peer"] == "diffsim"]
    if not ours:
        return
    def plabel(r):
        return "init" if r.get("params") == "init" else "trained"
    out = ["", "Loss+gradient, float64, ratio = diffsim / peer (below 1: diffsim faster)", "",
           "| params | peer adjoint | peer time | diffsim method | diffsim time | ratio | loss (peer / diffsim) |",
           "|---|---|---:|---|---:|---:|---|"]
    for theirs in [r for r in grads if r["peer"] != "diffsim"]:
        mine = [r for r in ours if plabel(r) == plabel(theirs)]
        cands = [r for r in mine if r["adjoint"].split(",")[0] in COUNTERPARTS.get(theirs["adjoint"], ())]
        best = min(mine, key=lambda r: r["seconds"], default=None)
        for r in sorted({id(x): x for x in cands + ([best] if best else [])}.values(), key=lambda r: r["seconds"]):
            out.append(f"| {plabel(theirs)} | {theirs['peer']} {theirs['adjoint']} | {theirs['seconds'] * 1e3:.3g} ms "
                       f"| {r['adjoint']} | {r['seconds'] * 1e3:.3g} ms | {r['seconds'] / theirs['seconds']:.2g} "
                       f"| {theirs.get('loss', float('nan')):.6g} / {r.get('loss', float('nan')):.6g} |")
    adam = [r for r in recs if str(r.get("case", "")).startswith("adam") and r.get("dtype") == "float64"
            and r.get("seconds")]
    mine = [r for r in adam if r["peer"] == "diffsim"]
    if mine:
        out += ["", "300 Adam(0.05) iterations from the same initial network, float64", "",
                "| peer | time | diffsim time | ratio | final loss (peer / diffsim) |", "|---|---:|---:|---:|---|"]
        for theirs in [r for r in adam if r["peer"] != "diffsim"]:
            m = mine[0]
            extra = " (extrapolated)" if theirs.get("extrapolated") else ""
            out.append(f"| {theirs['peer']} {theirs.get('adjoint', '')} | {theirs['seconds']:.3g} s{extra} "
                       f"| {m['seconds']:.3g} s | {m['seconds'] / theirs['seconds']:.2g} "
                       f"| {theirs.get('final_loss', theirs.get('loss_last_iteration', float('nan'))):.4g} "
                       f"/ {m.get('final_loss', float('nan')):.4g} |")
    print("\n".join(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="diffrax,torch", help="comma list of: diffrax, torch")
    ap.add_argument("--dtypes", default="float64,float32", help="comma list of float64, float32")
    ap.add_argument("--adjoints", default="",
                    help="restrict adjoints (comma list of RecursiveCheckpointAdjoint, "
                         "BacksolveAdjoint, odeint, odeint_adjoint); default all")
    ap.add_argument("--budget", type=float, default=2.0,
                    help="seconds of repeated loss+gradient calls per case (after warm-up)")
    ap.add_argument("--min-repeats", type=int, default=3)
    ap.add_argument("--max-repeats", type=int, default=200)
    ap.add_argument("--iters", type=int, default=ADAM_ITERS, help="Adam iterations")
    ap.add_argument("--train-budget", type=float, default=120.0,
                    help="torchdiffeq: stop the Adam loop after this many seconds and "
                         "extrapolate the rest")
    ap.add_argument("--no-train", action="store_true", help="skip the Adam loops")
    ap.add_argument("--trained-params", metavar="JSONL",
                    help="take the trained parameters (case trained_params) from an earlier "
                         "run's output instead of training diffrax first (for --only torch)")
    ap.add_argument("--quick", action="store_true",
                    help="budget 0.3 s, float64 only, torchdiffeq train budget 20 s")
    ap.add_argument("--table", nargs="+", metavar="JSONL",
                    help="print a markdown table of earlier results and exit")
    a = ap.parse_args(argv)
    if a.table:
        table(a.table)
        return
    if a.quick:
        a.budget, a.dtypes, a.train_budget = 0.3, "float64", 20.0
    timer = Timer(a.budget, a.min_repeats, a.max_repeats)
    dtypes = a.dtypes.split(",")
    ts, data = true_data()
    emit(peer="reference", case="data", solver="scipy DOP853 rtol=1e-13 atol=1e-14",
         t=list(map(float, ts)), u_last=list(map(float, data[-1])), n_params=4 * HIDDEN + HIDDEN + 2,
         data=data.tolist())
    p_init = init_params()
    emit(peer="reference", case="init_params", label="init", shapes=[list(x.shape) for x in p_init],
         values=[x.ravel().tolist() for x in p_init])
    if a.trained_params:
        with open(a.trained_params) as fh:
            for line in fh:
                r = json.loads(line) if line.strip().startswith("{") else {}
                if r.get("case") == "trained_params":
                    TRAINED["params"] = tuple(np.array(v, dtype=np.float64).reshape(sh)
                                              for v, sh in zip(r["values"], r["shapes"]))
                    TRAINED["label"] = r["label"]
        if TRAINED["params"] is None:
            ap.error(f"no trained_params record in {a.trained_params}")
    want = set(a.adjoints.split(",")) if a.adjoints else None

    def pick(names):
        return [x for x in names if want is None or x in want]

    for peer in a.only.split(","):
        try:
            if peer == "diffrax":
                run_diffrax(dtypes, timer, a.iters, not a.no_train, ts, data,
                            pick(["RecursiveCheckpointAdjoint", "BacksolveAdjoint"]))
            elif peer == "torch":
                run_torch(dtypes, timer, a.iters, not a.no_train, a.train_budget, ts, data,
                          pick(["odeint", "odeint_adjoint"]))
            else:
                ap.error(f"unknown peer {peer}")
        except Exception as exc:  # keep going: one broken peer must not hide the others
            print(f"spiral_peers.py: peer {peer} failed: {exc!r}", file=sys.stderr)


if __name__ == "__main__":
    main()
