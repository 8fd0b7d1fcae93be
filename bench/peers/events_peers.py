#!/usr/bin/env python3
"""Events: the bouncing ball, diffsim (CLI) against diffrax (JAX), for accuracy and time of
the solve and of the gradient through the bounces.

The problem is diffsim's zoo model `bouncing-ball`: u = [h, v] (height, velocity),
p = [g, e] (gravity, restitution); h' = v, v' = -g; where h falls through zero (a downward
crossing) v becomes -e v and the solve goes on. Case: g = 9.81, e = 0.8, h0 = 10, v0 = 0.5,
t in [0, 4] (two bounces, at 1.4797 and 3.7657), loss L = h(4) + v(4), gradient
dL/d(g, e, h0, v0). Tsit5 at rtol = atol in {1e-6, 1e-9, 1e-12}, float64.

Reference (closed form): the first impact is at (v0 + w)/g with w = sqrt(v0^2 + 2 g h0);
after impact k the upward speed is e^k w and the flight lasts 2 e^k w / g; between bounces
h = speed s - g s^2/2, v = speed - g s (s = time since the last impact). The reference
gradient is central differences of that closed form. In float64 with a step of 1e-5
relative they are accurate to about 6e-10 (relative), which would hide every error below
that, so the reference is the same central differences evaluated in 50-digit decimal
arithmetic (Python's `decimal`, step 1e-15 relative: truncation about 1e-30); the float64
ones are kept in the raw results with their error against it (`--reference float64` uses
them instead).

What is measured, per tolerance and side:
    bounces              events found before t = 4 (2 expected)
    steps                accepted steps of the solve (diffrax: summed over its segments)
    event-time error     max |t_k - t_k(closed form)| over the bounces
    L error              |L - L(closed form)| of the solve
    gradient error       max_i |dL/dx_i - ref_i| / |ref_i| over x = (g, e, h0, v0)
    solve, gradient      median wall time of one call

diffsim: `BIN solve --model bouncing-ball --u0 10,0.5 --p 9.81,0.8 --tspan 0,4
--saveat-times 4 --rtol R --atol R --alg tsit5 --json --repeat K` (its "events" give the
bounce times, its "u" the end state) and `BIN grad ... --sensealg S` for S in
--sensealgs (default: every method); the time is the CLI's in-process median over K calls,
K sized so the repeats take about --budget seconds after a 3-call probe. A sensealg the
CLI refuses is recorded as failed, with its message.

diffrax: its events terminate a solve (diffrax.Event with cond_fn = h, direction=False for
downward crossings, root finder optimistix.Newton at rtol = atol = --root-tol, default the
solve's tolerance; the event time is the root of h on the last step's dense output, and the
state there is the dense output's; optimistix differentiates the root by the implicit
function theorem, so the event time's dependence on the parameters is in the gradient). The bounce is a chain of solves: from the current time
to 4 with the event; if the event fired (Solution.event_mask), v -> -e v at the event time,
and the next solve starts there. The chain is unrolled in Python to a fixed number of
segments (--segments, default 3 = the 2 bounces + the flight to t = 4) inside ONE jitted
function, so that jax.jit and jax.grad see one program and the cost of a call is one
dispatch; a segment that starts at t = 4 (fewer bounces than segments) is a zero-length
solve, and a last segment that still ends on an event is reported as a failure (too few
segments). (A lax.while_loop over segments could not be reverse-differentiated; a Python
loop of separately jitted segments would add a dispatch per segment to the time.)
Tsit5 with PIDController(rtol, atol), dt0=None, float64. Timed: the jitted forward chain
(L, event times) and jax.jit(jax.value_and_grad(L)) w.r.t. (g, e, h0, v0) with the default
RecursiveCheckpointAdjoint; also jax.jit(jax.jacfwd(L)) with adjoint=ForwardMode(), the
counterpart of diffsim's forward-ad. Each is compiled ahead of time (.lower().compile(),
compile time recorded), called once, then timed as the median of calls over about
--budget seconds (common.timed_calls, each call ending in block_until_ready). The diffrax
time includes JAX's dispatch of one call from Python, which is measured on its own (a
compiled call of th[0] + th[1], the "dispatch" record); diffsim's is measured inside the
process, without its start-up.

Raw results go to results/events.jsonl (one JSON object per measurement, plus one
"reference" object), the table to results/events.md and stdout.

    events_peers.py [--diffsim BIN] [--tols 1e-6,1e-9,1e-12] [--budget S]
                    [--only diffsim,diffrax] [--sensealgs forward-ad,forward,...]
                    [--segments 3] [--root-tol T] [--reference decimal|float64]
                    [--out FILE.jsonl] [--md FILE.md]
    events_peers.py --table FILE.jsonl [FILE.jsonl ..]      # the table from raw results
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
from decimal import Decimal, localcontext

from common import load_jsonl, timed_calls

# One thread for JAX (same policy as gradient_peers.py), unless the caller set otherwise.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOLS = [1e-6, 1e-9, 1e-12]
# (g, e, h0, v0) and the span: diffsim's `bouncing-ball` with u0 = [10, 0.5].
THETA = (9.81, 0.8, 10.0, 0.5)
NAMES = ("g", "e", "h0", "v0")
T0, T1 = 0.0, 4.0


def emit(out, **rec):
    rec.setdefault("at", time.strftime("%Y-%m-%dT%H:%M:%S"))
    print(json.dumps(rec), file=out, flush=True)


def note(msg: str):
    print(f"events_peers.py: {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- closed form

def ball(g, e, h0, v0, t1, sqrt):
    """(h(t1), v(t1), impact times) of the bouncing ball from t = 0, in whatever number type
    the arguments have (float or Decimal; `sqrt` for that type)."""
    w = sqrt(v0 * v0 + 2 * g * h0)  # speed at the first impact
    t_hit = (v0 + w) / g
    if t1 < t_hit:
        return h0 + v0 * t1 - g * t1 * t1 / 2, v0 - g * t1, []
    impacts = [t_hit]
    speed = e * w  # upward speed just after the latest impact
    while impacts[-1] + 2 * speed / g <= t1:
        impacts.append(impacts[-1] + 2 * speed / g)
        speed = e * speed
    s = t1 - impacts[-1]
    return speed * s - g * s * s / 2, speed - g * s, impacts


def central_differences(theta, rel_step, t1, sqrt):
    """dL/dtheta of L = h(t1) + v(t1), by central differences with step rel_step |theta_i|."""
    grad = []
    for i, x in enumerate(theta):
        step = rel_step * abs(x)
        up, down = list(theta), list(theta)
        up[i], down[i] = x + step, x - step
        l_up = sum(ball(*up, t1, sqrt)[:2])
        l_down = sum(ball(*down, t1, sqrt)[:2])
        grad.append((l_up - l_down) / (2 * step))
    return grad


def reference(which: str):
    """The closed form's loss, impact times and gradient, in float64 and in 50-digit decimal."""
    h, v, impacts = ball(*THETA, T1, math.sqrt)
    grad64 = central_differences(THETA, 1e-5, T1, math.sqrt)
    with localcontext() as ctx:
        ctx.prec = 50
        th = [Decimal(repr(x)) for x in THETA]
        hd, vd, impd = ball(*th, Decimal(repr(T1)), lambda x: x.sqrt())
        gradd = [float(x) for x in central_differences(th, Decimal("1e-15"), Decimal(repr(T1)), lambda x: x.sqrt())]
        loss_d, impacts_d = float(hd + vd), [float(t) for t in impd]
    fd_err = max(abs(a - b) / abs(b) for a, b in zip(grad64, gradd))
    grad = gradd if which == "decimal" else grad64
    return dict(loss=loss_d, event_times=impacts_d, grad=grad, grad_float64_fd=grad64, grad_decimal_fd=gradd,
                float64_fd_max_rel_error=fd_err, loss_float64=h + v, event_times_float64=impacts, used=which)


def event_error(times, ref):
    if len(times) != len(ref["event_times"]):
        return None
    return max((abs(a - b) for a, b in zip(times, ref["event_times"])), default=0.0)


def grad_error(grad, ref):
    return max(abs(a - b) / abs(b) for a, b in zip(grad, ref["grad"]))


# --------------------------------------------------------------------------- diffsim

def diffsim_args(tol):
    return ["--model", "bouncing-ball", "--u0", f"{THETA[2]!r},{THETA[3]!r}", "--p", f"{THETA[0]!r},{THETA[1]!r}",
            "--tspan", f"{T0!r},{T1!r}", "--saveat-times", repr(T1), "--rtol", repr(tol), "--atol", repr(tol),
            "--alg", "tsit5", "--json"]


def diffsim_call(exe, cmd, args, repeat, timeout=120):
    p = subprocess.run([exe, cmd, *args, "--repeat", str(repeat)], capture_output=True, text=True, timeout=timeout)
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines or not lines[-1].startswith("{"):
        raise RuntimeError((p.stderr or p.stdout).strip()[:400] or f"exit {p.returncode}")
    return json.loads(lines[-1])


def diffsim_timed(exe, cmd, args, budget):
    """One probe of 3 calls, then K calls sized to take about `budget` seconds."""
    probe = diffsim_call(exe, cmd, args, 3)
    est = max(float(probe.get("seconds_median") or 0.0), 1e-7)
    reps = int(min(200_000, max(3, budget / est)))
    return diffsim_call(exe, cmd, args, reps), reps


def run_diffsim(out, exe, tols, budget, sensealgs, ref):
    for tol in tols:
        args = diffsim_args(tol)
        rec = dict(peer="diffsim", solver="tsit5", rtol=tol, atol=tol)
        try:
            res, reps = diffsim_timed(exe, "solve", args, budget)
            times = [float(ev["t"]) for ev in res.get("events") or []]
            u = (res.get("u") or [[]])[-1]
            ok = res.get("retcode") == "Success" and float(res.get("t", [0])[-1]) == T1
            loss = float(u[0] + u[1]) if ok else None
            emit(out, **rec, kind="solve", success=ok, retcode=res.get("retcode"),
                 seconds_median=res.get("seconds_median"), repeats=reps, event_times=times, u_final=u, loss=loss,
                 event_time_error=event_error(times, ref) if ok else None,
                 loss_error=abs(loss - ref["loss"]) if ok else None, stats=res.get("stats"))
        except Exception as exc:  # a crash or a refusal is a failed run, reported
            emit(out, **rec, kind="solve", success=False, error=str(exc)[:400])
            note(f"diffsim solve at tol {tol:g} failed: {exc}")
        for sa in sensealgs:
            try:
                res, reps = diffsim_timed(exe, "grad", [*args, "--sensealg", sa], budget)
                grad = [float(x) for x in (res.get("grad_p") or [])] + [float(x) for x in (res.get("grad_u0") or [])]
                emit(out, **rec, kind="grad", method=sa, success=True, seconds_median=res.get("seconds_median"),
                     repeats=reps, loss=res.get("loss"), grad=grad, grad_rel_error=grad_error(grad, ref),
                     loss_error=abs(float(res["loss"]) - ref["loss"]), stats=res.get("stats"))
            except Exception as exc:
                emit(out, **rec, kind="grad", method=sa, success=False, error=str(exc)[:400])
                note(f"diffsim grad --sensealg {sa} at tol {tol:g} failed: {str(exc)[:200]}")


# --------------------------------------------------------------------------- diffrax

def run_diffrax(out, tols, budget, segments, root_tol, ref):
    import jax

    jax.config.update("jax_enable_x64", True)
    import diffrax
    import jax.numpy as jnp
    import optimistix as optx

    ver = f"diffrax {diffrax.__version__}, optimistix {optx.__version__}, jax {jax.__version__}"
    term = diffrax.ODETerm(lambda t, y, g: jnp.stack([y[1], -g]))
    solver = diffrax.Tsit5()
    ended_by_event = (diffrax.RESULTS.successful, diffrax.RESULTS.event_occurred)

    def make_chain(tol, adjoint):
        rt = tol if root_tol is None else root_tol
        # cond_fn is called with keywords (t=, y=, args=, and more).
        event = diffrax.Event(lambda t, y, args, **kw: y[0], root_finder=optx.Newton(rtol=rt, atol=rt),
                              direction=False)
        ctrl = diffrax.PIDController(rtol=tol, atol=tol)

        def chain(theta):
            g, e = theta[0], theta[1]
            y, t = theta[2:4], jnp.asarray(T0)
            ts, hits, oks, steps = [], [], [], 0
            for _ in range(segments):
                sol = diffrax.diffeqsolve(term, solver, t0=t, t1=T1, dt0=None, y0=y, args=g,
                                          saveat=diffrax.SaveAt(t1=True), stepsize_controller=ctrl, event=event,
                                          adjoint=adjoint, throw=False)
                hit, t, y_end = sol.event_mask, sol.ts[-1], sol.ys[-1]
                y = jnp.where(hit, jnp.stack([y_end[0], -e * y_end[1]]), y_end)
                ts.append(t)
                hits.append(hit)
                oks.append((sol.result == ended_by_event[0]) | (sol.result == ended_by_event[1]))
                steps = steps + sol.stats["num_accepted_steps"]
            return y[0] + y[1], (jnp.stack(ts), jnp.stack(hits), jnp.stack(oks), steps)

        return chain

    def compiled(fn, theta):
        t0 = time.perf_counter()
        c = jax.jit(fn).lower(theta).compile()
        return c, time.perf_counter() - t0

    def timed(fn):
        jax.block_until_ready(fn())  # the first call, untimed
        times, res = timed_calls(lambda: jax.block_until_ready(fn()), budget, 5, 100_000)
        return statistics.median(times), min(times), len(times), res

    def unpack(aux):
        ts, hits, oks, steps = aux
        hits = [bool(x) for x in hits]
        times = [float(t) for t, h in zip(ts, hits) if h]
        ok = all(bool(x) for x in oks) and not hits[-1]  # the last segment must reach t = 4
        why = None
        if not all(bool(x) for x in oks):
            why = "a segment's solve failed"
        elif hits[-1]:
            why = f"the last of {segments} segments ended on an event (raise --segments)"
        return times, ok, why, int(steps)

    theta = jnp.asarray(THETA)
    # What a jitted call costs from Python when it does (almost) nothing: part of every
    # diffrax time below, absent from diffsim's in-process times.
    triv, _ = compiled(lambda th: th[0] + th[1], theta)
    s, mn, n, _ = timed(lambda: triv(theta))
    emit(out, peer="diffrax", kind="dispatch", success=True, seconds_median=s, seconds_min=mn, repeats=n,
         version=ver, note="a compiled jitted call of th[0] + th[1], block_until_ready")
    for tol in tols:
        rec = dict(peer="diffrax", solver="Tsit5", rtol=tol, atol=tol, version=ver, segments=segments,
                   root_tol=tol if root_tol is None else root_tol)
        # Forward: L and the event times.
        try:
            fwd, comp = compiled(make_chain(tol, diffrax.RecursiveCheckpointAdjoint()), theta)
            s, mn, n, (loss, aux) = timed(lambda: fwd(theta))
            times, ok, why, steps = unpack(aux)
            emit(out, **rec, kind="solve", success=ok, error=why, seconds_median=s, seconds_min=mn, repeats=n,
                 compile_seconds=comp, event_times=times, loss=float(loss),
                 event_time_error=event_error(times, ref) if ok else None,
                 loss_error=abs(float(loss) - ref["loss"]) if ok else None, stats=dict(naccept=steps))
        except Exception as exc:
            emit(out, **rec, kind="solve", success=False, error=f"{type(exc).__name__}: {str(exc)[:300]}")
            note(f"diffrax solve at tol {tol:g} failed: {exc}")
        # Gradients: reverse mode (jax.grad through the default adjoint) and forward mode.
        for method in ("jax.grad (RecursiveCheckpointAdjoint)", "jax.jacfwd (ForwardMode)"):
            try:
                if method.startswith("jax.grad"):
                    chain = make_chain(tol, diffrax.RecursiveCheckpointAdjoint())
                    fn = jax.value_and_grad(chain, has_aux=True)
                else:
                    chain = make_chain(tol, diffrax.ForwardMode())

                    def fn(th, chain=chain):
                        # jacfwd(has_aux) gives (jacobian, aux); the value rides in aux, so
                        # that fn returns ((L, aux), grad) like value_and_grad.
                        def with_value(x):
                            loss, aux = chain(x)
                            return loss, (loss, aux)

                        grad, (loss, aux) = jax.jacfwd(with_value, has_aux=True)(th)
                        return (loss, aux), grad
                gfn, comp = compiled(fn, theta)
                s, mn, n, ((loss, aux), grad) = timed(lambda: gfn(theta))
                times, ok, why, steps = unpack(aux)
                grad = [float(x) for x in grad]
                finite = all(math.isfinite(x) for x in grad)
                emit(out, **rec, kind="grad", method=method, success=ok and finite,
                     error=why if not ok else (None if finite else "non-finite gradient"),
                     seconds_median=s, seconds_min=mn, repeats=n, compile_seconds=comp, loss=float(loss), grad=grad,
                     grad_rel_error=grad_error(grad, ref) if finite else None,
                     loss_error=abs(float(loss) - ref["loss"]), event_times=times, stats=dict(naccept=steps))
            except Exception as exc:
                emit(out, **rec, kind="grad", method=method, success=False,
                     error=f"{type(exc).__name__}: {str(exc)[:300]}")
                note(f"diffrax {method} at tol {tol:g} failed: {exc}")


# --------------------------------------------------------------------------- table

def us(s):
    return "–" if s is None else f"{s * 1e6:.3g}"


def sci(x):
    return "–" if x is None else ("0" if x == 0 else f"{x:.1e}")


def table(recs) -> str:
    refs = [r for r in recs if r.get("peer") == "reference"]
    ref = refs[-1] if refs else None
    runs = [r for r in recs if r.get("peer") in ("diffsim", "diffrax") and r.get("kind") in ("solve", "grad")]
    dispatch = [r for r in recs if r.get("kind") == "dispatch"]
    tols = sorted({r["rtol"] for r in runs}, reverse=True)
    head = ["rtol = atol", "solver, gradient", "bounces", "steps", "event-time error", "L error", "gradient error",
            "solve (µs)", "gradient (µs)", "solve diffsim/diffrax", "gradient diffsim/diffrax"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---:"] + ["---"] + ["---:"] * (len(head) - 2)) + "|"]
    notes = {}

    def last(peer, kind, tol, method=None):
        hit = [r for r in runs if r["peer"] == peer and r["kind"] == kind and r["rtol"] == tol
               and (method is None or r.get("method") == method)]
        return hit[-1] if hit else None

    for tol in tols:
        ds = last("diffsim", "solve", tol)
        ds_ok = ds if ds and ds.get("success") else None
        ours_grad = last("diffsim", "grad", tol, "forward-ad")
        ours_grad_s = ours_grad["seconds_median"] if ours_grad and ours_grad.get("success") else None
        dx = last("diffrax", "solve", tol)
        dx_ok = dx if dx and dx.get("success") else None
        methods = []
        for r in runs:
            if r["rtol"] == tol and r["kind"] == "grad" and (r["peer"], r["method"]) not in methods:
                methods.append((r["peer"], r["method"]))
        methods.sort(key=lambda k: 0 if k[0] == "diffsim" else 1)
        for peer, method in methods:
            g = last(peer, "grad", tol, method)
            s = ds_ok if peer == "diffsim" else dx_ok
            label = f"{'diffsim tsit5' if peer == 'diffsim' else 'diffrax Tsit5'}, {method}"
            if g.get("success"):
                gerr, gtime = sci(g.get("grad_rel_error")), us(g.get("seconds_median"))
            else:
                key = (peer, method)
                if key not in notes:
                    notes[key] = f"[{len(notes) + 1}]"
                gerr, gtime = f"failed {notes[key]}", "–"
            steps = ((s.get("stats") or {}).get("naccept") if s else None)
            row = [f"{tol:g}", label, str(len(s["event_times"])) if s else "–", "–" if steps is None else str(steps),
                   sci(s.get("event_time_error")) if s else "–", sci(s.get("loss_error")) if s else "–", gerr,
                   us(s.get("seconds_median")) if s else "–", gtime]
            if peer == "diffrax":
                solve_ratio = (ds_ok["seconds_median"] / s["seconds_median"]) if ds_ok and s else None
                grad_ratio = (ours_grad_s / g["seconds_median"]) if ours_grad_s and g.get("success") else None
                row += ["–" if solve_ratio is None else f"{solve_ratio:.3g}",
                        "–" if grad_ratio is None else f"{grad_ratio:.3g}"]
            else:
                row += ["", ""]
            lines.append("| " + " | ".join(row) + " |")
    text = ["## Bouncing ball: diffsim vs diffrax", "",
            "g = 9.81, e = 0.8, h0 = 10, v0 = 0.5, t ∈ [0, 4] (bounces at 1.4797 and 3.7657), "
            "L = h(4) + v(4), gradient w.r.t. (g, e, h0, v0); Tsit5, float64.", ""] + lines + [""]
    expl = ("Errors against the closed form: event-time error = max |t_k - t_k,exact| over the bounces; "
            "L error = |L - L_exact| of the solve; gradient error = max_i |dL/dx_i - ref_i| / |ref_i|. "
            "Times: median of one call (diffsim inside its process, diffrax a jitted call from Python); "
            "the solve columns of a side are its one forward solve. Ratios: diffsim's (solve, forward-ad "
            "gradient) time over this diffrax row's; below 1 means diffsim is faster.")
    expl += (" Steps: accepted steps of the solve over the whole span (diffrax: summed over its chained "
             "solves, each of which picks its first step afresh).")
    if dispatch:
        expl += (f" A jitted diffrax call that does almost nothing takes {us(dispatch[-1]['seconds_median'])} µs "
                 "here (part of every diffrax time).")
    if ref:
        expl += (f" Reference: {'50-digit decimal' if ref.get('used') == 'decimal' else 'float64'} central "
                 f"differences of the closed form (float64 ones with step 1e-5 differ from the decimal ones "
                 f"by up to {ref['float64_fd_max_rel_error']:.1e}); exact L = {ref['loss']:.15g}, "
                 f"bounces at {', '.join(f'{t:.15g}' for t in ref['event_times'])}; "
                 f"dL/d(g, e, h0, v0) = ({', '.join(f'{x:.12g}' for x in ref['grad'])}).")
    text.append(expl)
    for (peer, method), mark in notes.items():
        errs = {r.get("error") for r in runs if r["peer"] == peer and r.get("method") == method and not r.get("success")}
        text.append("")
        text.append(f"{mark} {peer} {method}: " + " / ".join(sorted(e for e in errs if e)))
    return "\n".join(text)


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--diffsim", default=os.environ.get("DIFFSIM_BIN", os.path.join(ROOT, "target/release/diffsim")))
    ap.add_argument("--tols", default=",".join(f"{t:g}" for t in TOLS), help="rtol = atol values")
    ap.add_argument("--budget", type=float, default=0.5, help="seconds of repeated calls per measurement")
    ap.add_argument("--only", default="diffsim,diffrax")
    ap.add_argument("--sensealgs", default="forward-ad,forward,discrete,interpolating,quadrature,checkpointing,backsolve", help="diffsim grad --sensealg values")
    ap.add_argument("--segments", type=int, default=3, help="diffrax: solves chained (bounces + 1 needed)")
    ap.add_argument("--root-tol", type=float, default=None,
                    help="diffrax: the Newton root finder's rtol = atol (default: the solve's tolerance)")
    ap.add_argument("--reference", choices=("decimal", "float64"), default="decimal",
                    help="central differences of the closed form in 50-digit decimal or in float64 (step 1e-5)")
    ap.add_argument("--out", default=os.path.join(HERE, "results/events.jsonl"))
    ap.add_argument("--md", default=os.path.join(HERE, "results/events.md"))
    ap.add_argument("--table", nargs="+", help="only print the table of these JSONL files")
    a = ap.parse_args()
    if a.table:
        print(table(load_jsonl(a.table, "events_peers.py")))
        return
    tols = [float(x) for x in a.tols.split(",") if x]
    only = set(a.only.split(","))
    ref = reference(a.reference)
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    start = time.perf_counter()
    with open(a.out, "w") as out:
        emit(out, peer="reference", **ref)
        if "diffsim" in only:
            if os.access(a.diffsim, os.X_OK):
                run_diffsim(out, a.diffsim, tols, a.budget, [s for s in a.sensealgs.split(",") if s], ref)
            else:
                note(f"no diffsim binary at {a.diffsim}; diffsim = n/a")
        if "diffrax" in only:
            run_diffrax(out, tols, a.budget, a.segments, a.root_tol, ref)
    text = table(load_jsonl([a.out]))
    text += f"\n\nBenchmark time: {time.perf_counter() - start:.0f} s (budget {a.budget:g} s per measurement)."
    with open(a.md, "w") as fh:
        fh.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
