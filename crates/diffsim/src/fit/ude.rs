//! Universal differential equations: known physics plus a neural network, as one model.
//!
//! `u' = physics(u, t) + NN(map(u); p)`, where `p` holds only the network's parameters and
//! `map` is an elementwise input transformation (identity, or for example `u^3` in the
//! spiral benchmark). A neural ODE is the case without physics ([`NoPhysics`]).
//!
//! The model's VJP ([`AnalyticVjp`]) uses the network's own backward pass and forward-mode AD for
//! the (small) physics part, so every adjoint gets its VJPs at the cost of about two network
//! evaluations, independent of the number of parameters.

use crate::ad::Dual;
use crate::capabilities::{AnalyticVjp, Derivatives, RecordedVjp};
use crate::error::{DiffsimError, Result};
use crate::nn::{Activation, Mlp, MlpWorkspace};
use crate::problem::Model;
use crate::scalar::Scalar;

/// The known part of a universal differential equation, written once for every number type.
pub trait Physics: Send + Sync {
    /// Write the known part of `u'` at `(u, t)` into `du` (overwrite, not add).
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], t: T);
    /// `false` when the known part is identically zero (a neural ODE): its VJP is skipped.
    fn is_present(&self) -> bool {
        true
    }
}

/// No known physics: a neural ODE `u' = NN(map(u))`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoPhysics;

impl Physics for NoPhysics {
    fn rhs<T: Scalar>(&self, du: &mut [T], _u: &[T], _t: T) {
        du.fill(T::zero());
    }
    fn is_present(&self) -> bool {
        false
    }
}

/// Buffers of the hand-written VJP: each adjoint owns one ([`AnalyticVjp::Workspace`]).
#[derive(Clone, Debug)]
pub struct UdeWorkspace {
    ws: MlpWorkspace<f64>,
    x: Vec<f64>,
    y: Vec<f64>,
    xbar: Vec<f64>,
    ud: Vec<Dual<8>>,
    fd: Vec<Dual<8>>,
    w: Vec<f64>,
}

/// `u' = physics(u, t) + NN(map(u); p)`; the parameters are the network's.
///
/// ```
/// use diffsim::capabilities::AnalyticVjp;
/// use diffsim::fit::{NoPhysics, Ude};
/// use diffsim::nn::{Activation, Init, Mlp};
/// use diffsim::Model;
/// let net = Mlp::with_hidden(&[2, 16, 2], Activation::Tanh).unwrap();
/// let p = net.init_params(Init::GlorotUniform, 1, 1.0);
/// let model = Ude::new(NoPhysics, net, Activation::Identity).unwrap();
/// let (mut du, mut dp) = (vec![0.0; 2], vec![0.0; model.n_params()]);
/// // Its hand-written VJP, which every adjoint uses.
/// assert!(model.derivatives().has_vjp());
/// let mut ws = model.workspace();
/// model.vjp(&mut ws, &[1.0, 0.0], &[0.5, 0.2], &p, 0.0, &mut du, &mut dp);
/// ```
#[derive(Clone, Debug)]
pub struct Ude<P> {
    physics: P,
    net: Mlp,
    input: Activation,
    /// The network sees `map(u) * in_scale` and contributes `out_scale * NN(..)`.
    in_scale: Vec<f64>,
    out_scale: Vec<f64>,
}

impl<P: Physics> Ude<P> {
    /// Known `physics`, a network `net` whose inputs and outputs are the states, and an
    /// elementwise map of the states before the network.
    pub fn new(physics: P, net: Mlp, input: Activation) -> Result<Self> {
        let n = net.n_inputs();
        if net.n_outputs() != n {
            return Err(DiffsimError::SizeMismatch {
                what: "network outputs (must equal its inputs, the states)",
                expected: n,
                got: net.n_outputs(),
            });
        }
        Ok(Self { physics, net, input, in_scale: vec![1.0; n], out_scale: vec![1.0; n] })
    }

    /// Scale the network's inputs (after the map) and outputs per state, so that a network
    /// with unit-sized weights sees and produces values of the data's size: inputs divided by
    /// `input_size`, outputs multiplied by `output_size`.
    pub fn with_scales(mut self, input_size: &[f64], output_size: &[f64]) -> Result<Self> {
        let n = self.in_scale.len();
        for (what, v) in [("input sizes", input_size), ("output sizes", output_size)] {
            if v.len() != n {
                return Err(DiffsimError::SizeMismatch { what, expected: n, got: v.len() });
            }
            if v.iter().any(|x| !x.is_finite() || *x <= 0.0) {
                return Err(DiffsimError::InvalidOption {
                    name: "ude scales",
                    why: format!("{what} must be positive and finite"),
                });
            }
        }
        self.in_scale = input_size.iter().map(|s| 1.0 / s).collect();
        self.out_scale = output_size.to_vec();
        Ok(self)
    }

    /// The network.
    pub fn net(&self) -> &Mlp {
        &self.net
    }

    /// The known physics.
    pub fn physics(&self) -> &P {
        &self.physics
    }

    /// `du = physics(u, t) + out_scale * net(in_scale * map(u))`, with `net(x, y)` the
    /// network's forward pass (plain, or recording). The network's input and output live in
    /// stack buffers sized to the state: zeroing two 64-element buffers on every call cost a
    /// noticeable part of a small network's evaluation.
    #[inline(always)]
    fn eval_with<T: Scalar>(&self, du: &mut [T], u: &[T], t: T, net: impl FnOnce(&[T], &mut [T])) {
        match u.len() {
            0..=4 => self.eval_in::<T, 4>(du, u, t, net),
            5..=16 => self.eval_in::<T, 16>(du, u, t, net),
            17..=64 => self.eval_in::<T, 64>(du, u, t, net),
            n => {
                // Rare: wide state vectors pay for allocation.
                let mut x = vec![T::zero(); n];
                let mut y = vec![T::zero(); n];
                self.eval_buffers(du, u, t, net, &mut x, &mut y);
            }
        }
    }

    #[inline(always)]
    fn eval_in<T: Scalar, const W: usize>(&self, du: &mut [T], u: &[T], t: T, net: impl FnOnce(&[T], &mut [T])) {
        let n = u.len();
        let mut x = [T::zero(); W];
        let mut y = [T::zero(); W];
        self.eval_buffers(du, u, t, net, &mut x[..n], &mut y[..n]);
    }

    #[inline(always)]
    fn eval_buffers<T: Scalar>(
        &self,
        du: &mut [T],
        u: &[T],
        t: T,
        net: impl FnOnce(&[T], &mut [T]),
        x: &mut [T],
        y: &mut [T],
    ) {
        for ((xi, &ui), &s) in x.iter_mut().zip(u).zip(&self.in_scale) {
            *xi = self.input.apply(ui).scale(s);
        }
        net(x, y);
        self.physics.rhs(du, u, t);
        for ((d, &v), &s) in du.iter_mut().zip(&*y).zip(&self.out_scale) {
            *d += v.scale(s);
        }
    }

    /// The VJP; with a `record` of this point's forward pass, the network's backward pass
    /// starts from it instead of repeating the forward pass.
    #[allow(clippy::too_many_arguments)]
    fn vjp_with(
        &self,
        s: &mut UdeWorkspace,
        w: &[f64],
        u: &[f64],
        p: &[f64],
        t: f64,
        record: Option<&[f64]>,
        du: &mut [f64],
        dp: &mut [f64],
        pending: Option<&mut Vec<f64>>,
    ) {
        let n = self.in_scale.len();
        if u.len() != n || w.len() != n || du.len() != n || p.len() != self.net.n_params() || dp.len() != p.len() {
            return;
        }
        // From a record, a network of the one-sweep backward pass needs no network workspace
        // (`backward_record_fused` declines other shapes, doing nothing).
        if let Some(record) = record.filter(|_| n <= 4) {
            let (mut wn, mut xbar) = ([0.0; 4], [0.0; 4]);
            for i in 0..n {
                wn[i] = w[i] * self.out_scale[i];
            }
            // With `pending`, the parameter gradient waits there for `flush_pending`.
            let done = match pending {
                Some(buf) => self.net.backward_record_pending(p, record, &wn[..n], &mut xbar[..n], buf),
                None => self.net.backward_record_fused(p, record, &wn[..n], &mut xbar[..n], dp),
            };
            if done {
                self.finish_input_adjoint(s, du, &xbar[..n], w, u, t);
                return;
            }
        }
        for i in 0..n {
            s.w[i] = w[i] * self.out_scale[i];
        }
        s.xbar.fill(0.0);
        match record {
            Some(record) => self.net.backward_record(p, record, &s.w, Some(&mut s.xbar), Some(dp), &mut s.ws),
            None => {
                for i in 0..n {
                    s.x[i] = self.input.value_f64(u[i]) * self.in_scale[i];
                }
                // Sizes were checked above and the workspace was built for this network.
                self.net.vjp_unchecked(p, &s.x, &mut s.y, &s.w, Some(&mut s.xbar), Some(dp), &mut s.ws);
            }
        }
        self.add_input_adjoint(du, &s.xbar, u);
        if self.physics.is_present() {
            self.physics_vjp(s, w, u, t, du);
        }
    }

    /// `record` when it has the network's record length (a record the model left), else `None`.
    fn checked_record<'r>(&self, record: &'r [f64]) -> Option<&'r [f64]> {
        (record.len() == self.net.record_len()).then_some(record)
    }

    /// After a fused backward pass gave the network input's adjoint `xbar`: `du` gets it
    /// through the input map, and the physics' VJP.
    #[inline(always)]
    fn finish_input_adjoint(&self, s: &mut UdeWorkspace, du: &mut [f64], xbar: &[f64], w: &[f64], u: &[f64], t: f64) {
        self.add_input_adjoint(du, xbar, u);
        if self.physics.is_present() {
            self.physics_vjp(s, w, u, t, du);
        }
    }

    /// `du += (d map / du)^T x_bar` for the network input's adjoint `x_bar`.
    #[inline(always)]
    fn add_input_adjoint(&self, du: &mut [f64], xbar: &[f64], u: &[f64]) {
        for (((d, &xb), &ui), &si) in du.iter_mut().zip(xbar).zip(u).zip(&self.in_scale) {
            *d += xb * si * self.input.derivative_f64(ui);
        }
    }

    /// `du += (d physics / du)^T w` by forward-mode AD, eight state directions at a time.
    fn physics_vjp(&self, s: &mut UdeWorkspace, w: &[f64], u: &[f64], t: f64, du: &mut [f64]) {
        let n = u.len();
        let mut start = 0;
        while start < n {
            let end = (start + 8).min(n);
            for (j, d) in s.ud.iter_mut().enumerate() {
                *d = if (start..end).contains(&j) { Dual::variable(u[j], j - start) } else { Dual::constant(u[j]) };
            }
            self.physics.rhs(&mut s.fd, &s.ud, Dual::constant(t));
            for j in start..end {
                du[j] += s.fd.iter().zip(w).map(|(f, &wi)| f.d[j - start] * wi).sum::<f64>();
            }
            start = end;
        }
    }

    /// The network's term alone, `NN(map(u); p)`, at one state.
    pub fn network_term(&self, u: &[f64], p: &[f64], out: &mut [f64]) {
        let x: Vec<f64> = u.iter().zip(&self.in_scale).map(|(&v, s)| self.input.value_f64(v) * s).collect();
        self.net.forward(p, &x, out);
        out.iter_mut().zip(&self.out_scale).for_each(|(o, s)| *o *= s);
    }
}

impl<P: Physics> Model for Ude<P> {
    fn n_states(&self) -> usize {
        self.net.n_inputs()
    }
    fn n_params(&self) -> usize {
        self.net.n_params()
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
        self.eval_with(du, u, t, |x, y| self.net.forward(p, x, y));
    }
    fn derivatives(&self) -> Derivatives<'_> {
        Derivatives::none().recorded_vjp(self)
    }
}

impl<P: Physics> AnalyticVjp for Ude<P> {
    type Workspace = UdeWorkspace;
    fn workspace(&self) -> UdeWorkspace {
        let n = self.in_scale.len();
        UdeWorkspace {
            ws: self.net.workspace(1),
            x: vec![0.0; n],
            y: vec![0.0; n],
            xbar: vec![0.0; n],
            ud: vec![Dual::default(); n],
            fd: vec![Dual::default(); n],
            w: vec![0.0; n],
        }
    }
    fn vjp(&self, ws: &mut UdeWorkspace, w: &[f64], u: &[f64], p: &[f64], t: f64, du: &mut [f64], dp: &mut [f64]) {
        self.vjp_with(ws, w, u, p, t, None, du, dp, None)
    }
}

impl<P: Physics> RecordedVjp for Ude<P> {
    fn record_len(&self) -> usize {
        self.net.record_len()
    }
    fn rhs_record(&self, du: &mut [f64], u: &[f64], p: &[f64], t: f64, record: &mut [f64]) {
        self.eval_with(du, u, t, |x, y| self.net.forward_record(p, x, y, record));
    }
    fn vjp_from_record(
        &self,
        ws: &mut UdeWorkspace,
        w: &[f64],
        u: &[f64],
        p: &[f64],
        t: f64,
        record: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
        pending: &mut Vec<f64>,
    ) {
        self.vjp_with(ws, w, u, p, t, self.checked_record(record), du, dp, Some(pending))
    }
    fn flush_pending(&self, _p: &[f64], pending: &mut Vec<f64>, dp: &mut [f64]) {
        self.net.flush_pending(pending, dp);
    }
}

/// The cube `x^3` as an input map (the spiral benchmark's network sees `u^3`).
pub const CUBE: Activation = Activation::Custom(crate::nn::CustomActivation { name: "cube", f: cube, df: dcube });

fn cube(x: f64) -> f64 {
    x * x * x
}

fn dcube(x: f64) -> f64 {
    3.0 * x * x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ad::{Vjp, VjpMethod};
    use crate::nn::Init;

    #[derive(Clone)]
    struct Damped;
    impl Physics for Damped {
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], t: T) {
            du[0] = -u[0] * u[1] + t.sin();
            du[1] = u[0].scale(0.5) - u[1] * u[1];
        }
    }

    /// The VJP from a record, with what it left pending added.
    #[allow(clippy::too_many_arguments)]
    fn from_record(
        model: &Ude<Damped>,
        ws: &mut UdeWorkspace,
        w: &[f64],
        u: &[f64],
        p: &[f64],
        t: f64,
        record: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
    ) {
        let mut pending = Vec::new();
        model.vjp_from_record(ws, w, u, p, t, record, du, dp, &mut pending);
        model.flush_pending(p, &mut pending, dp);
    }

    #[test]
    fn hand_written_vjp_matches_forward_mode() {
        let net = Mlp::with_hidden(&[2, 7, 7, 2], Activation::Tanh).unwrap();
        let p = net.init_params(Init::GlorotUniform, 3, 1.0);
        let model = Ude::new(Damped, net, CUBE).unwrap().with_scales(&[2.0, 0.5], &[3.0, 0.7]).unwrap();
        let (u, w) = ([0.7, -0.4], [0.3, -1.1]);
        let (mut du, mut dp) = (vec![0.0; 2], vec![0.0; p.len()]);
        let mut ws = model.workspace();
        model.vjp(&mut ws, &w, &u, &p, 0.3, &mut du, &mut dp);
        let mut reference = Vjp::new(&model, VjpMethod::Forward).unwrap();
        let (mut du_ref, mut dp_ref) = (vec![0.0; 2], vec![0.0; p.len()]);
        reference.apply(&model, &w, &u, &p, 0.3, &mut du_ref, &mut dp_ref);
        for (a, b) in du.iter().chain(&dp).zip(du_ref.iter().chain(&dp_ref)) {
            assert!((a - b).abs() < 1e-12 * b.abs().max(1.0), "{a} vs {b}");
        }
        // From a record of the forward pass: f bit for bit, the same VJP bit for bit.
        let mut record = vec![0.0; model.record_len()];
        let (mut f, mut f_rec) = (vec![0.0; 2], vec![0.0; 2]);
        model.rhs(&mut f, &u, &p, 0.3);
        model.rhs_record(&mut f_rec, &u, &p, 0.3, &mut record);
        assert_eq!(f, f_rec);
        let (mut du_rec, mut dp_rec) = (vec![0.0; 2], vec![0.0; p.len()]);
        from_record(&model, &mut ws, &w, &u, &p, 0.3, &record, &mut du_rec, &mut dp_rec);
        assert_eq!((du_rec, dp_rec), (du, dp));
    }

    #[test]
    fn records_of_every_state_width_match_the_plain_evaluation() {
        for n in [3, 9, 40, 65] {
            let net = Mlp::with_hidden(&[n, 6, n], Activation::Tanh).unwrap();
            let p = net.init_params(Init::GlorotUniform, 5, 1.0);
            let model = Ude::new(Damped, net, CUBE).unwrap();
            let u: Vec<f64> = (0..n).map(|i| 0.1 * i as f64 - 0.8).collect();
            let w: Vec<f64> = (0..n).map(|i| 0.3 - 0.05 * i as f64).collect();
            let mut record = vec![f64::NAN; model.record_len()];
            let (mut f, mut f_rec) = (vec![0.0; n], vec![0.0; n]);
            model.rhs(&mut f, &u, &p, 0.2);
            model.rhs_record(&mut f_rec, &u, &p, 0.2, &mut record);
            assert_eq!(f, f_rec, "{n} states");
            assert!(record.iter().all(|x| x.is_finite()), "{n} states: record not written");
            let (mut du, mut dp) = (vec![0.0; n], vec![0.0; p.len()]);
            let (mut du_rec, mut dp_rec) = (vec![0.0; n], vec![0.0; p.len()]);
            let mut ws = model.workspace();
            model.vjp(&mut ws, &w, &u, &p, 0.2, &mut du, &mut dp);
            from_record(&model, &mut ws, &w, &u, &p, 0.2, &record, &mut du_rec, &mut dp_rec);
            assert_eq!((du_rec, dp_rec), (du, dp), "{n} states");
        }
    }
}
