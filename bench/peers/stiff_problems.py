"""The stiff test set (Bari test set for IVP solvers; Hairer & Wanner vol. II) for the
Python peers of stiff_peers.py: right-hand sides with analytic Jacobians, spans, starts,
the published reference end states, and the correct-digit count.

The same problems, constants and references are diffsim's zoo models `hires`, `orego`,
`pollu`, `vdpol`, `rober`, `akzo` and `e5` (crates/diffsim/src/models/stiff_test_set.rs,
where the sources are listed) and the `--stiff` cases of diffsol-bench.
"""
from __future__ import annotations

import math

import numpy as np

# --------------------------------------------------------------------------- HIRES
HIRES_K = (1.71, 0.43, 8.32, 0.69, 0.035, 8.32, 280.0, 0.69, 0.69, 0.0007)  # k1..k9, oks


def hires_f(t, y):
    k1, k2, k3, k4, k5, k6, k7, k8, k9, oks = HIRES_K
    b = k7 * y[5] * y[7]
    out = k2 + k8 + k9
    return np.array([
        k2 * y[1] - k1 * y[0] + k6 * y[2] + oks,
        k1 * y[0] - (k2 + k3) * y[1],
        k2 * y[3] + k5 * y[4] - (k1 + k6) * y[2],
        k3 * y[1] + k1 * y[2] - (k2 + k4) * y[3],
        k2 * (y[5] + y[6]) - (k1 + k5) * y[4],
        k8 * (y[3] + y[6]) + k1 * y[4] - k2 * y[5] - b,
        b - out * y[6],
        out * y[6] - b,
    ])


def hires_jac(t, y):
    k1, k2, k3, k4, k5, k6, k7, k8, k9, _ = HIRES_K
    j = np.zeros((8, 8))
    j[0, 0], j[0, 1], j[0, 2] = -k1, k2, k6
    j[1, 0], j[1, 1] = k1, -(k2 + k3)
    j[2, 2], j[2, 3], j[2, 4] = -(k1 + k6), k2, k5
    j[3, 1], j[3, 2], j[3, 3] = k3, k1, -(k2 + k4)
    j[4, 4], j[4, 5], j[4, 6] = -(k1 + k5), k2, k2
    j[5, 3], j[5, 4], j[5, 6] = k8, k1, k8
    j[5, 5], j[5, 7] = -k2 - k7 * y[7], -k7 * y[5]
    j[6, 5], j[6, 6], j[6, 7] = k7 * y[7], -(k2 + k8 + k9), k7 * y[5]
    j[7] = -j[6]
    return j


# --------------------------------------------------------------------------- OREGO
OREGO_P = (77.27, 0.161, 8.375e-6)  # s, w, q


def orego_f(t, y):
    s, w, q = OREGO_P
    return np.array([
        s * (y[1] + y[0] * (1.0 - q * y[0] - y[1])),
        (y[2] - (1.0 + y[0]) * y[1]) / s,
        w * (y[0] - y[2]),
    ])


def orego_jac(t, y):
    s, w, q = OREGO_P
    return np.array([
        [s * (1.0 - 2.0 * q * y[0] - y[1]), s * (1.0 - y[0]), 0.0],
        [-y[1] / s, -(1.0 + y[0]) / s, 1.0 / s],
        [w, 0.0, -w],
    ])


# --------------------------------------------------------------------------- POLLU
POLLU_K = np.array([
    0.35, 26.6, 1.23e4, 8.6e-4, 8.2e-4, 1.5e4, 1.3e-4, 2.4e4, 1.65e4, 9.0e3, 2.2e-2, 1.2e4, 1.88,
    1.63e4, 4.8e6, 3.5e-4, 1.75e-2, 1.0e8, 4.44e11, 1.24e3, 2.1, 5.78, 4.74e-2, 1.78e3, 3.12,
])
# Reaction i has rate k[i] * y[A[i]] (* y[B[i]] where B[i] >= 0); 0-based species.
POLLU_A = np.array([0, 1, 4, 6, 6, 6, 8, 8, 10, 10, 12, 9, 13, 0, 2, 3, 3, 15, 15, 16, 18, 18, 0, 18, 19])
POLLU_B = np.array([-1, 3, 1, -1, -1, 5, -1, 5, 1, 0, -1, 1, -1, 5, -1, -1, -1, -1, -1, 5, -1, -1, 3, 0, -1])
# Stoichiometry (species x reactions): what each reaction makes (+) and uses (-).
POLLU_S = np.zeros((20, 25))
for _sp, _gains, _losses in (
    (0, (1, 2, 8, 10, 11, 21, 24), (0, 9, 13, 22, 23)),
    (1, (0, 20), (1, 2, 8, 11)),
    (2, (0, 16, 18, 21), (14,)),
    (3, (14,), (1, 15, 16, 22)),
    (4, (3, 3, 5, 6, 12, 19), (2,)),
    (5, (2, 17, 17), (5, 7, 13, 19)),
    (6, (12,), (3, 4, 5)),
    (7, (3, 4, 5, 6), ()),
    (8, (), (6, 7)),
    (9, (6, 8), (11,)),
    (10, (7, 10), (8, 9)),
    (11, (8,), ()),
    (12, (9,), (10,)),
    (13, (11,), (12,)),
    (14, (13,), ()),
    (15, (15,), (17, 18)),
    (16, (), (19,)),
    (17, (19,), ()),
    (18, (22, 24), (20, 21, 23)),
    (19, (23,), (24,)),
):
    for _r in _gains:
        POLLU_S[_sp, _r] += 1.0
    for _r in _losses:
        POLLU_S[_sp, _r] -= 1.0
_HAS_B = POLLU_B >= 0
_B_SAFE = np.where(_HAS_B, POLLU_B, 0)
_ROWS = np.arange(25)


def pollu_f(t, y):
    r = POLLU_K * y[POLLU_A] * np.where(_HAS_B, y[_B_SAFE], 1.0)
    return POLLU_S @ r


def pollu_jac(t, y):
    dr = np.zeros((25, 20))
    np.add.at(dr, (_ROWS, POLLU_A), POLLU_K * np.where(_HAS_B, y[_B_SAFE], 1.0))
    np.add.at(dr, (_ROWS[_HAS_B], POLLU_B[_HAS_B]), POLLU_K[_HAS_B] * y[POLLU_A[_HAS_B]])
    return POLLU_S @ dr


POLLU_U0 = np.zeros(20)
POLLU_U0[[1, 3, 6, 7, 8, 16]] = [0.2, 0.04, 0.1, 0.3, 0.01, 0.007]

# --------------------------------------------------------------------------- VDPOL
VDPOL_MU = 1e6  # 1 / eps


def vdpol_f(t, y):
    return np.array([y[1], VDPOL_MU * ((1.0 - y[0] * y[0]) * y[1] - y[0])])


def vdpol_jac(t, y):
    return np.array([[0.0, 1.0], [VDPOL_MU * (-2.0 * y[0] * y[1] - 1.0), VDPOL_MU * (1.0 - y[0] * y[0])]])


# --------------------------------------------------------------------------- ROBER
ROBER_K = (0.04, 3e7, 1e4)


def rober_f(t, y):
    k1, k2, k3 = ROBER_K
    return np.array([
        -k1 * y[0] + k3 * y[1] * y[2],
        k1 * y[0] - k2 * y[1] * y[1] - k3 * y[1] * y[2],
        k2 * y[1] * y[1],
    ])


def rober_jac(t, y):
    k1, k2, k3 = ROBER_K
    return np.array([
        [-k1, k3 * y[2], k3 * y[1]],
        [k1, -2.0 * k2 * y[1] - k3 * y[2], -k3 * y[1]],
        [0.0, 2.0 * k2 * y[1], 0.0],
    ])


# --------------------------------------------------------------------------- AKZO
# An index-1 DAE (M = diag(1,1,1,1,1,0)). scipy has no mass matrices, so its peers solve
# the ODE left after eliminating the algebraic state y6 = Ks y1 y4 (5 states); y6 is
# appended afterwards. The solution is the same function.
AKZO_P = (18.7, 0.58, 0.09, 0.42, 34.4, 3.3, 115.83, 0.9, 737.0)  # k1..k4, K, klA, Ks, pCO2, H
AKZO_S = np.array([  # stoichiometry of r1..r5 in y1'..y5'
    [-2.0, 1.0, -1.0, -1.0, 0.0],
    [-0.5, 0.0, 0.0, -1.0, -0.5],
    [1.0, -1.0, 1.0, 0.0, 0.0],
    [0.0, -1.0, 1.0, -2.0, 0.0],
    [0.0, 1.0, -1.0, 0.0, 1.0],
])


def akzo_f(t, y):
    k1, k2, k3, k4, kbig, kla, ks, pco2, hen = AKZO_P
    y6 = ks * y[0] * y[3]
    s = math.sqrt(y[1]) if y[1] > 0.0 else 0.0
    r = np.array([k1 * y[0] ** 4 * s, k2 * y[2] * y[3], k2 / kbig * y[0] * y[4],
                  k3 * y[0] * y[3] ** 2, k4 * y6 * y6 * s])
    f = AKZO_S @ r
    f[1] += kla * (pco2 / hen - y[1])
    return f


def akzo_jac(t, y):
    k1, k2, k3, k4, kbig, kla, ks, _, _ = AKZO_P
    y1, y2, y3, y4, y5 = y
    s = math.sqrt(max(y2, 1e-300))
    y6 = ks * y1 * y4
    dr = np.zeros((5, 5))
    dr[0, 0], dr[0, 1] = 4.0 * k1 * y1 ** 3 * s, 0.5 * k1 * y1 ** 4 / s
    dr[1, 2], dr[1, 3] = k2 * y4, k2 * y3
    dr[2, 0], dr[2, 4] = k2 / kbig * y5, k2 / kbig * y1
    dr[3, 0], dr[3, 3] = k3 * y4 * y4, 2.0 * k3 * y1 * y4
    dr[4, 0], dr[4, 1], dr[4, 3] = 2.0 * k4 * y6 * s * ks * y4, 0.5 * k4 * y6 * y6 / s, 2.0 * k4 * y6 * s * ks * y1
    j = AKZO_S @ dr
    j[1, 1] -= kla
    return j


def akzo_full_state(y5):
    """The DAE's six states from the ODE form's five."""
    return [*map(float, y5), AKZO_P[6] * float(y5[0]) * float(y5[3])]


AKZO_U0 = [0.444, 0.00123, 0.0, 0.007, 0.0]

# --------------------------------------------------------------------------- E5
E5_P = (7.89e-10, 1.1e7, 1.13e3, 1e6)  # A, B, C, M


def e5_f(t, y):
    a, b, c, m = E5_P
    decay, capture, recomb, release = a * y[0], b * y[0] * y[2], c * m * y[1] * y[2], c * y[3]
    f2, f4 = decay - recomb, capture - release
    return np.array([-decay - capture, f2, f2 - f4, f4])


def e5_jac(t, y):
    a, b, c, m = E5_P
    cm = c * m
    r1 = [-a - b * y[2], 0.0, -b * y[0], 0.0]
    r2 = [a, -cm * y[2], -cm * y[1], 0.0]
    r4 = [b * y[2], 0.0, b * y[0], -c]
    return np.array([r1, r2, [x - z for x, z in zip(r2, r4)], r4])


# --------------------------------------------------------------------------- the set
# atol_ratio: atol = atol_ratio * rtol in every run, and the floor of `digits`.
PROBLEMS = {
    "hires": dict(f=hires_f, jac=hires_jac, u0=[1.0, 0, 0, 0, 0, 0, 0, 0.0057], t1=321.8122, atol_ratio=1e-4),
    "orego": dict(f=orego_f, jac=orego_jac, u0=[1.0, 2.0, 3.0], t1=360.0, atol_ratio=1.0),
    "pollu": dict(f=pollu_f, jac=pollu_jac, u0=list(POLLU_U0), t1=60.0, atol_ratio=1.0),
    "vdpol": dict(f=vdpol_f, jac=vdpol_jac, u0=[2.0, 0.0], t1=2.0, atol_ratio=1.0),
    "rober": dict(f=rober_f, jac=rober_jac, u0=[1.0, 0.0, 0.0], t1=1e11, atol_ratio=1e-4),
    "akzo": dict(f=akzo_f, jac=akzo_jac, u0=AKZO_U0, t1=180.0, atol_ratio=1.0, full_state=akzo_full_state),
    "e5": dict(f=e5_f, jac=e5_jac, u0=[1.76e-3, 0.0, 0.0, 0.0], t1=1e13, atol_ratio=1.7e-24),
}

# The test set's published end states (16 digits; see stiff_test_set.rs for how each was
# computed and checked).
REFERENCE = {
    "hires": [0.7371312573325668e-3, 0.1442485726316185e-3, 0.5888729740967575e-4, 0.1175651343283149e-2,
              0.2386356198831331e-2, 0.6238968252742796e-2, 0.2849998395185769e-2, 0.2850001604814231e-2],
    "orego": [0.1000814870318523e1, 0.1228178521549917e4, 0.1320554942846706e3],
    "pollu": [0.5646255480022769e-1, 0.1342484130422339, 0.4139734331099427e-8, 0.5523140207484359e-2,
              0.2018977262302196e-6, 0.1464541863493966e-6, 0.7784249118997964e-1, 0.3245075353396018,
              0.7494013383880406e-2, 0.1622293157301561e-7, 0.1135863833257075e-7, 0.2230505975721359e-2,
              0.2087162882798630e-3, 0.1396921016840158e-4, 0.8964884856898295e-2, 0.4352846369330103e-17,
              0.6899219696263405e-2, 0.1007803037365946e-3, 0.1772146513969984e-5, 0.5682943292316392e-4],
    "vdpol": [0.1706167732170483e1, -0.8928097010247975],
    "rober": [0.2083340149701255e-7, 0.8333360770334713e-13, 0.9999999791665050],
    "akzo": [0.1150794920661702, 0.1203831471567715e-2, 0.1611562887407974, 0.3656156421249283e-3,
             0.1708010885264404e-1, 0.4873531310307455e-2],
    "e5": [0.1152903278711829e-290, 0.8867655517642120e-22, 0.8854814626268838e-22, 0.0],
}


def digits(problem: str, u) -> float | None:
    """Correct digits as the test set's mixed error count:
    -log10 max_i |u_i - ref_i| / (floor + |ref_i|), floor = atol / rtol of the problem, so
    that tiny and zero reference components count by absolute error. None for a missing
    or non-finite answer."""
    ref = REFERENCE[problem]
    if u is None or len(u) != len(ref):
        return None
    floor = PROBLEMS[problem]["atol_ratio"]
    worst = 0.0
    for y, r in zip(u, ref):
        if not math.isfinite(y):
            return None
        worst = max(worst, abs(y - r) / (floor + abs(r)))
    return 17.0 if worst == 0.0 else -math.log10(worst)
