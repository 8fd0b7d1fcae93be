#!/usr/bin/env python3
"""Small-MLP forward+backward timings in PyTorch (a peer for diffsim's neural-network layer).

Networks (tanh on every hidden layer, none on the output):

    2-50-2       Linear(2, 50) -> tanh -> Linear(50, 2)                       (252 parameters)
    4-32-32-4    Linear(4, 32) -> tanh -> Linear(32, 32) -> tanh -> Linear(32, 4) (1348 parameters)

Input x has shape (batch, n_in) with batch 1 or 64 (batch 1 is a (1, n_in) tensor).
Case "fwd_bwd": loss = sum of all outputs, then torch.autograd.grad(loss, [x, *params]),
i.e. the gradient with respect to the inputs and every parameter (no optimizer, no
.grad accumulation). Case "fwd": the forward pass alone, under torch.no_grad().

Each measurement is the median over samples of (time of K back-to-back calls) / K, with K
picked so that one sample takes about 5 ms, repeated for --budget seconds after a warm-up.
Threads: torch.set_num_threads(1), and torch's default thread count (2 on the 2-core
machine) unless --threads says otherwise. One JSON object per line on stdout:

    {"peer": "torch", "case": "fwd_bwd", "net": "2-50-2", "batch": 1, "dtype": "float32",
     "threads": 1, "seconds": ..., ...}

diffsim's side of the comparison is not measured here: it is the criterion benchmark
crates/diffsim-examples/benches/nn.rs (`cargo bench -p diffsim-examples --bench nn -- mlp_`; the same two
networks, batch 1 and 64, forward and forward+backward with input and parameter adjoints).
`--table ... --criterion DIR` reads its medians from DIR (criterion's output directory,
target/criterion by default, or $CRITERION_HOME; run.sh uses results/criterion) and adds
diffsim columns and the ratio diffsim / torch (1 thread).

Usage:
    bench/peers/.venv/bin/python bench/peers/mlp_peers.py [--budget 1] [--quick]
        [--threads 1,default] [--dtypes float32,float64]
    bench/peers/.venv/bin/python bench/peers/mlp_peers.py --table results/mlp.jsonl
        [--criterion results/criterion]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

NETS = {"2-50-2": [2, 50, 2], "4-32-32-4": [4, 32, 32, 4]}


def emit(**rec):
    print(json.dumps(rec), flush=True)


def make_net(torch, sizes, dtype):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers).to(dtype)


def bench(fn, budget, target=5e-3, min_samples=5, max_samples=2000):
    """Median per-call seconds: samples of K calls each, K chosen so a sample ~ target s."""
    for _ in range(20):  # warm-up
        fn()
    t0 = time.perf_counter()
    n = 0
    while time.perf_counter() - t0 < 0.05 or n < 5:
        fn()
        n += 1
    per = (time.perf_counter() - t0) / n
    k = max(1, int(target / per))
    samples, start = [], time.perf_counter()
    while True:
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        samples.append((time.perf_counter() - t0) / k)
        if len(samples) >= max_samples:
            break
        if len(samples) >= min_samples and time.perf_counter() - start >= budget:
            break
    return statistics.median(samples), min(samples), len(samples), k


def criterion_median(root, net, batch, dtype, case):
    """diffsim's median seconds from criterion's estimates.json (None if absent)."""
    if not root:
        return None
    ty = {"float64": "f64", "float32": "f32"}[dtype]
    func = {"fwd_bwd": "forward_backward", "fwd": "forward"}[case]
    path = os.path.join(root, f"mlp_{net}_tanh_{ty}", func, str(batch), "new", "estimates.json")
    try:
        with open(path) as fh:
            return json.load(fh)["median"]["point_estimate"] * 1e-9
    except (OSError, KeyError, ValueError):
        return None


def table(paths, crit=None):
    """Markdown table of earlier results: one row per (net, batch, dtype), microseconds."""
    recs = []
    for p in paths:
        with open(p) as fh:
            recs += [json.loads(x) for x in fh if x.strip().startswith("{")]
    thr = sorted({(r["threads_label"], r["threads"]) for r in recs}, key=lambda x: x[1])
    cols = [(c, t) for c in ("fwd_bwd", "fwd") for t in thr]
    head = " | ".join(f"{c} {t[0]} thr" + (f" ({t[1]})" if t[0] == "default" else "")
                      for c, t in cols)
    have_crit = crit and any(criterion_median(crit, r["net"], r["batch"], r["dtype"], r["case"])
                             for r in recs)
    if crit and not have_crit:
        print(f"mlp_peers.py: no diffsim criterion results under {crit}", file=sys.stderr)
    if have_crit:
        head += " | diffsim fwd_bwd | diffsim fwd | ratio fwd_bwd diffsim/torch 1 thr | ratio fwd"
    ncol = len(cols) + (4 if have_crit else 0)
    out = [f"| net | batch | dtype | {head} |", "|---|---:|---|" + "---:|" * ncol]
    keys = []
    for r in recs:
        k = (r["net"], r["batch"], r["dtype"])
        if k not in keys:
            keys.append(k)
    for k in keys:
        cells = []
        for c, t in cols:
            m = [r for r in recs if (r["net"], r["batch"], r["dtype"]) == k and r["case"] == c
                 and r["threads_label"] == t[0]]
            cells.append(f"{m[0]['seconds'] * 1e6:.3g}" if m else "")
        if have_crit:
            ours = {c: criterion_median(crit, k[0], k[1], k[2], c) for c in ("fwd_bwd", "fwd")}
            torch1 = {c: next((r["seconds"] for r in recs if (r["net"], r["batch"], r["dtype"]) == k
                               and r["case"] == c and r["threads"] == 1), None)
                      for c in ("fwd_bwd", "fwd")}
            cells += [f"{ours[c] * 1e6:.3g}" if ours[c] else "" for c in ("fwd_bwd", "fwd")]
            cells += [f"{ours[c] / torch1[c]:.3g}" if ours[c] and torch1[c] else ""
                      for c in ("fwd_bwd", "fwd")]
        out.append(f"| {k[0]} | {k[1]} | {k[2]} | " + " | ".join(cells) + " |")
    print("\n".join(out))
    print("\ntimes in microseconds (median per call)"
          + ("; diffsim = criterion median of crates/diffsim-examples/benches/nn.rs (same networks and "
             "batches; its weights and inputs are its own, which does not change the work); "
             "ratio < 1: diffsim faster" if have_crit else ""))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=1.0, help="seconds per case (after warm-up)")
    ap.add_argument("--threads", default="1,default", help="comma list: integers and/or 'default'")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--nets", default=",".join(NETS))
    ap.add_argument("--batches", default="1,64")
    ap.add_argument("--no-forward", action="store_true", help="skip the forward-only case")
    ap.add_argument("--quick", action="store_true", help="budget 0.2 s, 1 thread only")
    ap.add_argument("--table", nargs="+", metavar="JSONL",
                    help="print a markdown table of earlier results and exit")
    ap.add_argument("--criterion", metavar="DIR",
                    help="with --table: criterion output directory holding diffsim's "
                         "`cargo bench --bench nn` results (adds diffsim columns and ratios)")
    a = ap.parse_args(argv)
    if a.table:
        table(a.table, a.criterion)
        return
    if a.quick:
        a.budget, a.threads = 0.2, "1"

    import torch

    default_threads = torch.get_num_threads()
    ver = f"torch {torch.__version__}"
    for th in a.threads.split(","):
        nthr = default_threads if th == "default" else int(th)
        torch.set_num_threads(nthr)
        for dname in a.dtypes.split(","):
            dt = {"float32": torch.float32, "float64": torch.float64}[dname]
            for net_name in a.nets.split(","):
                sizes = NETS[net_name]
                torch.manual_seed(0)
                net = make_net(torch, sizes, dt)
                params = list(net.parameters())
                n_params = sum(p.numel() for p in params)
                for batch in map(int, a.batches.split(",")):
                    x = torch.randn(batch, sizes[0], dtype=dt, requires_grad=True)

                    def fwd_bwd():
                        y = net(x)
                        return torch.autograd.grad(y.sum(), [x, *params])

                    def fwd():
                        with torch.no_grad():
                            return net(x)

                    cases = [("fwd_bwd", fwd_bwd)] + ([] if a.no_forward else [("fwd", fwd)])
                    for case, fn in cases:
                        s, mn, n, k = bench(fn, a.budget)
                        emit(peer="torch", case=case, net=net_name, n_params=n_params, batch=batch,
                             dtype=dname, threads=nthr,
                             threads_label="default" if th == "default" else th,
                             seconds=s, seconds_min=mn, samples=n, calls_per_sample=k,
                             version=ver)


if __name__ == "__main__":
    main()
