//! The model trait and the problem type.

use crate::capabilities::Derivatives;
use crate::error::{DiffsimError, Result};
use crate::event::Event;
use crate::mass::MassMatrix;
use crate::scalar::Scalar;

/// A differential equation `M u' = f(u, p, t)`, written once, generically over the number
/// type so that values, Jacobians and gradients all come from the same code.
///
/// Only [`Model::n_states`], [`Model::n_params`] and [`Model::rhs`] are required; the
/// problem's structure (a mass matrix, switch times) and derivatives the model computes
/// itself ([`Model::derivatives`]) are optional.
///
/// ```
/// use diffsim::{Model, Scalar};
/// /// Exponential relaxation towards 2: u' = -k (u - 2).
/// struct Relax;
/// impl Model for Relax {
///     fn n_states(&self) -> usize { 1 }
///     fn n_params(&self) -> usize { 1 }
///     fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], _t: T) {
///         du[0] = -p[0] * (u[0] - 2.0);
///     }
/// }
/// let mut du = [0.0];
/// Relax.rhs(&mut du, &[5.0], &[0.5], 0.0);
/// assert_eq!(du[0], -1.5);
/// ```
pub trait Model: Send + Sync {
    /// The number of states when every value of the type has the same one (`None`, the
    /// default, when it is known only from [`Model::n_states`]). Optional: a model that
    /// states it gets solvers compiled for exactly that size, and only for it (a model
    /// without it gets steppers for sizes 1-4 and any size, picked at run time). It must
    /// equal `n_states()`; a solve checks.
    const STATES: Option<usize> = None;
    /// Number of states (the length of `u`).
    fn n_states(&self) -> usize;
    /// Number of parameters (the length of `p`).
    fn n_params(&self) -> usize;
    /// Write `f(u, p, t)` into `du`. Slices have lengths `n_states` / `n_params`.
    /// Constants go on the right of a `T`: `u[0] * 2.0`, `u[0] - 1.0`, `du[0] /= 3.0`
    /// (see [`Scalar`]). Branch on values with the scalar's own comparisons
    /// (`t <= T::from_f64(1.0)`).
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T);
    /// The mass matrix `M`, `None` (the default) for the identity. Most DAEs say which
    /// states are algebraic: `MassMatrix::algebraic_states(n, &[k])` is the identity with a
    /// zero at state `k`, whose equation then reads `0 = f_k(u, p, t)`;
    /// [`MassMatrix::diagonal`] takes any diagonal and [`MassMatrix::dense`] a general
    /// `n x n` matrix (row-major). It must have `n_states()` states (checked when a
    /// [`Problem`] is built). A singular `M` makes the problem an index-1 DAE, which the
    /// stiff methods (Rosenbrock, BDF, Radau5) handle. In the semi-explicit form (zero rows
    /// for the algebraic equations, zero columns for the algebraic states) a solve first
    /// solves the algebraic states from the equations at `t0`, keeping the differential
    /// ones: a start off the constraints is made consistent (or is an
    /// [`InconsistentStart`](crate::error::DiffsimError::InconsistentStart) error). See
    /// [`MassMatrix`] for a worked example.
    fn mass_matrix(&self) -> Option<MassMatrix> {
        None
    }
    /// Times at which `f` is discontinuous (for example a parameter that switches at
    /// t = 1); the solvers land steps exactly on them.
    fn tstops(&self, _p: &[f64]) -> Vec<f64> {
        Vec::new()
    }
    /// The derivatives the model computes itself (an analytic Jacobian, `df/dt`, a
    /// hand-written VJP; see [`crate::capabilities`]). The default has none, and the library
    /// gets each by AD of [`Model::rhs`]. Every path that can use one does.
    fn derivatives(&self) -> Derivatives<'_> {
        Derivatives::none()
    }
    /// The model's events (none by default): one [`Event`] per condition of
    /// [`Model::event_conditions`], saying which zero crossings fire it and what it does.
    /// See [`crate::event`] for how they are found and the conventions at zero.
    ///
    /// ```
    /// use diffsim::{solve, Algorithm, Crossing, Event, Model, Problem, Scalar, SolveOptions};
    /// /// A ball falling from 1 m, bouncing with restitution 0.5.
    /// struct Ball;
    /// impl Model for Ball {
    ///     fn n_states(&self) -> usize { 2 }
    ///     fn n_params(&self) -> usize { 0 }
    ///     fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
    ///         du[0] = u[1];
    ///         du[1] = T::from_f64(-9.81);
    ///     }
    ///     fn events(&self) -> Vec<Event> { vec![Event::new(Crossing::Down)] }
    ///     fn event_conditions<T: Scalar>(&self, g: &mut [T], u: &[T], _p: &[T], _t: T) {
    ///         g[0] = u[0]; // the height
    ///     }
    ///     fn event_affect<T: Scalar>(&self, _index: usize, u: &mut [T], _p: &[T], _t: T) {
    ///         u[1] = -(u[1] * 0.5);
    ///     }
    /// }
    /// let prob = Problem::new(Ball, vec![1.0, 0.0], vec![], (0.0, 1.0)).unwrap();
    /// let sol = solve(&prob, Algorithm::Tsit5, &SolveOptions::default().rtol(1e-10).atol(1e-10)).unwrap();
    /// let first = sol.events()[0];
    /// assert!((first.t - (2.0_f64 / 9.81).sqrt()).abs() < 1e-9);
    /// ```
    fn events(&self) -> Vec<Event> {
        Vec::new()
    }
    /// Write the event conditions `g_i(u, p, t)` into `g` (one per [`Model::events`]
    /// entry). Written generically, like [`Model::rhs`], so that gradients can see how an
    /// event's time depends on the state and the parameters.
    fn event_conditions<T: Scalar>(&self, _g: &mut [T], _u: &[T], _p: &[T], _t: T) {}
    /// Apply event `index`'s jump to the state `u` at time `t` (events whose action is
    /// [`crate::event::EventAction::Affect`]). The default leaves the state alone. A model
    /// whose behaviour switches (a heater on or off) keeps the switch as a state with zero
    /// derivative and flips it here.
    fn event_affect<T: Scalar>(&self, _index: usize, _u: &mut [T], _p: &[T], _t: T) {}
}

/// A borrowed model is a model: a `Problem` can hold `&M`.
impl<M: Model> Model for &M {
    const STATES: Option<usize> = M::STATES;
    fn n_states(&self) -> usize {
        (**self).n_states()
    }
    fn n_params(&self) -> usize {
        (**self).n_params()
    }
    #[inline]
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
        (**self).rhs(du, u, p, t)
    }
    fn mass_matrix(&self) -> Option<MassMatrix> {
        (**self).mass_matrix()
    }
    fn tstops(&self, p: &[f64]) -> Vec<f64> {
        (**self).tstops(p)
    }
    #[inline]
    fn derivatives(&self) -> Derivatives<'_> {
        (**self).derivatives()
    }
    fn events(&self) -> Vec<Event> {
        (**self).events()
    }
    fn event_conditions<T: Scalar>(&self, g: &mut [T], u: &[T], p: &[T], t: T) {
        (**self).event_conditions(g, u, p, t)
    }
    fn event_affect<T: Scalar>(&self, index: usize, u: &mut [T], p: &[T], t: T) {
        (**self).event_affect(index, u, p, t)
    }
}

/// A model with its initial state, parameters and time span, checked when built and
/// whenever they change (the fields are read through accessors and set through checked
/// setters, so a problem never holds inputs its model cannot take).
///
/// ```
/// use diffsim::{models::Lorenz, Problem};
/// let mut prob = Problem::new(Lorenz, vec![1.0, 0.0, 0.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, 1.0)).unwrap();
/// assert_eq!(prob.u0().len(), 3);
/// // Sizes are checked: Lorenz has three states and three parameters.
/// assert!(Problem::new(Lorenz, vec![1.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, 1.0)).is_err());
/// assert!(prob.set_p(&[10.0, 28.0]).is_err());
/// prob.set_p(&[10.0, 20.0, 8.0 / 3.0]).unwrap();
/// assert_eq!(prob.p()[1], 20.0);
/// ```
#[derive(Clone, Debug)]
pub struct Problem<M> {
    pub(crate) model: M,
    pub(crate) u0: Vec<f64>,
    pub(crate) p: Vec<f64>,
    pub(crate) tspan: (f64, f64),
}

impl<M> Problem<M> {
    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }
    /// Initial state at `tspan().0`.
    pub fn u0(&self) -> &[f64] {
        &self.u0
    }
    /// Parameters.
    pub fn p(&self) -> &[f64] {
        &self.p
    }
    /// Start and end time; the end may lie before the start (integration backwards).
    pub fn tspan(&self) -> (f64, f64) {
        self.tspan
    }
}

impl<M: Model> Problem<M> {
    /// Build a problem, checking sizes, finiteness and the time span.
    pub fn new(model: M, u0: Vec<f64>, p: Vec<f64>, tspan: (f64, f64)) -> Result<Self> {
        check_inputs(&model, &u0, &p, tspan)?;
        check_stated_sparsity(&model)?;
        check_mass_matrix(&model)?;
        Ok(Self { model, u0, p, tspan })
    }

    /// Replace the parameters in place (checked as in [`Problem::new`]; no allocation, for
    /// loops over many parameter values).
    pub fn set_p(&mut self, p: &[f64]) -> Result<()> {
        check_inputs(&self.model, &self.u0, p, self.tspan)?;
        self.p.copy_from_slice(p);
        Ok(())
    }

    /// Replace the initial state in place (checked as in [`Problem::new`]).
    pub fn set_u0(&mut self, u0: &[f64]) -> Result<()> {
        check_inputs(&self.model, u0, &self.p, self.tspan)?;
        self.u0.copy_from_slice(u0);
        Ok(())
    }

    /// Check the problem as [`Problem::new`] does: sizes against the model, finite values,
    /// a non-empty finite span. The gradients call it first: the library's own code may
    /// change the fields after `new` (a fit writes the optimizer's parameters).
    pub(crate) fn validate(&self) -> Result<()> {
        check_inputs(&self.model, &self.u0, &self.p, self.tspan)
    }

    /// The same problem with other initial values and/or parameters (checked).
    pub fn remake(&self, u0: Option<Vec<f64>>, p: Option<Vec<f64>>) -> Result<Self>
    where
        M: Clone,
    {
        Self::new(
            self.model.clone(),
            u0.unwrap_or_else(|| self.u0.clone()),
            p.unwrap_or_else(|| self.p.clone()),
            self.tspan,
        )
    }
}

/// A stated Jacobian sparsity lies inside the Jacobian (checked once, when a problem is
/// built, not at every solve: the list can be long).
fn check_stated_sparsity<M: Model>(model: &M) -> Result<()> {
    let n = model.n_states();
    if let Some(sparsity) = model.derivatives().jacobian_sparsity() {
        if let Some((i, j)) = sparsity.jacobian_sparsity().into_iter().find(|&(i, j)| i >= n || j >= n) {
            return Err(DiffsimError::InvalidModel {
                why: format!(
                    "jacobian_sparsity() lists entry ({i}, {j}) outside the {n} x {n} Jacobian; give (row, column) \
                     pairs below n_states()"
                ),
            });
        }
    }
    Ok(())
}

/// The mass matrix has the model's size (checked once, when a problem is built).
fn check_mass_matrix<M: Model>(model: &M) -> Result<()> {
    let n = model.n_states();
    match model.mass_matrix() {
        Some(mass) if mass.n() != n => Err(DiffsimError::InvalidModel {
            why: format!(
                "mass_matrix() is {k} x {k} but the model has {n} states; build it for n_states() = {n} states",
                k = mass.n()
            ),
        }),
        _ => Ok(()),
    }
}

/// Validate sizes, finiteness and the span of a problem's inputs.
pub(crate) fn check_inputs<M: Model, T: Scalar>(model: &M, u0: &[T], p: &[T], tspan: (f64, f64)) -> Result<()> {
    let n = model.n_states();
    if let Some(fixed) = M::STATES.filter(|&s| s != n) {
        return Err(DiffsimError::InvalidModel {
            why: format!(
                "Model::STATES is Some({fixed}) but n_states() is {n}; make them agree, or leave STATES as None"
            ),
        });
    }
    if u0.len() != n {
        return Err(DiffsimError::SizeMismatch { what: "u0", expected: n, got: u0.len() });
    }
    if p.len() != model.n_params() {
        return Err(DiffsimError::SizeMismatch { what: "p", expected: model.n_params(), got: p.len() });
    }
    if let Some(i) = u0.iter().position(|x| !x.is_finite()) {
        return Err(DiffsimError::NonFinite { what: "u0", index: i });
    }
    if let Some(i) = p.iter().position(|x| !x.is_finite()) {
        return Err(DiffsimError::NonFinite { what: "p", index: i });
    }
    let (t0, t1) = tspan;
    if !t0.is_finite() || !t1.is_finite() {
        return Err(DiffsimError::InvalidSpan { t0, t1, why: "both ends must be finite" });
    }
    if t0 == t1 {
        return Err(DiffsimError::InvalidSpan { t0, t1, why: "the span is empty (t0 == t1)" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensitivity::test_models::{TestCost, TestModel};
    use crate::sensitivity::{gradient, Loss, SavedLoss, SensAlg, VjpMethod};
    use crate::solve::{solve, Algorithm, SolveOptions};

    /// A model type whose stated size disagrees with its `n_states()`.
    struct Liar;
    impl Model for Liar {
        const STATES: Option<usize> = Some(2);
        fn n_states(&self) -> usize {
            1
        }
        fn n_params(&self) -> usize {
            0
        }
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _p: &[T], _t: T) {
            du[0] = -u[0];
        }
    }

    #[test]
    fn a_stated_size_must_be_the_models_size() {
        let e = Problem::new(Liar, vec![1.0], vec![], (0.0, 1.0)).err().expect("the sizes disagree");
        assert!(matches!(&e, DiffsimError::InvalidModel { why } if why.contains("STATES is Some(2)")), "{e}");
        // Borrowed, too.
        assert!(Problem::new(&Liar, vec![1.0], vec![], (0.0, 1.0)).is_err());
    }

    /// The library's own code may write the fields (a fit sets the optimizer's parameters):
    /// every gradient and solve checks the problem first, in the user's terms.
    #[test]
    fn a_problem_changed_after_new_is_an_error_for_every_method() {
        let opts = SolveOptions::default().saveat_times(vec![0.5, 1.0]);
        type Edit = fn(&mut Problem<TestModel>);
        let edits: [(&str, Edit); 4] = [
            ("p", |prob| prob.p.push(1.0)),
            ("p", |prob| {
                prob.p.pop();
            }),
            ("u0", |prob| prob.u0.push(1.0)),
            ("u0", |prob| prob.u0[1] = f64::NAN),
        ];
        for (what, edit) in edits {
            let mut prob = Problem::new(TestModel::Lv, vec![1.0, 1.0], vec![1.5, 1.0, 3.0, 1.0], (0.0, 1.0)).unwrap();
            edit(&mut prob);
            let expected = if what == "p" { 4 } else { 2 };
            let in_user_terms = |e: DiffsimError| match e {
                DiffsimError::SizeMismatch { what: w, expected: x, .. } => w == what && x == expected,
                DiffsimError::NonFinite { what: w, index } => w == what && index == 1,
                _ => false,
            };
            for name in SensAlg::NAMES {
                for alg in [Algorithm::Tsit5, Algorithm::Rodas5P] {
                    let sensealg = SensAlg::from_name(name, VjpMethod::Auto).unwrap();
                    let e = gradient(&prob, alg, &opts, &Loss::Sum, sensealg).unwrap_err();
                    assert!(in_user_terms(e.clone()), "{what} {name} {alg}: {e}");
                }
            }
            let e = gradient(&prob, Algorithm::Tsit5, &opts, &Loss::Sum.plus_running_cost(TestCost), SensAlg::Forward);
            assert!(in_user_terms(e.unwrap_err()), "{what}: running cost");
            assert!(in_user_terms(solve(&prob, Algorithm::Tsit5, &opts).unwrap_err()), "{what}: solve");
        }
    }
}
