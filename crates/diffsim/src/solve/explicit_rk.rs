//! One stepping routine for every explicit Runge-Kutta tableau.
//!
//! The method is a type parameter carrying its tableau as a constant, so each method gets
//! its own monomorphised step in which the loops over stages have constant bounds and the
//! coefficients are compile-time constants (zero coefficients vanish).

use super::dense::Interpolant;
use super::solution::{Stats, StepRecord};
use super::stepper::{Plain, StageEval, Stepper};
use super::tableau::ExplicitTableau;
use crate::problem::Model;
use crate::scalar::Scalar;
use std::marker::PhantomData;

/// An explicit Runge-Kutta method, identified by its tableau.
pub(crate) trait ExplicitMethod {
    const TAB: &'static ExplicitTableau;
}

macro_rules! explicit_method {
    ($name:ident, $tab:path) => {
        pub(crate) struct $name;
        impl ExplicitMethod for $name {
            const TAB: &'static ExplicitTableau = &$tab;
        }
    };
}
explicit_method!(Tsit5, super::tableau::tsit5::TSIT5);
explicit_method!(Dp5, super::tableau::dp5::DP5);
explicit_method!(Bs3, super::tableau::bs3::BS3);
explicit_method!(Vern7, super::tableau::vern7::VERN7);

/// Stage buffers of an explicit RK solve.
/// `N > 0` specialises the stepper to exactly `N` states (loops over components unroll);
/// `N = 0` works for any size. `E` evaluates the stages (see [`StageEval`]).
pub(crate) struct ExplicitRk<T, R, const N: usize, E = Plain> {
    n: usize,
    /// All stage values, stage-major (`total_stages * n`).
    k: Vec<T>,
    tmp: Vec<T>,
    k0_valid: bool,
    extras_valid: bool,
    /// Stiffness detection (Hairer): keep the penultimate stage's input.
    detect: bool,
    g_prev: Vec<T>,
    stiff_ratio: f64,
    eval: E,
    _method: PhantomData<R>,
}

impl<T: Scalar, R: ExplicitMethod, const N: usize> ExplicitRk<T, R, N, Plain> {
    pub(crate) fn new(n: usize) -> Self {
        debug_assert!(N == 0 || N == n);
        Self {
            n,
            k: vec![T::zero(); R::TAB.c.len() * n],
            tmp: vec![T::zero(); n],
            k0_valid: false,
            extras_valid: false,
            detect: false,
            g_prev: Vec::new(),
            stiff_ratio: 0.0,
            eval: Plain,
            _method: PhantomData,
        }
    }
}

impl<T: Scalar, R: ExplicitMethod, const N: usize, E> ExplicitRk<T, R, N, E> {
    /// The same stepper evaluating its stages through `eval`.
    pub(crate) fn with_eval<F>(self, eval: F) -> ExplicitRk<T, R, N, F> {
        let Self { n, k, tmp, k0_valid, extras_valid, detect, g_prev, stiff_ratio, eval: _, _method } = self;
        ExplicitRk { n, k, tmp, k0_valid, extras_valid, detect, g_prev, stiff_ratio, eval, _method }
    }

    /// The stage evaluator, after the solve.
    pub(crate) fn into_eval(self) -> E {
        self.eval
    }

    /// Estimate stiffness each step (for [`crate::Algorithm::Auto`]); only FSAL methods
    /// whose last two stages both sit at `t + h` support it.
    pub(crate) fn with_stiffness_detection(mut self) -> Self {
        let tab = R::TAB;
        self.detect = tab.fsal && tab.c[tab.stages - 2] == 1.0;
        self.g_prev = vec![T::zero(); self.n];
        self
    }

    /// The state size: the constant `N` when specialised, else the runtime size.
    #[inline(always)]
    fn n(&self) -> usize {
        if N > 0 {
            N
        } else {
            self.n
        }
    }
}

/// `out = u + h * sum_j w[j] k_j` over the first `w.len()` stages (without `u` when it is
/// `None`), as every explicit step computes it; the discrete adjoint rebuilds its stage
/// inputs with this same function, so they match the forward solve bit for bit.
///
/// The order of operations keeps the newest stage off the long path: its term is
/// `k_last * (w_last h)`, added last to `u + sum_{j<last} (w_j h) k_j`, which was summed
/// while `k_last` was still being evaluated. (The textbook `u + h * (sum_j w_j k_j)` puts a
/// multiply by `h` and two adds after `k_last` arrives. Small systems' steps are a chain of
/// such stages, so this order shortens every step.)
///
/// Called with constant `w` (see [`unrolled`]) the zero tests fold away and the `j` loop
/// unrolls; with a constant `n` the whole combination is straight-line code.
#[inline(always)]
pub(crate) fn stage_combination<T: Scalar>(k: &[T], out: &mut [T], u: Option<&[T]>, h: f64, w: &[f64], n: usize) {
    let last = w.iter().rposition(|&x| x != 0.0);
    let k = &k[..w.len() * n];
    let out = &mut out[..n];
    for c in 0..n {
        // `None` rather than a zero start: `0 + x` is not free in floating point.
        let mut older: Option<T> = None;
        let mut newest: Option<T> = None;
        for (j, &wj) in w.iter().enumerate() {
            if wj != 0.0 {
                let term = k[j * n + c].scale(wj * h);
                if Some(j) == last {
                    newest = Some(term);
                } else {
                    older = Some(older.map_or(term, |acc| acc + term));
                }
            }
        }
        let base = match (u, older) {
            (Some(u), Some(acc)) => Some(u[c] + acc),
            (Some(u), None) => Some(u[c]),
            (None, acc) => acc,
        };
        out[c] = match (base, newest) {
            (Some(b), Some(x)) => b + x,
            (Some(b), None) => b,
            (None, Some(x)) => x,
            (None, None) => T::zero(),
        };
    }
}

/// Run `$body` with `$i` bound to each constant 1..=15 below `$s`: the stage loop is
/// unrolled at compile time, so each stage reads its tableau row as a constant.
macro_rules! unrolled {
    ($s:expr, |$i:ident| $body:block) => {
        unrolled!(@ $s, $i, $body, 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
    };
    (@ $s:expr, $i:ident, $body:block, $($n:literal)*) => {
        $( if $n < $s { const $i: usize = $n; $body } )*
    };
}

impl<T: Scalar, M: Model, R: ExplicitMethod, const N: usize, E: StageEval<T, M>> Stepper<T, M>
    for ExplicitRk<T, R, N, E>
{
    fn order(&self) -> u32 {
        R::TAB.order
    }

    fn error_order(&self) -> u32 {
        R::TAB.embedded_order + 1
    }

    fn interpolant(&self) -> Interpolant {
        Interpolant::Explicit(R::TAB)
    }

    fn ensure_f0(&mut self, model: &M, p: &[T], t: f64, u: &[T], stats: &mut Stats) -> &[T] {
        if !self.k0_valid {
            let n = self.n();
            self.eval.rhs(model, &mut self.k[..n], u, p, t);
            stats.nf += 1;
            self.k0_valid = true;
        }
        &self.k[..self.n()]
    }

    #[inline]
    fn attempt(
        &mut self,
        model: &M,
        p: &[T],
        times: &StepRecord,
        u: &[T],
        u_new: &mut [T],
        err: &mut [T],
        stats: &mut Stats,
    ) {
        let tab = R::TAB;
        let n = self.n();
        let h = times.h;
        self.ensure_f0(model, p, times.first, u, stats);
        self.extras_valid = false;
        let s = tab.stages;
        unrolled!(s, |I| {
            let (done, rest) = self.k.split_at_mut(I * n);
            stage_combination(done, &mut self.tmp, Some(u), h, tab.a[I], n);
            self.eval.rhs(model, &mut rest[..n], &self.tmp, p, times.stage_time(tab.c[I]));
            if self.detect && I == s - 2 {
                self.g_prev.copy_from_slice(&self.tmp);
            }
        });
        stats.nf += s - 1;
        if self.detect {
            // rho ~ |f(u_new) - f(g)| / |u_new - g| for two points at the same time t + h.
            let (mut num, mut den) = (0.0, 0.0);
            for c in 0..n {
                let dk = (self.k[(s - 1) * n + c] - self.k[(s - 2) * n + c]).value();
                let du = (self.tmp[c] - self.g_prev[c]).value();
                num += dk * dk;
                den += du * du;
            }
            // 3.25: Hairer's boundary for DOPRI5; Tsit5's real stability interval is similar.
            self.stiff_ratio = if den > 0.0 { h.abs() * (num / den).sqrt() / 3.25 } else { 0.0 };
        }
        if tab.fsal {
            // The last stage was evaluated at u_new itself.
            u_new.copy_from_slice(&self.tmp);
        } else {
            stage_combination(&self.k, u_new, Some(u), h, tab.b, n);
        }
        stage_combination(&self.k, err, None, h, tab.e, n);
    }

    fn dense_data(&mut self, model: &M, p: &[T], times: &StepRecord, u: &[T], _u_new: &[T], stats: &mut Stats) -> &[T] {
        let tab = R::TAB;
        let h = times.h;
        let n = self.n();
        let total = tab.c.len();
        if !self.extras_valid && total > tab.stages {
            for i in tab.stages..total {
                let (done, rest) = self.k.split_at_mut(i * n);
                stage_combination(done, &mut self.tmp, Some(u), h, tab.a[i], n);
                self.eval.rhs(model, &mut rest[..n], &self.tmp, p, times.stage_time(tab.c[i]));
            }
            stats.nf += total - tab.stages;
        }
        self.extras_valid = true;
        &self.k
    }

    fn accept(&mut self, discontinuity: bool) {
        let tab = R::TAB;
        let n = self.n();
        if tab.fsal && !discontinuity {
            let s = tab.stages;
            self.k.copy_within((s - 1) * n..s * n, 0);
            self.k0_valid = true;
        } else {
            self.k0_valid = false;
        }
    }

    fn stiffness_ratio(&self) -> Option<f64> {
        self.detect.then_some(self.stiff_ratio)
    }
}
