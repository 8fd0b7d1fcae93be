#!/usr/bin/env python3
"""Loss-and-gradient benchmark: diffsim (CLI) vs diffrax (JAX) and torchdiffeq (PyTorch).

Every case measures the median wall time of ONE evaluation of a loss and its gradient with
respect to both the parameters p and the initial state u0, after JIT compilation / warm-up,
in float64, on one thread. The problems are those of diffsim's own `gradient_table` bench program
(crates/diffsim-examples/benches/gradient_table.rs):

    lorenz           u0=[1,0,0], p=[10,28,8/3], t in [0,1], saved at 0,0.1,..,1 (11 times,
                     t0 included), rtol=atol=1e-8, loss = 1/2 sum of squares of every
                     saved value.  diffsim tsit5; diffrax Tsit5; torchdiffeq dopri5.
    robertson        u0=[1,0,0], k=[0.04,3e7,1e4], t in [0,40], saved at 0.4, 4, 40,
                     rtol=1e-6, atol=1e-10, loss = 1/2 sum of squares (a plain sum is
                     conserved: u1+u2+u3 = 1).
                     diffsim rodas5p; diffrax Kvaerno5; torchdiffeq dopri5 (explicit: tried
                     with a time limit, expected to fail).
    brusselator-N    1-D Brusselator by the method of lines, N = 64 and 128 interior points
                     (2N states interleaved u1,v1,u2,v2,..), p=[A,B,alpha]=[1,3,0.02],
                     u(x,0)=1+sin(2 pi x), v(x,0)=3, x_i=i/(N+1), u=1 and v=3 at both ends,
                     t in [0,2], saved at 0,0.5,1,1.5,2, rtol=1e-6, atol=1e-8, loss = sum.
                     diffsim rodas5p; diffrax Kvaerno5; torchdiffeq dopri5 (tried).

How each peer is measured:

    diffsim      `BIN grad --model M --alg A --tspan .. --u0 .. --p .. --saveat-times ..
                 --rtol --atol --loss --sensealg S --repeat N --json`: an in-process median
                 of N calls (after a `--repeat 1` probe that picks N). Also one
                 `BIN solve` with the same settings, whose saved states are compared with
                 the peers' (a check that the problem is the same).
    diffrax      jax.jit(jax.value_and_grad(loss, argnums=(p, u0))), compiled ahead of the
                 timing (compile time in `compile_seconds`); PIDController(rtol, atol)
                 (pcoeff=0.3, icoeff=0.4 for Kvaerno5, as diffrax recommends for stiff
                 problems, and as peers.py does); dt0=None; default max_steps (4096);
                 RecursiveCheckpointAdjoint() and BacksolveAdjoint().
    torchdiffeq  odeint (backpropagation through the solver) and odeint_adjoint (continuous
                 adjoint solved backwards), then torch.autograd.grad w.r.t. p and u0;
                 method dopri5 (torchdiffeq has no Tsit5 and no stiff adaptive method).

Every peer case runs in its own child process with time limits (`--compile-timeout` for
JIT compilation, `--timeout` for the first loss+gradient call); a case over its limit is
killed and reported as failed, with the reason.

Output: one JSON object per line on stdout. `--table FILE...` prints one markdown table per
problem (with loss/gradient/state differences vs diffsim and ratios ours/theirs).

Usage:
    bench/peers/.venv/bin/python bench/peers/gradient_peers.py --diffsim BIN [--budget 2]
        [--only diffsim,diffrax,torch,lorenz,robertson,brusselator-64,brusselator-128]
        [--quick] > results/gradients.jsonl
    bench/peers/.venv/bin/python bench/peers/gradient_peers.py --table results/gradients.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time

from common import load_jsonl, timed_calls

# One thread everywhere (same policy as run.sh / peers.py), unless the caller set otherwise.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# --------------------------------------------------------------------------- problems

def brusselator_u0(n):
    dx = 1.0 / (n + 1.0)
    out = []
    for i in range(n):
        out += [1.0 + math.sin(2.0 * math.pi * (i + 1.0) * dx), 3.0]
    return out


STIFF_OURS = ["forward", "discrete", "discrete-checkpointing", "interpolating", "checkpointing",
              "quadrature"]
PROBLEMS = {
    "lorenz": dict(
        title="Lorenz, t∈[0,1], 11 saved times (t=0 included), rtol=atol=1e-8, loss ½Σu², Tsit5 (torchdiffeq: dopri5)",
        model="lorenz", u0=[1.0, 0.0, 0.0], p=[10.0, 28.0, 8.0 / 3.0], t0=0.0, t1=1.0,
        saveat=[round(0.1 * i, 10) for i in range(11)], rtol=1e-8, atol=1e-8, loss="sumsq",
        stiff=False, alg="tsit5", diffrax_solver="Tsit5",
        ours=["forward-ad", "discrete", "discrete-checkpointing", "interpolating", "checkpointing",
              "quadrature", "backsolve", "forward"],
        diffrax=["RecursiveCheckpointAdjoint", "BacksolveAdjoint"],
        torch=["odeint", "odeint_adjoint"]),
    "robertson": dict(
        title="Robertson, t∈[0,40], saved at 0.4, 4, 40, rtol=1e-6 atol=1e-10, loss ½Σu², Rodas5P / Kvaerno5",
        model="robertson", u0=[1.0, 0.0, 0.0], p=[0.04, 3e7, 1e4], t0=0.0, t1=40.0,
        saveat=[0.4, 4.0, 40.0], rtol=1e-6, atol=1e-10, loss="sumsq", stiff=True, alg="rodas5p",
        diffrax_solver="Kvaerno5", ours=STIFF_OURS,
        diffrax=["RecursiveCheckpointAdjoint", "BacksolveAdjoint"],
        torch=["odeint"],
        note=("The loss is ½Σu², not Σu: u1+u2+u3 is conserved, so Σu would be 3 for any p "
              "with dL/dp = 0. torchdiffeq's odeint_adjoint is not tried: it needs the same "
              "forward dopri5 solve as odeint.")),
}
for _n in (64, 128):
    PROBLEMS[f"brusselator-{_n}"] = dict(
        title=(f"Brusselator N={_n} ({2 * _n} states), t∈[0,2], saved at 0,0.5,1,1.5,2, rtol=1e-6 "
               "atol=1e-8, loss Σu, Rodas5P / Kvaerno5"),
        model=f"brusselator-{_n}", bruss_n=_n, u0=brusselator_u0(_n), p=[1.0, 3.0, 0.02], t0=0.0,
        t1=2.0, saveat=[0.0, 0.5, 1.0, 1.5, 2.0], rtol=1e-6, atol=1e-8, loss="sum", stiff=True,
        alg="rodas5p", diffrax_solver="Kvaerno5",
        ours=STIFF_OURS[1:],  # forward sensitivities refuse a 2N(3+2N)-state stiff system
        diffrax=["RecursiveCheckpointAdjoint", "BacksolveAdjoint"],
        torch=["odeint", "odeint_adjoint"])
ORDER = list(PROBLEMS)
REFERENCE_METHOD = "discrete"  # the diffsim row the others are compared with


def emit(**rec):
    if "event" not in rec:
        rec.setdefault("at", time.strftime("%Y-%m-%dT%H:%M:%S"))  # to match against machine load
    print(json.dumps(rec), flush=True)


def fl(xs):
    return [float(x) for x in xs]


class Timer:
    def __init__(self, budget, min_repeats=3, max_repeats=200):
        self.budget, self.min_repeats, self.max_repeats = budget, min_repeats, max_repeats

    def run(self, fn):
        """(median, min, repeats, last result) of fn() over repeats; callers warm up first."""
        times, res = timed_calls(fn, self.budget, self.min_repeats, self.max_repeats)
        return statistics.median(times), min(times), len(times), res


# --------------------------------------------------------------------------- diffsim (CLI)

def ours_args(pr):
    j = lambda xs: ",".join(repr(float(x)) for x in xs)  # noqa: E731
    return ["--model", pr["model"], "--alg", pr["alg"], "--tspan", f"{pr['t0']!r},{pr['t1']!r}",
            "--u0", j(pr["u0"]), "--p", j(pr["p"]), "--saveat-times", j(pr["saveat"]),
            "--rtol", repr(pr["rtol"]), "--atol", repr(pr["atol"])]


def run_ours(problems, timer, exe, methods, call_timeout):
    if not exe or not os.access(exe, os.X_OK):
        print(f"gradient_peers.py: diffsim binary {exe!r} not found; ours = n/a", file=sys.stderr)
        for name in problems:
            emit(peer="diffsim", problem=name, method="(all)", success=False,
                 error=f"n/a: no diffsim binary at {exe!r}")
        return

    def call(args, timeout):
        cmd = [exe, *args, "--json"]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"exit {p.returncode}: {(p.stderr or p.stdout).strip()[:300]}")
        return json.loads(p.stdout.strip().splitlines()[-1])

    for name in problems:
        pr = PROBLEMS[name]
        base = ours_args(pr)
        # The saved states, to check that the peers solve the same problem.
        try:
            sol = call(["solve", *base], call_timeout)
            emit(peer="diffsim", problem=name, case="states", solver=pr["alg"], t=sol.get("t"),
                 ys=sol.get("u"), retcode=sol.get("retcode"), stats=sol.get("stats"))
        except Exception as exc:
            print(f"gradient_peers.py: diffsim solve {name} failed: {exc}", file=sys.stderr)
        for m in pr["ours"]:
            if methods and m not in methods:
                continue
            args = ["grad", *base, "--loss", pr["loss"], "--sensealg", m]
            try:
                probe = call([*args, "--repeat", "3"], call_timeout)  # warm-up; picks N
                est = max(float(probe.get("seconds_median") or 0.0), 1e-6)
                reps = int(min(timer.max_repeats * 5, max(timer.min_repeats, timer.budget / est)))
                out = call([*args, "--repeat", str(reps)], call_timeout + reps * est * 3)
            except Exception as exc:
                print(f"gradient_peers.py: diffsim {name}/{m} failed: {exc}", file=sys.stderr)
                emit(peer="diffsim", problem=name, method=m, solver=pr["alg"], success=False,
                     error=str(exc)[:300])
                continue
            st = out.get("stats") or {}
            emit(peer="diffsim", problem=name, method=out.get("sensealg", m), requested=m,
                 solver=pr["alg"], vjp=out.get("vjp"), seconds=out.get("seconds_median"),
                 repeats=reps, loss=out.get("loss"), grad_p=out.get("grad_p"),
                 grad_u0=out.get("grad_u0"), success=True,
                 steps={"naccept": st.get("naccept"), "nreject": st.get("nreject")},
                 stats=st, rtol=pr["rtol"], atol=pr["atol"])


# --------------------------------------------------------------------------- diffrax (worker)

def worker_diffrax(name, method, timer, progress):
    import jax

    jax.config.update("jax_enable_x64", True)
    import diffrax
    import jax.numpy as jnp

    ver = f"diffrax {diffrax.__version__}, jax {jax.__version__}"
    pr = PROBLEMS[name]

    if name == "lorenz":
        def f(t, u, p):
            return jnp.stack([p[0] * (u[1] - u[0]), u[0] * (p[1] - u[2]) - u[1],
                              u[0] * u[1] - p[2] * u[2]])
    elif name == "robertson":
        def f(t, u, k):
            return jnp.stack([-k[0] * u[0] + k[2] * u[1] * u[2],
                              k[0] * u[0] - k[1] * u[1] * u[1] - k[2] * u[1] * u[2],
                              k[1] * u[1] * u[1]])
    else:
        n = pr["bruss_n"]
        inv_dx2 = (n + 1.0) ** 2  # 1 / dx^2 with dx = 1 / (n + 1)
        one, three = jnp.ones(1), jnp.full(1, 3.0)

        def f(t, y, p):
            a, b, alpha = p[0], p[1], p[2]
            c = alpha * inv_dx2
            u, v = y[0::2], y[1::2]
            ue, ve = jnp.concatenate([one, u, one]), jnp.concatenate([three, v, three])
            uuv = u * u * v
            du = a + uuv - (b + 1.0) * u + c * (ue[:-2] - 2.0 * u + ue[2:])
            dv = b * u - uuv + c * (ve[:-2] - 2.0 * v + ve[2:])
            return jnp.stack([du, dv], axis=1).reshape(-1)

    if pr["stiff"]:
        solver = diffrax.Kvaerno5()
        ctrl = diffrax.PIDController(rtol=pr["rtol"], atol=pr["atol"], pcoeff=0.3, icoeff=0.4)
    else:
        solver = diffrax.Tsit5()
        ctrl = diffrax.PIDController(rtol=pr["rtol"], atol=pr["atol"])
    adjoint = {"RecursiveCheckpointAdjoint": diffrax.RecursiveCheckpointAdjoint,
               "BacksolveAdjoint": diffrax.BacksolveAdjoint}[method]()
    ts = jnp.asarray(pr["saveat"])
    term = diffrax.ODETerm(f)

    def loss(p, u0):
        sol = diffrax.diffeqsolve(term, solver, t0=pr["t0"], t1=pr["t1"], dt0=None, y0=u0, args=p,
                                  saveat=diffrax.SaveAt(ts=ts), stepsize_controller=ctrl,
                                  adjoint=adjoint, throw=False)
        ys = sol.ys
        val = 0.5 * jnp.sum(ys * ys) if pr["loss"] == "sumsq" else jnp.sum(ys)
        return val, (ys, sol.stats, sol.result == diffrax.RESULTS.successful)

    p0, u0 = jnp.asarray(pr["p"]), jnp.asarray(pr["u0"])
    t0 = time.perf_counter()
    vg = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)).lower(p0, u0).compile()
    compile_s = time.perf_counter() - t0
    progress("compiled", compile_s)
    t0 = time.perf_counter()
    jax.block_until_ready(vg(p0, u0))
    progress("warm", time.perf_counter() - t0)
    s, mn, n, ((lv, (ys, st, ok)), (gp, gu0)) = timer.run(lambda: jax.block_until_ready(vg(p0, u0)))
    rec = dict(peer="diffrax", problem=name, method=method, solver=pr["diffrax_solver"],
               seconds=s, seconds_min=mn, repeats=n, compile_seconds=compile_s,
               loss=float(lv), grad_p=fl(gp), grad_u0=fl(gu0), ys=[fl(y) for y in ys],
               success=bool(ok),
               steps={"naccept": int(st["num_accepted_steps"]), "nreject": int(st["num_rejected_steps"])},
               rtol=pr["rtol"], atol=pr["atol"], version=ver)
    if not ok:
        rec["error"] = "diffrax returned an unsuccessful result (e.g. max_steps reached)"
    emit(**rec)


# --------------------------------------------------------------------------- torchdiffeq (worker)

def worker_torch(name, method, timer, progress, call_timeout):
    import torch
    from torchdiffeq import odeint, odeint_adjoint

    torch.set_num_threads(1)
    try:
        from importlib.metadata import version as _v
        tdv = _v("torchdiffeq")
    except Exception:
        tdv = "?"
    ver = f"torchdiffeq {tdv}, torch {torch.__version__} (1 thread)"
    pr = PROBLEMS[name]
    dt = torch.float64

    if name == "lorenz":
        def f(u, p):
            return torch.stack([p[0] * (u[1] - u[0]), u[0] * (p[1] - u[2]) - u[1],
                                u[0] * u[1] - p[2] * u[2]])
    elif name == "robertson":
        def f(u, k):
            return torch.stack([-k[0] * u[0] + k[2] * u[1] * u[2],
                                k[0] * u[0] - k[1] * u[1] * u[1] - k[2] * u[1] * u[2],
                                k[1] * u[1] * u[1]])
    else:
        n = pr["bruss_n"]
        inv_dx2 = (n + 1.0) ** 2
        one, three = torch.ones(1, dtype=dt), torch.full((1,), 3.0, dtype=dt)

        def f(y, p):
            a, b, alpha = p[0], p[1], p[2]
            c = alpha * inv_dx2
            u, v = y[0::2], y[1::2]
            ue, ve = torch.cat([one, u, one]), torch.cat([three, v, three])
            uuv = u * u * v
            du = a + uuv - (b + 1.0) * u + c * (ue[:-2] - 2.0 * u + ue[2:])
            dv = b * u - uuv + c * (ve[:-2] - 2.0 * v + ve[2:])
            return torch.stack([du, dv], dim=1).reshape(-1)

    class Rhs(torch.nn.Module):
        """p is the module's only parameter (odeint_adjoint takes gradients w.r.t. those)."""

        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.tensor(pr["p"], dtype=dt))
            self.nfe, self.t_last, self.deadline, self.phase = 0, None, None, "forward"

        def forward(self, t, u):
            self.nfe += 1
            self.t_last = float(t.detach())
            if self.deadline is not None and time.perf_counter() > self.deadline:
                raise TimeoutError("time limit")
            return f(u, self.p)

    rhs = Rhs()
    u0 = torch.tensor(pr["u0"], dtype=dt, requires_grad=True)
    with_t0 = pr["saveat"][0] != pr["t0"]  # odeint's first time is the initial time
    ts = torch.tensor(([pr["t0"]] if with_t0 else []) + pr["saveat"], dtype=dt)
    solve = {"odeint": odeint, "odeint_adjoint": odeint_adjoint}[method]
    opts = dict(max_num_steps=200_000)

    def loss_grad():
        rhs.nfe, rhs.phase = 0, "forward"
        ys = solve(rhs, u0, ts, rtol=pr["rtol"], atol=pr["atol"], method="dopri5", options=opts)
        rhs.phase = "backward (adjoint)" if method == "odeint_adjoint" else "backward"
        if with_t0:
            ys = ys[1:]
        lv = 0.5 * torch.sum(ys * ys) if pr["loss"] == "sumsq" else torch.sum(ys)
        nfe_fwd = rhs.nfe
        gp, gu0 = torch.autograd.grad(lv, [rhs.p, u0])
        return lv.detach(), gp, gu0, ys.detach(), nfe_fwd

    progress("compiled", 0.0)
    rhs.nfe, rhs.deadline = 0, time.perf_counter() + call_timeout
    t0 = time.perf_counter()
    try:
        _, _, _, _, nfe_fwd = loss_grad()
    except (TimeoutError, AssertionError) as exc:
        why = "time limit" if isinstance(exc, TimeoutError) else str(exc)
        if why.startswith("underflow in dt"):
            why = f"step size underflow, dt={float(why.split()[-1]):.1e}"
        emit(peer="torchdiffeq", problem=name, method=method, solver="dopri5", success=False,
             error=(f"n/a: dopri5 gave up in the {rhs.phase} solve ({why}) after "
                    f"{time.perf_counter() - t0:.0f} s, at t={rhs.t_last:.3g} (span "
                    f"[{pr['t0']:g}, {pr['t1']:g}]), {rhs.nfe} f evaluations"),
             rtol=pr["rtol"], atol=pr["atol"], version=ver)
        return
    nfe_total = rhs.nfe
    progress("warm", time.perf_counter() - t0)
    rhs.deadline = None
    s, mn, n, (lv, gp, gu0, ys, _) = timer.run(loss_grad)
    emit(peer="torchdiffeq", problem=name, method=method, solver="dopri5", seconds=s,
         seconds_min=mn, repeats=n, loss=float(lv), grad_p=fl(gp), grad_u0=fl(gu0),
         ys=[fl(y) for y in ys], success=True,
         # dopri5: 2 evaluations pick dt0, then 6 per step (FSAL); rejected steps included
         steps={"nfe": nfe_fwd, "nfe_fwd_bwd": nfe_total, "approx_steps": max(nfe_fwd - 2, 0) // 6},
         rtol=pr["rtol"], atol=pr["atol"], version=ver,
         note="torchdiffeq has no Tsit5 / no stiff adaptive method; dopri5 used")


# --------------------------------------------------------------------------- child processes

def run_isolated(peer, name, method, a):
    """Run one peer case in a child process with time limits; forward its JSON record."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", f"{peer}:{name}:{method}",
           "--budget", repr(a.budget), "--min-repeats", str(a.min_repeats),
           "--max-repeats", str(a.max_repeats), "--timeout", repr(a.timeout)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=sys.stderr, text=True,
                            start_new_session=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout] + [lines.put(None)],
                     daemon=True).start()
    t_stage = time.perf_counter()
    deadline, stage, limit = t_stage + a.compile_timeout, "start-up and JIT compilation", a.compile_timeout
    pr = PROBLEMS[name]
    solver = pr["diffrax_solver"] if peer == "diffrax" else "dopri5"
    peer_name = "torchdiffeq" if peer == "torch" else peer
    got = False
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.perf_counter()))
        except queue.Empty:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            waited = time.perf_counter() - t_stage
            emit(peer=peer_name, problem=name, method=method, solver=solver, success=False,
                 error=f"n/a: killed after {waited:.0f} s in {stage} (limit {limit:g} s)",
                 rtol=pr["rtol"], atol=pr["atol"])
            return
        if line is None:
            break
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        ev = rec.get("event")
        if ev == "compiled":
            # torchdiffeq workers stop themselves at the limit and say where they got to;
            # the grace period lets them report before they are killed.
            t_stage, stage, limit = time.perf_counter(), "the first loss+gradient call", a.timeout
            deadline = t_stage + a.timeout + (15 if peer == "torch" else 0)
        elif ev == "warm":
            per = rec["seconds"]
            limit = 2 * max(a.budget, a.min_repeats * per) + 60
            t_stage, stage = time.perf_counter(), "timing"
            deadline = t_stage + limit
        else:
            if ev is None:
                got = True
                print(line.rstrip("\n"), flush=True)
    proc.wait()
    if not got:
        emit(peer=peer_name, problem=name, method=method, solver=solver, success=False,
             error=f"n/a: worker exited with status {proc.returncode} (see stderr)",
             rtol=pr["rtol"], atol=pr["atol"])


def worker_main(a):
    peer, name, method = a.worker.split(":")

    def progress(event, seconds):
        emit(event=event, seconds=seconds)

    timer = Timer(a.budget, a.min_repeats, a.max_repeats)
    try:
        if peer == "diffrax":
            worker_diffrax(name, method, timer, progress)
        else:
            worker_torch(name, method, timer, progress, a.timeout)
    except Exception as exc:  # report, do not hide
        pr = PROBLEMS[name]
        emit(peer="torchdiffeq" if peer == "torch" else peer, problem=name, method=method,
             solver=pr["diffrax_solver"] if peer == "diffrax" else "dopri5", success=False,
             error=f"failed: {type(exc).__name__}: {str(exc)[:300]}",
             rtol=pr["rtol"], atol=pr["atol"])


# --------------------------------------------------------------------------- table

COUNTERPARTS = {  # peer method -> diffsim methods that do the same kind of work
    "RecursiveCheckpointAdjoint": ["discrete", "discrete-checkpointing", "checkpointing"],
    "BacksolveAdjoint": ["backsolve"],
    "odeint": ["forward-ad", "discrete"],
    "odeint_adjoint": ["backsolve"],
}
# Stiff problems have no diffsim backsolve (reversing a stiff solve is unstable); the
# continuous adjoints that keep the forward solution stand in for it.
CONTINUOUS_STANDIN = ["interpolating", "quadrature"]


def load(paths):
    return load_jsonl(paths, "gradient_peers.py")


def fmt_ms(sec):
    if sec is None:
        return "n/a"
    ms = sec * 1e3
    return f"{ms:.3g}" if ms < 1000 else f"{ms:,.0f}"


def rel(a, b):
    """max |a - b| / max |b| over flattened lists (None if either is missing)."""
    if a is None or b is None:
        return None
    fa = [x for row in a for x in (row if isinstance(row, list) else [row])]
    fb = [x for row in b for x in (row if isinstance(row, list) else [row])]
    if len(fa) != len(fb) or not fb:
        return None
    scale = max(abs(x) for x in fb) or 1.0
    return max(abs(x - y) for x, y in zip(fa, fb)) / scale


def fmt_rel(x):
    if x is None:
        return "–"
    if x == 0:
        return "0"
    return f"{x:.1e}"


def steps_str(r):
    st = r.get("steps") or {}
    if "naccept" in st and st["naccept"] is not None:
        return f"{st['naccept']} (+{st.get('nreject', 0)})"
    if "nfe" in st:
        return f"~{st['approx_steps']} (nfe {st['nfe']})"
    return ""


def table(paths):
    recs = load(paths)
    out = []
    for name in ORDER:
        rows = [r for r in recs if r.get("problem") == name and r.get("case") is None]
        if not rows:
            continue
        pr = PROBLEMS[name]
        # Several runs of the same case (several files, or appended re-runs): keep the
        # successful one with the smallest median, i.e. the least disturbed by other load.
        uniq, nruns = {}, {}
        for r in rows:
            k = (r["peer"], r.get("method"))
            nruns[k] = nruns.get(k, 0) + 1
            old = uniq.get(k)
            if (old is None or (r.get("success") and not old.get("success"))
                    or (not r.get("success") and not old.get("success"))  # latest failure
                    or (r.get("success") and old.get("success")
                        and (r.get("seconds") or math.inf) < (old.get("seconds") or math.inf))):
                uniq[k] = r
        rows = list(uniq.values())
        merged = max(nruns.values())
        states = next((r for r in reversed(recs) if r.get("problem") == name
                       and r.get("case") == "states"), None)
        ref = next((r for r in rows if r["peer"] == "diffsim" and r.get("method") == REFERENCE_METHOD
                    and r.get("success")), None)
        ok = [r for r in rows if r.get("success") and r.get("seconds")]
        ours = [r for r in ok if r["peer"] == "diffsim"]
        best = min(ours, key=lambda r: r["seconds"], default=None)
        peer_rank = {"diffsim": 0, "diffrax": 1, "torchdiffeq": 2}

        def method_rank(r):
            lst = pr["ours"] if r["peer"] == "diffsim" else pr.get(
                "diffrax" if r["peer"] == "diffrax" else "torch", [])
            m = r.get("requested", r.get("method"))
            return lst.index(m) if m in lst else 99

        rows.sort(key=lambda r: (peer_rank.get(r["peer"], 9), method_rank(r)))
        out += [f"### {pr['title']}", "",
                "| peer | method | ms per loss+gradient | repeats | steps (+rejected) | loss rel diff | "
                "gradient rel diff | saved states rel diff |",
                "|---|---|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            meth = r.get("method", "")
            if r["peer"] == "diffsim" and r.get("vjp") and r["vjp"] != "none":
                meth += f" (vjp {r['vjp']})"
            if r["peer"] == "diffsim" and best is r:
                meth = f"**{meth}** (fastest)"
            if not r.get("success"):
                out.append(f"| {r['peer']} {r.get('solver', '')} | {meth} | {r.get('error', 'failed')} | | | | | |")
                continue
            is_ref = r is ref
            lrel = None if ref is None else abs(r["loss"] - ref["loss"]) / max(abs(ref["loss"]), 1e-300)
            grel = None if ref is None else rel((r.get("grad_p") or []) + (r.get("grad_u0") or []),
                                                (ref.get("grad_p") or []) + (ref.get("grad_u0") or []))
            srel = rel(r.get("ys"), states.get("ys")) if states and r.get("ys") else None
            out.append(f"| {r['peer']} {r.get('solver', '')} | {meth}{' (reference)' if is_ref else ''} "
                       f"| {fmt_ms(r.get('seconds'))} | {r.get('repeats', '')} | {steps_str(r)} "
                       f"| {'ref' if is_ref else fmt_rel(lrel)} | {'ref' if is_ref else fmt_rel(grel)} "
                       f"| {fmt_rel(srel)} |")
        out.append("")
        if merged > 1:
            out += [f"(up to {merged} runs of each case merged: each row is the run with the "
                    "smallest median)", ""]
        if pr.get("note"):
            out += [pr["note"], ""]
        # Ratios ours / theirs.
        theirs = [r for r in ok if r["peer"] != "diffsim"]
        if ours and theirs:
            out += ["| peer method | peer ms | diffsim method | diffsim ms | ratio ours/theirs |",
                    "|---|---:|---|---:|---:|"]
            by = {r["method"]: r for r in ours}
            for t in theirs:
                want = list(COUNTERPARTS.get(t["method"], []))
                if not any(m in by for m in want) and t["method"] in ("BacksolveAdjoint", "odeint_adjoint"):
                    want = CONTINUOUS_STANDIN
                cands = [(by[m], "counterpart") for m in want if m in by]
                if best is not None and all(best is not c for c, _ in cands):
                    cands.insert(0, (best, "fastest"))
                else:
                    cands = [(c, "fastest + counterpart" if c is best else w) for c, w in cands]
                for c, why in cands:
                    out.append(f"| {t['peer']} {t['solver']} {t['method']} | {fmt_ms(t['seconds'])} "
                               f"| {c['method']} ({why}) | {fmt_ms(c['seconds'])} "
                               f"| {c['seconds'] / t['seconds']:.3g} |")
            out.append("")
        if ref is None:
            out += ["(no diffsim `discrete` row: differences not computed)", ""]
    out += ["ms = median wall time of one loss + gradient (w.r.t. p and u0), float64, one thread, "
            "after JIT/warm-up. steps: accepted (+rejected); diffsim counts every solve of the "
            "gradient (the backward solves of the continuous adjoints too; forward-ad/forward: the "
            "augmented forward solve), diffrax the forward solve, torchdiffeq ~(nfe-2)/6 forward "
            "dopri5 steps incl. rejected. Differences are relative to "
            f"diffsim `{REFERENCE_METHOD}`: loss |L-L_ref|/|L_ref|; gradient max|g-g_ref|/max|g_ref| "
            "over (dp, du0); saved states max|u-u_ref|/max|u_ref| against `diffsim solve` with the "
            "same settings. ratio < 1: diffsim is faster."]
    print("\n".join(out))


# --------------------------------------------------------------------------- main

PEERS = ("diffsim", "diffrax", "torch")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="",
                    help="comma list of peers (diffsim, diffrax, torch) and/or problems "
                         f"({', '.join(ORDER)}); each kind defaults to all")
    ap.add_argument("--methods", default="",
                    help="comma list of methods to keep (diffsim sensealgs, diffrax adjoints, "
                         "odeint, odeint_adjoint); default all")
    ap.add_argument("--diffsim", default="", metavar="BIN", help="path to the diffsim CLI binary")
    ap.add_argument("--budget", type=float, default=2.0,
                    help="seconds of repeated loss+gradient calls per case (after warm-up)")
    ap.add_argument("--min-repeats", type=int, default=3)
    ap.add_argument("--max-repeats", type=int, default=200)
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds allowed for the first loss+gradient call of a peer case")
    ap.add_argument("--compile-timeout", type=float, default=240.0,
                    help="seconds allowed for a peer case's start-up and JIT compilation")
    ap.add_argument("--quick", action="store_true",
                    help="budget 0.3 s, time limit 20 s per first call")
    ap.add_argument("--table", nargs="+", metavar="JSONL",
                    help="print markdown tables of earlier results and exit")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.table:
        table(a.table)
        return
    if a.quick:
        a.budget, a.timeout = 0.3, min(a.timeout, 20.0)
    if a.worker:
        worker_main(a)
        return
    toks = [x for x in a.only.split(",") if x]
    bad = [x for x in toks if x not in PEERS and x not in PROBLEMS]
    if bad:
        ap.error(f"unknown --only entries {bad}")
    peers = [x for x in PEERS if x in toks] or list(PEERS)
    problems = [x for x in ORDER if x in toks] or ORDER
    methods = set(x for x in a.methods.split(",") if x)
    timer = Timer(a.budget, a.min_repeats, a.max_repeats)
    for peer in peers:
        if peer == "diffsim":
            run_ours(problems, timer, a.diffsim, methods, call_timeout=max(60.0, a.timeout))
            continue
        for name in problems:
            for m in PROBLEMS[name]["diffrax" if peer == "diffrax" else "torch"]:
                if methods and m not in methods:
                    continue
                print(f"gradient_peers.py: {peer} {name} {m}", file=sys.stderr, flush=True)
                run_isolated(peer, name, m, a)


if __name__ == "__main__":
    main()
