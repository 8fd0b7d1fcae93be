//! One stepping routine for every explicit Runge-Kutta tableau.
//!
//! The method is a type parameter carrying its tableau as a constant, so each method gets
//! its own monomorphised step in which the loops over stages have constant bounds and the
//! coefficients are compile-time constants (zero coefficients vanish).

use super::dense::Interpolant;
use super::solution::Stats;
use super::stepper::Stepper;
use super::tableau::ExplicitTableau;
use crate::{Model, Scalar};
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
pub(crate) struct ExplicitRk<T, R> {
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
    _method: PhantomData<R>,
}

impl<T: Scalar, R: ExplicitMethod> ExplicitRk<T, R> {
    pub(crate) fn new(n: usize) -> Self {
        Self {
            n,
            k: vec![T::zero(); R::TAB.c.len() * n],
            tmp: vec![T::zero(); n],
            k0_valid: false,
            extras_valid: false,
            detect: false,
            g_prev: Vec::new(),
            stiff_ratio: 0.0,
            _method: PhantomData,
        }
    }

    /// Estimate stiffness each step (for [`crate::Algorithm::Auto`]); only FSAL methods
    /// whose last two stages both sit at `t + h` support it.
    pub(crate) fn with_stiffness_detection(mut self) -> Self {
        let tab = R::TAB;
        self.detect = tab.fsal && tab.c[tab.stages - 2] == 1.0;
        self.g_prev = vec![T::zero(); self.n];
        self
    }

    /// `tmp = u + h * sum_{j<i} a[i][j] k_j`.
    #[inline(always)]
    fn stage_input(k: &[T], tmp: &mut [T], u: &[T], h: f64, row: &[f64], n: usize) {
        for c in 0..n {
            let mut acc = T::zero();
            for (j, &a) in row.iter().enumerate() {
                if a != 0.0 {
                    acc += k[j * n + c].scale(a);
                }
            }
            tmp[c] = u[c] + acc.scale(h);
        }
    }
}

impl<T: Scalar, M: Model, R: ExplicitMethod> Stepper<T, M> for ExplicitRk<T, R> {
    fn order(&self) -> u32 {
        R::TAB.order
    }

    fn interpolant(&self) -> Interpolant {
        Interpolant::Explicit(R::TAB)
    }

    fn ensure_f0(&mut self, model: &M, p: &[T], t: f64, u: &[T], stats: &mut Stats) -> &[T] {
        if !self.k0_valid {
            model.rhs(&mut self.k[..self.n], u, p, T::from_f64(t));
            stats.nf += 1;
            self.k0_valid = true;
        }
        &self.k[..self.n]
    }

    #[inline]
    fn attempt(
        &mut self,
        model: &M,
        p: &[T],
        t: f64,
        h: f64,
        u: &[T],
        u_new: &mut [T],
        err: &mut [T],
        stats: &mut Stats,
    ) {
        let tab = R::TAB;
        let n = self.n;
        self.ensure_f0(model, p, t, u, stats);
        self.extras_valid = false;
        let s = tab.stages;
        for i in 1..s {
            let (done, rest) = self.k.split_at_mut(i * n);
            Self::stage_input(done, &mut self.tmp, u, h, tab.a[i], n);
            model.rhs(&mut rest[..n], &self.tmp, p, T::from_f64(t + tab.c[i] * h));
            if self.detect && i == s - 2 {
                self.g_prev.copy_from_slice(&self.tmp);
            }
        }
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
            Self::stage_input(&self.k, u_new, u, h, tab.b, n);
        }
        for c in 0..n {
            let mut acc = T::zero();
            for (j, &e) in tab.e.iter().enumerate() {
                if e != 0.0 {
                    acc += self.k[j * n + c].scale(e);
                }
            }
            err[c] = acc.scale(h);
        }
    }

    fn dense_data(&mut self, model: &M, p: &[T], t: f64, h: f64, u: &[T], _u_new: &[T], stats: &mut Stats) -> &[T] {
        let tab = R::TAB;
        let n = self.n;
        let total = tab.c.len();
        if !self.extras_valid && total > tab.stages {
            for i in tab.stages..total {
                let (done, rest) = self.k.split_at_mut(i * n);
                Self::stage_input(done, &mut self.tmp, u, h, tab.a[i], n);
                model.rhs(&mut rest[..n], &self.tmp, p, T::from_f64(t + tab.c[i] * h));
            }
            stats.nf += total - tab.stages;
        }
        self.extras_valid = true;
        &self.k
    }

    fn accept(&mut self, discontinuity: bool) {
        let tab = R::TAB;
        let n = self.n;
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
