//! Non-intrusive least-squares shadowing (NILSS, after Ni and Wang 2017): the shadowing
//! direction sought in the span of a few homogeneous tangents instead of the whole tangent
//! space.
//!
//! On each segment, `u` homogeneous tangents `W_i` (the unstable directions, started
//! orthonormal and orthogonal to `f`) and one inhomogeneous tangent `v_i` per parameter
//! (`v' = J v + f_p`) ride along the trajectory; at the segment's end both are projected
//! orthogonal to `f` and renormalised, `P W_i(end) = Q R` (QR) and
//! `b = Q^T P v_i(end)`, `v_{i+1}(start) = P v_i(end) - Q b`. The shadowing direction is
//! `v_i + W_i a_i`, continuous (orthogonally to `f`) where `a_{i+1} = R a_i + b`, with the
//! least `sum integral |P (v_i + W_i a_i)|^2 dt`: a least-squares problem in the `u` numbers
//! per segment, whose multipliers solve a block tridiagonal system of `u x u` blocks.
//!
//! The time dilation is the projection: the shadowing direction is `v_perp = v - xi f`
//! (`xi = <v, f> / |f|^2`), continuous across the boundaries, and within a segment
//! `v_perp' = J v_perp + f_p - xi' f`, so `eta = -xi'` there (and nothing at the boundaries,
//! where `v_perp` does not jump though `xi` restarts at zero). Integrated by parts on each
//! segment, with `xi = 0` at its start,
//!
//! ```text
//! d<J>/dp = sum over segments of [ integral w (J_u v + J_p) dt + integral w' xi (J - <J>) dt
//!                                  - w xi (J - <J>) at the segment's end ]
//! ```
//!
//! for the window `w` (`1/T`, or `sin^2`). The tangents come from the segments' propagators
//! (`segments.rs`), the integrals by the trapezoid rule on the segment boundaries.

use super::kkt::BlockTridiagonal;
use super::segments::Segments;
use super::{Weights, Window};
use crate::error::{DiffsimError, Result};
use crate::problem::Model;
use crate::solve::{factors_by_columns, lu_factor, lu_solve};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What the least-squares problem needs from each segment.
struct Segment {
    /// `C_i = integral (P W)^T (P W)`, LU-factored column-major, and its pivots.
    c: Vec<f64>,
    piv: Vec<usize>,
    /// `d_i = integral (P W)^T (P v)`, per parameter (`u` each).
    d: Vec<f64>,
    /// `R` of the QR at the segment's end.
    r: Vec<f64>,
    /// `b = Q^T P v(end)` per parameter.
    b: Vec<f64>,
    /// The derivative's terms of this segment: a constant per parameter, and the
    /// coefficients of `a_i` (shared by the parameters).
    constant: Vec<f64>,
    linear: Vec<f64>,
}

/// `d<J>/dp` by NILSS with `unstable` homogeneous tangents.
pub(super) fn nilss<M: Model>(
    model: &M,
    p: &[f64],
    seg: &Segments,
    weights: &Weights,
    window: Window,
    unstable: usize,
) -> Result<Vec<f64>> {
    let (n, np, m, dt) = (seg.n, seg.np, seg.len(), seg.dt);
    let u = unstable;
    if u == 0 || u >= n {
        return Err(DiffsimError::InvalidOption {
            name: "unstable",
            why: format!(
                "NILSS needs between 1 and {} unstable directions (the states less the flow's own), got {u}",
                n - 1
            ),
        });
    }
    let span = dt * m as f64;
    let w = |k: usize| window.weight(k as f64 / m as f64) / span;
    let w_slope = |k: usize| window.slope(k as f64 / m as f64) / (span * span);
    let j_avg = weights.average;
    // The start: seeded random directions orthogonal to f, orthonormal; v = 0.
    let mut f = vec![0.0; n];
    model.rhs(&mut f, &seg.u[..n], p, seg.t0);
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut q: Vec<f64> = (0..n * u).map(|_| rng.random_range(-1.0..1.0)).collect();
    project_columns(&mut q, &f, n);
    let mut r_unused = vec![0.0; u * u];
    if !gram_schmidt(&mut q, &mut r_unused, n) {
        return Err(singular());
    }
    let mut v = vec![0.0; n * np];
    let mut segments = Vec::with_capacity(m);
    let (mut w_end, mut v_end) = (vec![0.0; n * u], vec![0.0; n * np]);
    for i in 0..m {
        let (phi, f_e) = (seg.phi(i), seg.f_end(i));
        // Propagate: W_e = Phi Q (n x u), v_e = Phi v + g (n x np), column-major blocks.
        for col in 0..u {
            matvec(phi, &q[col * n..(col + 1) * n], &mut w_end[col * n..(col + 1) * n]);
        }
        let mut g = vec![0.0; n];
        for j in 0..np {
            matvec(phi, &v[j * n..(j + 1) * n], &mut v_end[j * n..(j + 1) * n]);
            seg.g_column(i, j, &mut g);
            v_end[j * n..(j + 1) * n].iter_mut().zip(&g).for_each(|(x, y)| *x += y);
        }
        // The derivative's terms on this segment (trapezoid), affine in a_i: the start's
        // xi is zero (projected), the end's is <x, f_e> / |f_e|^2.
        let (ju_s, ju_e) = (&seg.j_u[i * n..(i + 1) * n], &seg.j_u[(i + 1) * n..(i + 2) * n]);
        let ff = dot(f_e, f_e);
        let j_e = seg.j[2 * i + 2] - j_avg;
        let term = |x_s: &[f64], x_e: &[f64]| {
            let xi_e = dot(x_e, f_e) / ff;
            0.5 * dt * (w(i) * dot(ju_s, x_s) + w(i + 1) * dot(ju_e, x_e)) + 0.5 * dt * w_slope(i + 1) * xi_e * j_e
                - w(i + 1) * xi_e * j_e
        };
        let linear: Vec<f64> =
            (0..u).map(|col| term(&q[col * n..(col + 1) * n], &w_end[col * n..(col + 1) * n])).collect();
        let constant: Vec<f64> = (0..np).map(|j| term(&v[j * n..(j + 1) * n], &v_end[j * n..(j + 1) * n])).collect();
        // Project the ends orthogonal to f.
        project_columns(&mut w_end, f_e, n);
        project_columns(&mut v_end, f_e, n);
        // C_i and d_i (trapezoid; the start's directions are orthogonal to f already).
        let mut c = vec![0.0; u * u];
        for a in 0..u {
            for bcol in 0..u {
                c[a * u + bcol] = 0.5
                    * dt
                    * (dot(&q[a * n..(a + 1) * n], &q[bcol * n..(bcol + 1) * n])
                        + dot(&w_end[a * n..(a + 1) * n], &w_end[bcol * n..(bcol + 1) * n]));
            }
        }
        let mut d = vec![0.0; u * np];
        for j in 0..np {
            for a in 0..u {
                d[j * u + a] = 0.5
                    * dt
                    * (dot(&q[a * n..(a + 1) * n], &v[j * n..(j + 1) * n])
                        + dot(&w_end[a * n..(a + 1) * n], &v_end[j * n..(j + 1) * n]));
            }
        }
        let mut piv = vec![0; u];
        if !lu_factor(&mut c, &mut piv, u) {
            return Err(singular());
        }
        let mut c_cols = vec![0.0; u * u];
        factors_by_columns(&c, u, &mut c_cols);
        // Renormalise: P W_e = Q R; b = Q^T P v_e; v_next = P v_e - Q b.
        let mut r = vec![0.0; u * u];
        if !gram_schmidt(&mut w_end, &mut r, n) {
            return Err(singular());
        }
        let mut b = vec![0.0; u * np];
        for j in 0..np {
            let vj = &mut v_end[j * n..(j + 1) * n];
            for a in 0..u {
                let qa = &w_end[a * n..(a + 1) * n];
                let coef = dot(qa, vj);
                b[j * u + a] = coef;
                vj.iter_mut().zip(qa).for_each(|(x, y)| *x -= coef * y);
            }
        }
        segments.push(Segment { c: c_cols, piv, d, r, b, constant, linear });
        std::mem::swap(&mut q, &mut w_end);
        std::mem::swap(&mut v, &mut v_end);
    }
    // The multipliers of a_{i+1} = R_{i+1} a_i + b_{i+1} (R_{i+1}, b_{i+1}: segment i's).
    let blocks = m - 1;
    let mut system = BlockTridiagonal::new(blocks.max(1), u);
    let c_inv = |i: usize, x: &mut [f64]| lu_solve(&segments[i].c, &segments[i].piv, u, x);
    // R_j C_{j-1}^{-1} (u x u), for constraint j between segments j - 1 and j.
    let r_cinv = |j: usize| -> Vec<f64> {
        let r = &segments[j - 1].r;
        let mut out = vec![0.0; u * u];
        let mut row = vec![0.0; u];
        for a in 0..u {
            // Row a of R C^{-1} = (C^{-T} R_a^T)^T; C is symmetric.
            row.copy_from_slice(&r[a * u..(a + 1) * u]);
            c_inv(j - 1, &mut row);
            out[a * u..(a + 1) * u].copy_from_slice(&row);
        }
        out
    };
    for q_idx in 0..blocks {
        let j = q_idx + 1;
        let rc = r_cinv(j);
        let r = &segments[j - 1].r;
        let diag = system.diag_mut(q_idx);
        // C_j^{-1} + R_j C_{j-1}^{-1} R_j^T.
        let mut col = vec![0.0; u];
        for c in 0..u {
            col.iter_mut().enumerate().for_each(|(k, x)| *x = if k == c { 1.0 } else { 0.0 });
            c_inv(j, &mut col);
            for a in 0..u {
                diag[a * u + c] = col[a] + (0..u).map(|k| rc[a * u + k] * r[c * u + k]).sum::<f64>();
            }
        }
        if q_idx > 0 {
            system.sub_mut(q_idx).iter_mut().zip(&rc).for_each(|(s, x)| *s = -x);
        }
    }
    if blocks > 0 && !system.factor() {
        return Err(singular());
    }
    let mut out = vec![0.0; np];
    let mut lambda = vec![0.0; blocks * u];
    let mut x = vec![0.0; u];
    for (j, o) in out.iter_mut().enumerate() {
        // Right-hand side: -b_j - (C_j^{-1} d_j - R_j C_{j-1}^{-1} d_{j-1}).
        for q_idx in 0..blocks {
            let i = q_idx + 1;
            x.copy_from_slice(&segments[i].d[j * u..(j + 1) * u]);
            c_inv(i, &mut x);
            let mut prev = segments[i - 1].d[j * u..(j + 1) * u].to_vec();
            c_inv(i - 1, &mut prev);
            let r = &segments[i - 1].r;
            for a in 0..u {
                let r_prev: f64 = (0..u).map(|k| r[a * u + k] * prev[k]).sum();
                lambda[q_idx * u + a] = -segments[i - 1].b[j * u + a] - x[a] + r_prev;
            }
        }
        if blocks > 0 {
            system.solve(&mut lambda);
        }
        // a_i = -C_i^{-1} (d_i + lambda_i - R_{i+1}^T lambda_{i+1}), and the derivative.
        let mut total: f64 = (0..=m).map(|k| weights.point[k] * seg.j_p[k * np + j]).sum();
        for (i, s) in segments.iter().enumerate() {
            x.copy_from_slice(&s.d[j * u..(j + 1) * u]);
            if i >= 1 {
                x.iter_mut().zip(&lambda[(i - 1) * u..i * u]).for_each(|(a, l)| *a += l);
            }
            if i + 1 < m {
                let l_next = &lambda[i * u..(i + 1) * u];
                for (a, xa) in x.iter_mut().enumerate() {
                    *xa -= (0..u).map(|k| s.r[k * u + a] * l_next[k]).sum::<f64>();
                }
            }
            c_inv(i, &mut x);
            total += s.constant[j] - dot(&s.linear, &x);
        }
        *o = total;
    }
    Ok(out)
}

fn singular() -> DiffsimError {
    DiffsimError::InvalidOption {
        name: "unstable",
        why: "the homogeneous tangents became linearly dependent or not finite: use fewer unstable directions".into(),
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `out = a x` for a row-major square `a`.
fn matvec(a: &[f64], x: &[f64], out: &mut [f64]) {
    let n = x.len();
    for (r, o) in out.iter_mut().enumerate() {
        *o = dot(&a[r * n..(r + 1) * n], x);
    }
}

/// Remove each column's component along `f` (columns of length `n`, stored one after another).
fn project_columns(cols: &mut [f64], f: &[f64], n: usize) {
    let ff = dot(f, f);
    for col in cols.chunks_exact_mut(n) {
        let c = dot(col, f) / ff;
        col.iter_mut().zip(f).for_each(|(x, y)| *x -= c * y);
    }
}

/// Modified Gram-Schmidt on the columns (in place: `Q`), `R` row-major upper triangular.
/// False if a column is dependent on the ones before it.
fn gram_schmidt(cols: &mut [f64], r: &mut [f64], n: usize) -> bool {
    let u = cols.len() / n;
    r.fill(0.0);
    for a in 0..u {
        for b in 0..a {
            let (done, rest) = cols.split_at_mut(a * n);
            let (qb, qa) = (&done[b * n..(b + 1) * n], &mut rest[..n]);
            let c = dot(qb, qa);
            r[b * u + a] = c;
            qa.iter_mut().zip(qb).for_each(|(x, y)| *x -= c * y);
        }
        let col = &mut cols[a * n..(a + 1) * n];
        let norm = dot(col, col).sqrt();
        if norm == 0.0 || !norm.is_finite() {
            return false;
        }
        r[a * u + a] = norm;
        col.iter_mut().for_each(|x| *x /= norm);
    }
    true
}
