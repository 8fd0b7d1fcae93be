//! What a model may compute itself besides `rhs`: each optional derivative is one small
//! trait, and a model hands the ones it implements to the library through one hook,
//! [`Model::derivatives`](crate::Model::derivatives).
//!
//! | capability | trait | used by |
//! |---|---|---|
//! | `df/du` | [`AnalyticJacobian`] | the stiff solvers' Newton matrices, instead of forward-mode AD |
//! | `df/dt` | [`AnalyticTimeDerivative`] | the Rosenbrock methods, instead of forward-mode AD in `t` |
//! | `(df/du)^T w`, `(df/dp)^T w` | [`AnalyticVjp`] | every adjoint, when the VJP method is `auto` or `model` |
//! | the VJP from a record of the forward evaluation | [`RecordedVjp`] | the discrete adjoint (a network's forward pass kept for its backward pass) |
//! | which entries of `df/du` can be nonzero | [`JacobianSparsity`] | the stiff solvers' sparse Jacobians and LU, for a model whose pattern cannot be read off a recording |
//!
//! The traits are separate so that a model implements only what it has, and the hook is one
//! method so that a wrapper forwards one thing. A VJP's scratch space is the caller's: the
//! model says what it is ([`AnalyticVjp::Workspace`]) and each adjoint makes its own, so a
//! model needs no lock to be shared between threads.
//!
//! ```
//! use diffsim::capabilities::{AnalyticJacobian, Derivatives};
//! use diffsim::{Model, Scalar};
//! /// Exponential decay u' = -k u, with its Jacobian.
//! struct Decay;
//! impl Model for Decay {
//!     fn n_states(&self) -> usize { 1 }
//!     fn n_params(&self) -> usize { 1 }
//!     fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
//!         du[0] = -p[0] * u[0];
//!     }
//!     fn derivatives(&self) -> Derivatives<'_> {
//!         Derivatives::none().jacobian(self)
//!     }
//! }
//! impl AnalyticJacobian for Decay {
//!     fn jacobian(&self, jac: &mut [f64], _u: &[f64], p: &[f64], _t: f64) {
//!         jac[0] = -p[0];
//!     }
//! }
//! assert!(Decay.derivatives().has_jacobian());
//! assert!(!Decay.derivatives().has_vjp());
//! ```

use std::any::Any;

/// An analytic Jacobian of the right-hand side in the states.
pub trait AnalyticJacobian: Sync {
    /// Write `J[i * n + j] = d f_i / d u_j` (row-major, `n * n`) at `(u, p, t)`.
    fn jacobian(&self, jac: &mut [f64], u: &[f64], p: &[f64], t: f64);
}

/// `df/dt`, for a model whose time dependence forward-mode AD cannot see (values computed
/// outside the number type, such as an interpolated input). The Rosenbrock methods need it:
/// with a wrong `df/dt` they lose their order and take tiny steps on stiff problems.
pub trait AnalyticTimeDerivative: Sync {
    /// Write `df/dt` at `(u, p, t)` into `dfdt`.
    fn time_derivative(&self, dfdt: &mut [f64], u: &[f64], p: &[f64], t: f64);
}

/// Which entries of `df/du` can be nonzero, anywhere the model goes (every branch).
///
/// The stiff solvers read a model's sparsity off a recording of its `rhs` when they can;
/// a model that branches on its state, or computes with values the recording cannot follow
/// (`Scalar::value`, data read at `t`), gets dense Jacobians unless it states its pattern
/// here. What the recording does see is added to the stated pattern, so an entry left out
/// by mistake is still computed where the recording sees it.
pub trait JacobianSparsity: Sync {
    /// The positions `(i, j)` of `df_i/du_j` that can be nonzero (duplicates allowed), each
    /// inside `n_states x n_states`.
    fn jacobian_sparsity(&self) -> Vec<(usize, usize)>;
}

/// A hand-written vector-Jacobian product (a neural network's own backward pass): adjoint
/// methods call it once or more per stage.
pub trait AnalyticVjp: Sync {
    /// Scratch space of one caller, reused across its calls.
    type Workspace: Send + Sync + 'static;
    /// A fresh workspace.
    fn workspace(&self) -> Self::Workspace;
    /// Accumulate `du += (df/du)^T w` and `dp += (df/dp)^T w` at `(u, p, t)`. The slices
    /// have the model's sizes (the library checks them before calling).
    #[allow(clippy::too_many_arguments)]
    fn vjp(&self, ws: &mut Self::Workspace, w: &[f64], u: &[f64], p: &[f64], t: f64, du: &mut [f64], dp: &mut [f64]);
}

/// A VJP that starts from a record the model kept while the forward solve evaluated `f`.
///
/// The discrete adjoint calls the VJP at exactly the points the forward solve evaluated `f`
/// at. A model whose VJP repeats work of `f` (a neural network's forward pass, before its
/// backward pass) keeps that work in a record during the forward solve.
pub trait RecordedVjp: AnalyticVjp {
    /// Length of one evaluation's record.
    fn record_len(&self) -> usize;
    /// `f(u, p, t)` as [`crate::Model::rhs`] gives it in `f64` (bit for bit), also writing
    /// the whole `record` (of [`RecordedVjp::record_len`]).
    fn rhs_record(&self, du: &mut [f64], u: &[f64], p: &[f64], t: f64, record: &mut [f64]);
    /// [`AnalyticVjp::vjp`] at a point [`RecordedVjp::rhs_record`] left `record` at, with
    /// the same `p`. Part of the `dp` contribution may wait in `pending`, a buffer the caller
    /// owns and hands to [`RecordedVjp::flush_pending`] before it reads `dp` (the discrete
    /// adjoint does so after each step's stages, so a model can add a step's parameter
    /// gradients in one pass).
    #[allow(clippy::too_many_arguments)]
    fn vjp_from_record(
        &self,
        ws: &mut Self::Workspace,
        w: &[f64],
        u: &[f64],
        p: &[f64],
        t: f64,
        record: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
        pending: &mut Vec<f64>,
    );
    /// Add what [`RecordedVjp::vjp_from_record`] left in `pending` to `dp`, in the order it
    /// was left, and clear `pending`. The default has nothing to add.
    fn flush_pending(&self, _p: &[f64], pending: &mut Vec<f64>, _dp: &mut [f64]) {
        pending.clear();
    }
}

/// A VJP workspace whose type the caller does not know (made by [`Derivatives::vjp`]'s
/// model, handed back to it).
pub type Workspace = Box<dyn Any + Send + Sync>;

/// [`AnalyticVjp`] behind a type-erased workspace, so that [`Derivatives`] can hold it.
/// Implemented for every [`AnalyticVjp`]; not implemented by hand.
pub trait ErasedVjp: Sync {
    /// [`AnalyticVjp::workspace`], boxed.
    fn workspace(&self) -> Workspace;
    /// [`AnalyticVjp::vjp`]; a workspace of another type is replaced by a fresh one.
    #[allow(clippy::too_many_arguments)]
    fn vjp(&self, ws: &mut Workspace, w: &[f64], u: &[f64], p: &[f64], t: f64, du: &mut [f64], dp: &mut [f64]);
}

/// [`RecordedVjp`] behind a type-erased workspace (the plain VJP's, [`ErasedVjp`]).
/// Implemented for every [`RecordedVjp`].
pub trait ErasedRecordedVjp: ErasedVjp {
    /// [`RecordedVjp::record_len`].
    fn record_len(&self) -> usize;
    /// [`RecordedVjp::rhs_record`].
    fn rhs_record(&self, du: &mut [f64], u: &[f64], p: &[f64], t: f64, record: &mut [f64]);
    /// [`RecordedVjp::vjp_from_record`]; a workspace of another type is replaced by a fresh one.
    #[allow(clippy::too_many_arguments)]
    fn vjp_from_record(
        &self,
        ws: &mut Workspace,
        w: &[f64],
        u: &[f64],
        p: &[f64],
        t: f64,
        record: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
        pending: &mut Vec<f64>,
    );
    /// [`RecordedVjp::flush_pending`].
    fn flush_pending(&self, p: &[f64], pending: &mut Vec<f64>, dp: &mut [f64]);
}

/// The typed workspace inside `ws`, made afresh when `ws` holds another type (a workspace
/// handed to the wrong model is a caller's slip that costs an allocation, not a panic).
fn typed<'w, V: AnalyticVjp + ?Sized>(model: &V, ws: &'w mut Workspace) -> &'w mut V::Workspace {
    if !ws.is::<V::Workspace>() {
        *ws = Box::new(model.workspace());
    }
    ws.downcast_mut().expect("the workspace was just made with this type")
}

impl<V: AnalyticVjp> ErasedVjp for V {
    fn workspace(&self) -> Workspace {
        Box::new(AnalyticVjp::workspace(self))
    }
    #[inline]
    fn vjp(&self, ws: &mut Workspace, w: &[f64], u: &[f64], p: &[f64], t: f64, du: &mut [f64], dp: &mut [f64]) {
        AnalyticVjp::vjp(self, typed(self, ws), w, u, p, t, du, dp)
    }
}

impl<V: RecordedVjp> ErasedRecordedVjp for V {
    fn record_len(&self) -> usize {
        RecordedVjp::record_len(self)
    }
    #[inline]
    fn rhs_record(&self, du: &mut [f64], u: &[f64], p: &[f64], t: f64, record: &mut [f64]) {
        RecordedVjp::rhs_record(self, du, u, p, t, record)
    }
    #[inline]
    fn vjp_from_record(
        &self,
        ws: &mut Workspace,
        w: &[f64],
        u: &[f64],
        p: &[f64],
        t: f64,
        record: &[f64],
        du: &mut [f64],
        dp: &mut [f64],
        pending: &mut Vec<f64>,
    ) {
        RecordedVjp::vjp_from_record(self, typed(self, ws), w, u, p, t, record, du, dp, pending)
    }
    fn flush_pending(&self, p: &[f64], pending: &mut Vec<f64>, dp: &mut [f64]) {
        RecordedVjp::flush_pending(self, p, pending, dp)
    }
}

/// The derivatives a model computes itself, as [`crate::Model::derivatives`] returns them.
/// Build it with [`Derivatives::none`] and one method per capability; read it with the
/// accessors.
#[derive(Clone, Copy, Default)]
pub struct Derivatives<'a> {
    jacobian: Option<&'a dyn AnalyticJacobian>,
    time_derivative: Option<&'a dyn AnalyticTimeDerivative>,
    vjp: Option<&'a dyn ErasedVjp>,
    recorded_vjp: Option<&'a dyn ErasedRecordedVjp>,
    sparsity: Option<&'a dyn JacobianSparsity>,
}

impl std::fmt::Debug for Derivatives<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Derivatives")
            .field("jacobian", &self.has_jacobian())
            .field("time_derivative", &self.has_time_derivative())
            .field("vjp", &self.has_vjp())
            .field("recorded_vjp", &self.recorded_vjp.is_some())
            .field("sparsity", &self.sparsity.is_some())
            .finish()
    }
}

impl<'a> Derivatives<'a> {
    /// Nothing beyond `rhs` (the library differentiates it by AD).
    pub const fn none() -> Self {
        Self { jacobian: None, time_derivative: None, vjp: None, recorded_vjp: None, sparsity: None }
    }
    /// With an analytic Jacobian.
    pub fn jacobian(mut self, j: &'a impl AnalyticJacobian) -> Self {
        self.jacobian = Some(j);
        self
    }
    /// With an analytic `df/dt`.
    pub fn time_derivative(mut self, d: &'a impl AnalyticTimeDerivative) -> Self {
        self.time_derivative = Some(d);
        self
    }
    /// With a hand-written VJP.
    pub fn vjp(mut self, v: &'a impl AnalyticVjp) -> Self {
        self.vjp = Some(v);
        self
    }
    /// With a hand-written VJP that can also start from records of the forward evaluation
    /// (it serves as the plain VJP too).
    pub fn recorded_vjp(mut self, v: &'a impl RecordedVjp) -> Self {
        self.vjp = Some(v);
        self.recorded_vjp = Some(v);
        self
    }

    /// With a stated Jacobian sparsity pattern.
    pub fn sparsity(mut self, s: &'a impl JacobianSparsity) -> Self {
        self.sparsity = Some(s);
        self
    }

    /// The analytic Jacobian, if any.
    pub fn analytic_jacobian(&self) -> Option<&'a dyn AnalyticJacobian> {
        self.jacobian
    }
    /// The analytic `df/dt`, if any.
    pub fn analytic_time_derivative(&self) -> Option<&'a dyn AnalyticTimeDerivative> {
        self.time_derivative
    }
    /// The hand-written VJP, if any.
    pub fn analytic_vjp(&self) -> Option<&'a dyn ErasedVjp> {
        self.vjp
    }
    /// The VJP from records, if any.
    pub fn record_vjp(&self) -> Option<&'a dyn ErasedRecordedVjp> {
        self.recorded_vjp
    }
    /// The stated Jacobian sparsity, if any.
    pub fn jacobian_sparsity(&self) -> Option<&'a dyn JacobianSparsity> {
        self.sparsity
    }
    /// Whether the model has an analytic Jacobian.
    pub fn has_jacobian(&self) -> bool {
        self.jacobian.is_some()
    }
    /// Whether the model has an analytic `df/dt`.
    pub fn has_time_derivative(&self) -> bool {
        self.time_derivative.is_some()
    }
    /// Whether the model has a hand-written VJP.
    pub fn has_vjp(&self) -> bool {
        self.vjp.is_some()
    }
    /// Length of the model's record per evaluation (0 without a [`RecordedVjp`]).
    pub fn record_len(&self) -> usize {
        self.recorded_vjp.map_or(0, |r| r.record_len())
    }
}
