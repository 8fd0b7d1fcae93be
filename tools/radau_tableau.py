#!/usr/bin/env python3
"""Coefficients of the s-stage Radau IIA method (order 2s - 1) for diffsim's Radau solvers,
derived here from the method's definition with 60-digit arithmetic (mpmath):

- nodes c: the roots of d^(s-1)/dx^(s-1) [x^(s-1) (x - 1)^s] (c_s = 1);
- A: a_ij = integral over [0, c_i] of the Lagrange polynomial l_j of the nodes;
- the eigenvalues of A^-1: one real gamma and pairs alpha_k +- i beta_k (beta_k > 0), and a
  real T with T^-1 A^-1 T = diag(gamma, [[alpha_1, -beta_1], [beta_1, alpha_1]], ...): the
  column for gamma its real eigenvector, the columns of pair k Re v and -Im v of the
  eigenvector v of alpha_k + i beta_k (each eigenvector scaled so its last entry is 1);
- the error estimate's weights DD: the embedded method y^ = y0 + h (gamma0 f0 + sum b^_i F_i)
  with gamma0 = 1 / gamma and b^ of order s; y^ - y1 = gamma0 h f0 + sum e_i z_i with
  e = A^-T (b^ - b), and the filtered estimate (gamma / h - J)^-1 (f0 + sum DD_i z_i / h) has
  DD = gamma e.

Usage: radau_tableau.py S [--rust]
"""
import sys

import mpmath as mp

mp.mp.dps = 60


def tableau(s):
    # d^(s-1)/dx^(s-1) of x^(s-1) (x-1)^s: expand (x-1)^s, multiply by x^(s-1), differentiate.
    poly = [mp.binomial(s, k) * (-1) ** (s - k) for k in range(s + 1)]  # coeff of x^k in (x-1)^s
    full = {k + s - 1: poly[k] for k in range(s + 1)}
    deriv = {}
    for p, a in full.items():
        if p >= s - 1:
            f = mp.mpf(1)
            for j in range(s - 1):
                f *= p - j
            deriv[p - (s - 1)] = a * f
    deg = max(deriv)
    coeffs = [deriv.get(k, 0) for k in range(deg, -1, -1)]
    roots = sorted(mp.re(r) for r in mp.polyroots(coeffs, maxsteps=200, extraprec=200))
    c = roots
    # A by integrating the Lagrange basis.
    A = mp.matrix(s, s)
    for j in range(s):
        # l_j as polynomial coefficients (low to high)
        lj = [mp.mpf(1)]
        denom = mp.mpf(1)
        for m in range(s):
            if m == j:
                continue
            lj = [(lj[k - 1] if k > 0 else 0) - c[m] * (lj[k] if k < len(lj) else 0) for k in range(len(lj) + 1)]
            denom *= c[j] - c[m]
        for i in range(s):
            A[i, j] = sum(lj[k] * c[i] ** (k + 1) / (k + 1) for k in range(len(lj))) / denom
    b = [A[s - 1, j] for j in range(s)]
    Ainv = A ** -1
    E, V = mp.eig(Ainv)
    real = [k for k in range(s) if abs(mp.im(E[k])) < mp.mpf(10) ** -40]
    assert len(real) == 1
    gamma = mp.re(E[real[0]])
    pairs = sorted([k for k in range(s) if mp.im(E[k]) > mp.mpf(10) ** -40], key=lambda k: mp.re(E[k]))  # pairs by real part
    T = mp.matrix(s, s)
    v = V[:, real[0]]
    v = v / v[s - 1]
    for i in range(s):
        T[i, 0] = mp.re(v[i])
    alphas, betas = [], []
    for p, k in enumerate(pairs):
        v = V[:, k]
        v = v / v[s - 1]
        for i in range(s):
            T[i, 1 + 2 * p] = mp.re(v[i])
            T[i, 2 + 2 * p] = -mp.im(v[i])
        alphas.append(mp.re(E[k]))
        betas.append(mp.im(E[k]))
    TI = T ** -1
    # Check the block form.
    L = TI * Ainv * T
    want = mp.matrix(s, s)
    want[0, 0] = gamma
    for p in range(len(pairs)):
        i = 1 + 2 * p
        want[i, i] = want[i + 1, i + 1] = alphas[p]
        want[i, i + 1] = -betas[p]
        want[i + 1, i] = betas[p]
    assert mp.norm(L - want) < mp.mpf(10) ** -40, L
    # Embedded order-s weights with gamma0 = 1 / gamma.
    g0 = 1 / gamma
    M = mp.matrix(s, s)
    r = mp.matrix(s, 1)
    for q in range(1, s + 1):
        for i in range(s):
            M[q - 1, i] = c[i] ** (q - 1)
        r[q - 1] = mp.mpf(1) / q - (g0 if q == 1 else 0)
    bhat = M ** -1 * r
    e = (A.T) ** -1 * (bhat - mp.matrix(b))
    DD = [gamma * e[i] for i in range(s)]
    return dict(c=c, A=A, b=b, gamma=gamma, alphas=alphas, betas=betas, T=T, TI=TI, DD=DD)


def fmt(x):
    return repr(float(x))


def rust(s, name):
    """The tableau as a Rust `RadauTableau` constant (with its nodes as a named array, from
    which the dense output's nodes are computed at compile time)."""
    t = tableau(s)
    f = lambda x: repr(float(x))
    flat = lambda m: ", ".join(f(m[i, j]) for i in range(s) for j in range(s))
    lines = [
        f"const {name}_C: [f64; {s}] = [{', '.join(f(x) for x in t['c'])}];",
        f"pub(crate) const {name}: RadauTableau = RadauTableau {{",
        f"    stages: {s},",
        f"    c: &{name}_C,",
        f"    nodes: &newton_nodes::<{s}>(&{name}_C),",
        f"    gamma: {f(t['gamma'])},",
        f"    alpha: &[{', '.join(f(x) for x in t['alphas'])}],",
        f"    beta: &[{', '.join(f(x) for x in t['betas'])}],",
        f"    t: &[{flat(t['T'])}],",
        f"    ti: &[{flat(t['TI'])}],",
        f"    dd: &[{', '.join(f(x) for x in t['DD'])}],",
        "};",
    ]
    return "\n".join(lines)


if __name__ == "__main__" and sys.argv[2:] == ["--rust"]:
    print(rust(int(sys.argv[1]), f"RADAU_IIA_{sys.argv[1]}"))
elif __name__ == "__main__":
    s = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    t = tableau(s)
    print(f"// Radau IIA, {s} stages (tools/radau_tableau.py {s})")
    print("c =", [fmt(x) for x in t["c"]])
    print("gamma =", fmt(t["gamma"]))
    print("alphas =", [fmt(x) for x in t["alphas"]])
    print("betas =", [fmt(x) for x in t["betas"]])
    print("DD =", [fmt(x) for x in t["DD"]])
    print("T =", [[fmt(t["T"][i, j]) for j in range(s)] for i in range(s)])
    print("TI =", [[fmt(t["TI"][i, j]) for j in range(s)] for i in range(s)])
