//! Dense Jacobians of a model's right-hand side: forward-mode AD in chunks, or finite
//! differences as a fallback.

use super::Dual;
use crate::problem::Model;

/// Chunk width: the number of Jacobian columns one AD evaluation of `f` produces.
pub(super) const CHUNK: usize = 8;

/// Reusable buffers for the forward-mode Jacobian `J = df/du` and `df/dt` of a model.
///
/// ```
/// use diffsim::{ad::ForwardJacobian, models::Lorenz, Model};
/// let mut fj = ForwardJacobian::new(3, 3);
/// let mut jac = vec![0.0; 9];
/// let mut dfdt = vec![0.0; 3];
/// fj.evaluate(&Lorenz, &[1.0, 2.0, 3.0], &[10.0, 28.0, 8.0 / 3.0], 0.0, &mut jac, Some(&mut dfdt));
/// assert_eq!(jac[0], -10.0); // d(sigma (y - x))/dx
/// assert_eq!(jac[1], 10.0);
/// ```
#[derive(Clone, Debug)]
pub struct ForwardJacobian {
    u: Vec<Dual<CHUNK>>,
    p: Vec<Dual<CHUNK>>,
    du: Vec<Dual<CHUNK>>,
}

impl ForwardJacobian {
    /// Buffers for a model with `n` states and `np` parameters.
    pub fn new(n: usize, np: usize) -> Self {
        Self { u: vec![Dual::default(); n], p: vec![Dual::default(); np], du: vec![Dual::default(); n] }
    }

    /// Write the row-major Jacobian into `jac` (`n * n`) and, if asked, `df/dt` into `dfdt`.
    /// Returns how many (chunked) evaluations of `f` it took.
    pub fn evaluate<M: Model>(
        &mut self,
        model: &M,
        u: &[f64],
        p: &[f64],
        t: f64,
        jac: &mut [f64],
        dfdt: Option<&mut [f64]>,
    ) -> usize {
        let n = u.len();
        let read = |start: usize, width: usize, du: &[Dual<CHUNK>]| {
            for (i, d) in du.iter().enumerate() {
                jac[i * n + start..i * n + start + width].copy_from_slice(&d.d[..width]);
            }
        };
        self.seeded_passes(model, u, p, t, n, |j| j, read, dfdt)
    }

    /// The chunked forward passes shared by the dense and the compressed (sparse) Jacobian:
    /// state `j` is seeded in dual slot `slot(j) - start` of the pass whose slots
    /// `start..start + width` hold it (`n_slots` slots in all), `t` in a spare slot of the
    /// first pass that has one (an extra pass if none does), and `read(start, width, f)` sees
    /// each pass's output. Returns the number of passes.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn seeded_passes<M: Model>(
        &mut self,
        model: &M,
        u: &[f64],
        p: &[f64],
        t: f64,
        n_slots: usize,
        slot: impl Fn(usize) -> usize,
        mut read: impl FnMut(usize, usize, &[Dual<CHUNK>]),
        mut dfdt: Option<&mut [f64]>,
    ) -> usize {
        for (d, &x) in self.p.iter_mut().zip(p) {
            *d = Dual::constant(x);
        }
        let mut evals = 0;
        let mut start = 0;
        let mut time_done = dfdt.is_none();
        while start < n_slots || !time_done {
            let width = (n_slots - start).min(CHUNK);
            for (j, (d, &x)) in self.u.iter_mut().zip(u).enumerate() {
                let s = slot(j);
                *d = if s >= start && s < start + width { Dual::variable(x, s - start) } else { Dual::constant(x) };
            }
            // Seed time in a spare slot of this chunk, if there is one.
            let seed_time = !time_done && width < CHUNK;
            let td = if seed_time { Dual::variable(t, width) } else { Dual::constant(t) };
            model.rhs(&mut self.du, &self.u, &self.p, td);
            evals += 1;
            read(start, width, &self.du);
            if seed_time {
                if let Some(ft) = dfdt.as_deref_mut() {
                    for (o, d) in ft.iter_mut().zip(&self.du) {
                        *o = d.d[width];
                    }
                }
                time_done = true;
            }
            start += width;
        }
        evals
    }

    /// Only `df/dt` (for models with an analytic Jacobian): one evaluation.
    pub fn time_derivative<M: Model>(&mut self, model: &M, u: &[f64], p: &[f64], t: f64, dfdt: &mut [f64]) {
        for (d, &x) in self.p.iter_mut().zip(p) {
            *d = Dual::constant(x);
        }
        for (d, &x) in self.u.iter_mut().zip(u) {
            *d = Dual::constant(x);
        }
        model.rhs(&mut self.du, &self.u, &self.p, Dual::variable(t, 0));
        for (o, d) in dfdt.iter_mut().zip(&self.du) {
            *o = d.d[0];
        }
    }
}

/// Forward-difference Jacobian (and optionally `df/dt`) given `f0 = f(u, p, t)`.
/// `work_u` and `work_f` are scratch of length `n`. Returns the number of `f` evaluations.
#[allow(clippy::too_many_arguments)]
pub fn jacobian_fd<M: Model>(
    model: &M,
    u: &[f64],
    p: &[f64],
    t: f64,
    f0: &[f64],
    jac: &mut [f64],
    dfdt: Option<&mut [f64]>,
    work_u: &mut [f64],
    work_f: &mut [f64],
) -> usize {
    let n = u.len();
    let sqrt_eps = f64::EPSILON.sqrt();
    work_u.copy_from_slice(u);
    for j in 0..n {
        let h = sqrt_eps * u[j].abs().max(1.0);
        work_u[j] = u[j] + h;
        let h = work_u[j] - u[j]; // the step actually represented
        model.rhs(work_f, work_u, p, t);
        for i in 0..n {
            jac[i * n + j] = (work_f[i] - f0[i]) / h;
        }
        work_u[j] = u[j];
    }
    let mut evals = n;
    if let Some(ft) = dfdt {
        let h = sqrt_eps * t.abs().max(1.0);
        let th = t + h;
        model.rhs(work_f, u, p, th);
        for i in 0..n {
            ft[i] = (work_f[i] - f0[i]) / (th - t);
        }
        evals += 1;
    }
    evals
}
