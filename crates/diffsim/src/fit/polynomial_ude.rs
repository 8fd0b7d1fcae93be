//! Known physics plus a sparse polynomial: the model equations recovered from a network
//! become, with their coefficients as parameters to refit against the data.

use super::sparse::{format_sum, PolynomialLibrary, SparseFit};
use super::ude::Physics;
use crate::error::{DiffsimError, Result};
use crate::problem::Model;
use crate::scalar::Scalar;

/// `u_i' = physics_i(u, t) + sum_k p_k m_k(u)` over chosen `(state i, monomial m_k)` pairs:
/// one parameter per kept term.
///
/// ```
/// use diffsim::fit::{NoPhysics, PolynomialLibrary, PolynomialUde};
/// use diffsim::Model;
/// let lib = PolynomialLibrary::new(2, 1, 2).unwrap(); // x, y, x^2, x y, y^2
/// // x' = p0 x y, y' = p1 y
/// let model = PolynomialUde::new(NoPhysics, lib, vec![(0, 3), (1, 1)]).unwrap();
/// let mut du = [0.0; 2];
/// model.rhs(&mut du, &[2.0, 3.0], &[0.5, -1.0], 0.0);
/// assert_eq!(du, [3.0, -3.0]);
/// ```
#[derive(Clone, Debug)]
pub struct PolynomialUde<P> {
    physics: P,
    library: PolynomialLibrary,
    terms: Vec<(usize, usize)>,
}

impl<P: Physics> PolynomialUde<P> {
    /// Known `physics` plus, for each `(i, j)` in `terms`, a parameter times monomial `j` of
    /// `library` added to state `i`'s derivative.
    pub fn new(physics: P, library: PolynomialLibrary, terms: Vec<(usize, usize)>) -> Result<Self> {
        let n = library.n_vars();
        if let Some(&(i, j)) = terms.iter().find(|&&(i, j)| i >= n || j >= library.len()) {
            return Err(DiffsimError::InvalidOption {
                name: "polynomial terms",
                why: format!("term (state {i}, monomial {j}) is out of range: {n} states, {} monomials", library.len()),
            });
        }
        Ok(Self { physics, library, terms })
    }

    /// The model with the terms `fit` kept (its targets are the states), and their
    /// coefficients as the starting parameters.
    pub fn from_sparse_fit(physics: P, library: PolynomialLibrary, fit: &SparseFit) -> Result<(Self, Vec<f64>)> {
        if fit.n_terms != library.len() || fit.n_targets != library.n_vars() {
            return Err(DiffsimError::SizeMismatch {
                what: "sparse fit (terms x targets)",
                expected: library.len() * library.n_vars(),
                got: fit.n_terms * fit.n_targets,
            });
        }
        let mut terms = Vec::new();
        let mut p = Vec::new();
        for i in 0..fit.n_targets {
            for j in fit.active(i) {
                terms.push((i, j));
                p.push(fit.coefficient(i, j));
            }
        }
        Ok((Self::new(physics, library, terms)?, p))
    }

    /// The `(state, monomial)` pair of each parameter.
    pub fn terms(&self) -> &[(usize, usize)] {
        &self.terms
    }

    /// The monomial library.
    pub fn library(&self) -> &PolynomialLibrary {
        &self.library
    }

    /// State `i`'s polynomial part with coefficients `p` as text, e.g. `"-0.902 x y"`.
    pub fn terms_string(&self, i: usize, p: &[f64], vars: &[&str], digits: usize) -> String {
        let terms = self.terms.iter().zip(p).filter(|((s, _), _)| *s == i);
        format_sum(terms.map(|(&(_, j), &c)| (c, self.library.name(j, vars))), digits)
    }

    /// Add the polynomial part with coefficients `p` at state `u` to `du`.
    #[inline]
    pub fn add_terms<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T]) {
        for (&(i, j), &c) in self.terms.iter().zip(p) {
            du[i] += c * self.library.eval(j, u);
        }
    }
}

impl<P: Physics> Model for PolynomialUde<P> {
    fn n_states(&self) -> usize {
        self.library.n_vars()
    }
    fn n_params(&self) -> usize {
        self.terms.len()
    }
    fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], p: &[T], t: T) {
        self.physics.rhs(du, u, t);
        self.add_terms(du, u, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::Stlsq;
    use crate::models::LotkaVolterra;

    /// Lotka-Volterra's linear terms, the known physics.
    #[derive(Clone, Copy)]
    struct LvLinear {
        alpha: f64,
        delta: f64,
    }
    impl Physics for LvLinear {
        fn rhs<T: Scalar>(&self, du: &mut [T], u: &[T], _t: T) {
            du[0] = u[0].scale(self.alpha);
            du[1] = -u[1].scale(self.delta);
        }
    }

    #[test]
    fn from_a_sparse_fit_it_is_the_fitted_system() {
        // Regress Lotka-Volterra's interaction terms, rebuild the model, compare rhs.
        let lib = PolynomialLibrary::new(2, 0, 2).unwrap();
        let states: Vec<f64> = (0..40).flat_map(|k| [0.5 + 0.1 * k as f64, 2.0 + (0.7 * k as f64).sin()]).collect();
        let targets: Vec<f64> = states.chunks(2).flat_map(|u| [-0.9 * u[0] * u[1], 0.8 * u[0] * u[1]]).collect();
        let fit = Stlsq::default().fit(&lib.features(&states).unwrap(), lib.len(), &targets, 2).unwrap();
        let physics = LvLinear { alpha: 1.3, delta: 1.8 };
        let (model, p) = PolynomialUde::from_sparse_fit(physics, lib.clone(), &fit).unwrap();
        assert_eq!(model.terms(), [(0, 4), (1, 4)]);
        assert_eq!(model.terms_string(1, &p, &["x", "y"], 2), "0.80 x y");
        let (mut got, mut want) = ([0.0; 2], [0.0; 2]);
        for u in states.chunks(2) {
            model.rhs(&mut got, u, &p, 0.0);
            LotkaVolterra.rhs(&mut want, u, &[1.3, 0.9, 1.8, 0.8], 0.0);
            for k in 0..2 {
                assert!((got[k] - want[k]).abs() < 1e-9 * want[k].abs().max(1.0));
            }
        }
        // Out-of-range terms and a fit of another shape are typed errors.
        assert!(PolynomialUde::new(physics, lib.clone(), vec![(2, 0)]).is_err());
        assert!(PolynomialUde::new(physics, lib.clone(), vec![(0, 6)]).is_err());
        let other = PolynomialLibrary::new(2, 1, 2).unwrap();
        assert!(PolynomialUde::from_sparse_fit(physics, other, &fit).is_err());
    }
}
