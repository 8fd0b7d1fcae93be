//! Equations from a trained network: sparse regression of its terms on candidate monomials
//! (SINDy's sequentially thresholded least squares).
//!
//! A universal differential equation's network matches the missing physics where the data
//! are, and nowhere else: beyond the training window it extrapolates as a network does, and
//! the prediction drifts off. When the missing terms are simple functions of the states,
//! regressing the network's output on a library of candidates and keeping the few that
//! matter recovers them as equations, which then extrapolate like the true system.
//!
//! [`Stlsq`] thresholds by *contribution*, not raw coefficient: each library column is
//! scaled to unit RMS over the samples, so a coefficient is the RMS size of its term's
//! contribution, and a term is dropped when that is below `threshold` times the target's
//! RMS. The choice is unit-free: a cubic term whose raw coefficient is 1e-3 on states of
//! size 10 is judged by what it adds, not by its coefficient's size. The least-squares
//! solves use faer's column-pivoted QR with a tiny ridge, so collinear candidates (`x`,
//! `x^2`, `x^3` on positive data) do not blow the coefficients up.
//!
//! ```
//! use diffsim::fit::{PolynomialLibrary, Stlsq};
//! // y = 2 x0 x1 - 0.5 x1^2, sampled at a few points.
//! let lib = PolynomialLibrary::new(2, 1, 2).unwrap();
//! let states: Vec<f64> = (0..20).flat_map(|i| [0.1 * i as f64, (0.3 * i as f64).sin()]).collect();
//! let features = lib.features(&states).unwrap();
//! let y: Vec<f64> = states.chunks(2).map(|u| 2.0 * u[0] * u[1] - 0.5 * u[1] * u[1]).collect();
//! let fit = Stlsq::default().fit(&features, lib.len(), &y, 1).unwrap();
//! assert_eq!(fit.terms_string(0, &lib, &["x", "y"], 3), "2.000 x y - 0.500 y^2");
//! ```

use crate::error::{DiffsimError, Result};
use crate::scalar::Scalar;
use faer::linalg::solvers::SolveLstsq;
use faer::Mat;

/// All monomials of `n_vars` states with total degree in a range, as regression candidates.
///
/// Terms are ordered by degree, then with earlier states' powers first: for two states and
/// degrees 0..=2, `1, x, y, x^2, x y, y^2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolynomialLibrary {
    n_vars: usize,
    /// Per term, the power of each state.
    exponents: Vec<Vec<u32>>,
}

impl PolynomialLibrary {
    /// The monomials of `n_vars` states of total degree `min_degree..=max_degree`
    /// (degree 0 is the constant term).
    pub fn new(n_vars: usize, min_degree: u32, max_degree: u32) -> Result<Self> {
        if n_vars == 0 || min_degree > max_degree || max_degree > 8 {
            return Err(DiffsimError::InvalidOption {
                name: "polynomial library",
                why: format!(
                    "needs at least one state and 0 <= min_degree <= max_degree <= 8; got {n_vars} states, \
                     degrees {min_degree}..={max_degree}"
                ),
            });
        }
        let mut exponents = Vec::new();
        for degree in min_degree..=max_degree {
            let mut current = vec![0; n_vars];
            push_monomials(&mut exponents, &mut current, 0, degree);
        }
        Ok(Self { n_vars, exponents })
    }

    /// Number of states the monomials are in.
    pub fn n_vars(&self) -> usize {
        self.n_vars
    }

    /// Number of terms.
    pub fn len(&self) -> usize {
        self.exponents.len()
    }

    /// Whether the library has no terms (never, for a library made by [`Self::new`]).
    pub fn is_empty(&self) -> bool {
        self.exponents.is_empty()
    }

    /// The power of each state in term `j`.
    pub fn exponents(&self, j: usize) -> &[u32] {
        &self.exponents[j]
    }

    /// Term `j` at state `u` (any number type, so models built on it differentiate).
    #[inline]
    pub fn eval<T: Scalar>(&self, j: usize, u: &[T]) -> T {
        let mut v = T::one();
        for (&e, &x) in self.exponents[j].iter().zip(u) {
            for _ in 0..e {
                v *= x;
            }
        }
        v
    }

    /// The feature matrix of `states` (`m * n_vars`, one state after another): `m * len()`
    /// values, row-major (one row per state).
    pub fn features(&self, states: &[f64]) -> Result<Vec<f64>> {
        if states.is_empty() || states.len() % self.n_vars != 0 {
            return Err(DiffsimError::SizeMismatch {
                what: "states (a whole number of state vectors, at least one)",
                expected: self.n_vars * (states.len() / self.n_vars).max(1),
                got: states.len(),
            });
        }
        check_finite("states", states)?;
        Ok(states.chunks(self.n_vars).flat_map(|u| (0..self.len()).map(|j| self.eval(j, u))).collect())
    }

    /// Term `j` written with the state names `vars` (`"1"`, `"x"`, `"x y^2"`).
    pub fn name(&self, j: usize, vars: &[&str]) -> String {
        let parts: Vec<String> = self.exponents[j]
            .iter()
            .enumerate()
            .filter(|(_, &e)| e > 0)
            .map(|(i, &e)| {
                let var = vars.get(i).map_or_else(|| format!("u{i}"), |s| s.to_string());
                if e == 1 {
                    var
                } else {
                    format!("{var}^{e}")
                }
            })
            .collect();
        if parts.is_empty() {
            "1".into()
        } else {
            parts.join(" ")
        }
    }
}

/// Every exponent vector with `left` more degrees to give to states `i..`.
fn push_monomials(out: &mut Vec<Vec<u32>>, current: &mut [u32], i: usize, left: u32) {
    if i + 1 == current.len() {
        current[i] = left;
        out.push(current.to_vec());
        current[i] = 0;
        return;
    }
    for e in (0..=left).rev() {
        current[i] = e;
        push_monomials(out, current, i + 1, left - e);
    }
    current[i] = 0;
}

fn check_finite(what: &'static str, x: &[f64]) -> Result<()> {
    match x.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(DiffsimError::NonFinite { what, index }),
        None => Ok(()),
    }
}

/// Sequentially thresholded least squares (Brunton, Proctor and Kutz 2016), thresholding
/// each term's RMS contribution relative to its target (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stlsq {
    /// A term is dropped when its RMS contribution is below `threshold` times the target's
    /// RMS (default 0.05).
    pub threshold: f64,
    /// Ridge weight on the unit-RMS coefficients (default 1e-12): keeps the solves
    /// well-posed when candidates are collinear, without visibly biasing them.
    pub ridge: f64,
    /// Most rounds of solve-and-threshold (default 25; it usually settles in a few).
    pub max_rounds: usize,
}

impl Default for Stlsq {
    fn default() -> Self {
        Self { threshold: 0.05, ridge: 1e-12, max_rounds: 25 }
    }
}

/// The sparse coefficients [`Stlsq::fit`] found.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseFit {
    /// Number of library terms.
    pub n_terms: usize,
    /// Number of targets.
    pub n_targets: usize,
    /// `coefficients[i * n_terms + j]`: target `i`'s coefficient of term `j` (exactly 0 when
    /// the term was dropped).
    pub coefficients: Vec<f64>,
    /// Per target, `|features * coefficients - target| / |target|` over the samples.
    pub relative_residual: Vec<f64>,
    /// Rounds of solve-and-threshold run (the most over the targets).
    pub rounds: usize,
}

impl SparseFit {
    /// Target `i`'s coefficient of term `j`.
    pub fn coefficient(&self, i: usize, j: usize) -> f64 {
        self.coefficients[i * self.n_terms + j]
    }

    /// The terms target `i` kept.
    pub fn active(&self, i: usize) -> Vec<usize> {
        (0..self.n_terms).filter(|&j| self.coefficient(i, j) != 0.0).collect()
    }

    /// Target `i` as a sum of terms with `digits` decimals, e.g. `"-0.902 x y + 0.010 y^2"`
    /// (`"0"` when nothing was kept).
    pub fn terms_string(&self, i: usize, library: &PolynomialLibrary, vars: &[&str], digits: usize) -> String {
        format_sum(self.active(i).into_iter().map(|j| (self.coefficient(i, j), library.name(j, vars))), digits)
    }
}

/// `coefficient name` pairs as a signed sum, e.g. `"-0.902 x y + 0.010 y^2"` (`"0"` for none).
pub(crate) fn format_sum(terms: impl Iterator<Item = (f64, String)>, digits: usize) -> String {
    let mut s = String::new();
    for (c, name) in terms {
        let body = if name == "1" { format!("{:.digits$}", c.abs()) } else { format!("{:.digits$} {name}", c.abs()) };
        match (s.is_empty(), c < 0.0) {
            (true, false) => s.push_str(&body),
            (true, true) => s.push_str(&format!("-{body}")),
            (false, false) => s.push_str(&format!(" + {body}")),
            (false, true) => s.push_str(&format!(" - {body}")),
        }
    }
    if s.is_empty() {
        "0".into()
    } else {
        s
    }
}

impl Stlsq {
    /// Regress each of `n_targets` targets (`targets`: `m * n_targets`, row-major) on
    /// `n_terms` features (`features`: `m * n_terms`, row-major, e.g. from
    /// [`PolynomialLibrary::features`]).
    pub fn fit(&self, features: &[f64], n_terms: usize, targets: &[f64], n_targets: usize) -> Result<SparseFit> {
        self.check()?;
        let data = Samples::new(features, n_terms, targets, n_targets)?;
        let mut out = SparseFit::empty(n_terms, n_targets);
        for i in 0..n_targets {
            let y = data.target(i);
            let y_rms = rms(&y);
            if y_rms == 0.0 {
                continue;
            }
            let mut active = data.identifiable();
            let mut scaled = Vec::new();
            let rounds = self.max_rounds.max(1);
            for round in 1..=rounds {
                out.rounds = out.rounds.max(round);
                scaled = data.solve(self.ridge, &active, &y);
                let kept: Vec<usize> = active
                    .iter()
                    .zip(&scaled)
                    .filter(|(_, c)| c.abs() >= self.threshold * y_rms)
                    .map(|(&j, _)| j)
                    .collect();
                if kept.len() == active.len() {
                    break;
                }
                active = kept;
                if round == rounds {
                    // Out of rounds with a changed set: its own solve.
                    scaled = data.solve(self.ridge, &active, &y);
                }
            }
            data.set(&mut out, i, &active, &scaled, &y);
        }
        Ok(out)
    }

    fn check(&self) -> Result<()> {
        check_weight("stlsq threshold", self.threshold)?;
        check_weight("stlsq ridge", self.ridge)
    }
}

/// The best sparse fits of each size: for `k = 1..=max_terms`, the fit whose every target
/// keeps the `k` terms that leave the least squared residual, found by trying every
/// subset (exact best-subset selection; `ridge` as in [`Stlsq`]).
///
/// Where a trajectory's samples make candidates nearly collinear, thresholding can keep a
/// dozen large, cancelling terms; best-subset selection keeps exactly `k`, and choosing `k`
/// is left to the caller (e.g. by how well each fit's model matches the data, with a
/// penalty per term). At most 100 000 subsets per size: a bigger library needs [`Stlsq`].
///
/// ```
/// use diffsim::fit::{best_subsets, PolynomialLibrary};
/// let lib = PolynomialLibrary::new(2, 0, 2).unwrap();
/// let states: Vec<f64> = (0..30).flat_map(|i| [0.1 * i as f64, 1.0 + 0.05 * i as f64]).collect();
/// let y: Vec<f64> = states.chunks(2).map(|u| 0.8 * u[0] * u[1]).collect();
/// let fits = best_subsets(&lib.features(&states).unwrap(), lib.len(), &y, 1, 2, 1e-12).unwrap();
/// assert_eq!(fits[0].terms_string(0, &lib, &["x", "y"], 2), "0.80 x y");
/// ```
pub fn best_subsets(
    features: &[f64],
    n_terms: usize,
    targets: &[f64],
    n_targets: usize,
    max_terms: usize,
    ridge: f64,
) -> Result<Vec<SparseFit>> {
    check_weight("best-subset ridge", ridge)?;
    let data = Samples::new(features, n_terms, targets, n_targets)?;
    let candidates = data.identifiable();
    let max_terms = max_terms.min(candidates.len());
    let mut fits = Vec::with_capacity(max_terms);
    for k in 1..=max_terms {
        if binomial(candidates.len(), k) > 100_000 {
            return Err(DiffsimError::InvalidOption {
                name: "best-subset size",
                why: format!("{k} of {} terms is too many subsets to try; use fewer terms or Stlsq", candidates.len()),
            });
        }
        let mut fit = SparseFit::empty(n_terms, n_targets);
        fit.rounds = 1;
        for i in 0..n_targets {
            let y = data.target(i);
            let mut best: Option<(f64, Vec<usize>, Vec<f64>)> = None;
            let mut pick: Vec<usize> = (0..k).collect();
            loop {
                let active: Vec<usize> = pick.iter().map(|&c| candidates[c]).collect();
                let scaled = data.solve(ridge, &active, &y);
                let sse = data.sse(&active, &scaled, &y);
                if best.as_ref().is_none_or(|b| sse < b.0) {
                    best = Some((sse, active, scaled));
                }
                if !next_combination(&mut pick, candidates.len()) {
                    break;
                }
            }
            if let Some((_, active, scaled)) = best {
                data.set(&mut fit, i, &active, &scaled, &y);
            }
        }
        fits.push(fit);
    }
    Ok(fits)
}

/// Step `pick` (increasing indices below `n`) to the next combination; false after the last.
fn next_combination(pick: &mut [usize], n: usize) -> bool {
    let k = pick.len();
    for i in (0..k).rev() {
        if pick[i] < n - k + i {
            pick[i] += 1;
            for j in i + 1..k {
                pick[j] = pick[j - 1] + 1;
            }
            return true;
        }
    }
    false
}

fn binomial(n: usize, k: usize) -> u128 {
    (0..k as u128).fold(1, |acc, i| acc * (n as u128 - i) / (i + 1))
}

fn check_weight(name: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(DiffsimError::InvalidOption { name, why: format!("must be finite and >= 0, got {v}") })
    }
}

fn rms(v: &[f64]) -> f64 {
    (v.iter().map(|x| x * x).sum::<f64>() / v.len() as f64).sqrt()
}

impl SparseFit {
    fn empty(n_terms: usize, n_targets: usize) -> Self {
        Self {
            n_terms,
            n_targets,
            coefficients: vec![0.0; n_terms * n_targets],
            relative_residual: vec![0.0; n_targets],
            rounds: 0,
        }
    }
}

/// Checked regression data, with each feature column's RMS (columns are solved scaled to
/// unit RMS, so coefficients are comparable contributions).
struct Samples<'a> {
    features: &'a [f64],
    n_terms: usize,
    targets: &'a [f64],
    n_targets: usize,
    m: usize,
    col_rms: Vec<f64>,
}

impl<'a> Samples<'a> {
    fn new(features: &'a [f64], n_terms: usize, targets: &'a [f64], n_targets: usize) -> Result<Self> {
        if n_terms == 0 || n_targets == 0 {
            return Err(DiffsimError::InvalidOption {
                name: "sparse regression",
                why: "needs at least one term and one target".into(),
            });
        }
        let m = features.len() / n_terms;
        if m == 0 || features.len() != m * n_terms {
            return Err(DiffsimError::SizeMismatch {
                what: "features (samples x terms)",
                expected: m.max(1) * n_terms,
                got: features.len(),
            });
        }
        if targets.len() != m * n_targets {
            return Err(DiffsimError::SizeMismatch {
                what: "targets (samples x targets)",
                expected: m * n_targets,
                got: targets.len(),
            });
        }
        check_finite("features", features)?;
        check_finite("targets", targets)?;
        let col_rms =
            (0..n_terms).map(|j| rms(&features.iter().skip(j).step_by(n_terms).copied().collect::<Vec<_>>())).collect();
        Ok(Self { features, n_terms, targets, n_targets, m, col_rms })
    }

    fn target(&self, i: usize) -> Vec<f64> {
        self.targets.iter().skip(i).step_by(self.n_targets).copied().collect()
    }

    /// The terms that do not vanish on every sample (the others cannot be identified).
    fn identifiable(&self) -> Vec<usize> {
        (0..self.n_terms).filter(|&j| self.col_rms[j] > 0.0).collect()
    }

    /// Ridge least squares on the `active` columns scaled to unit RMS: their coefficients,
    /// in `active`'s order. The ridge rows `sqrt(ridge m) I` sit under the samples, so one
    /// column-pivoted QR solves both.
    fn solve(&self, ridge: f64, active: &[usize], y: &[f64]) -> Vec<f64> {
        let (m, k) = (self.m, active.len());
        if k == 0 {
            return Vec::new();
        }
        let damp = (ridge * m as f64).sqrt();
        let a = Mat::from_fn(m + k, k, |r, c| {
            if r < m {
                self.features[r * self.n_terms + active[c]] / self.col_rms[active[c]]
            } else if r - m == c {
                damp
            } else {
                0.0
            }
        });
        let b = Mat::from_fn(m + k, 1, |r, _| if r < m { y[r] } else { 0.0 });
        let x = a.col_piv_qr().solve_lstsq(&b);
        (0..k).map(|c| x[(c, 0)]).collect()
    }

    /// The squared residual of scaled coefficients on `active`.
    fn sse(&self, active: &[usize], scaled: &[f64], y: &[f64]) -> f64 {
        self.features
            .chunks(self.n_terms)
            .zip(y)
            .map(|(row, &yk)| {
                let fit: f64 = active.iter().zip(scaled).map(|(&j, &c)| row[j] * c / self.col_rms[j]).sum();
                (fit - yk).powi(2)
            })
            .sum()
    }

    /// Write target `i`'s coefficients (unscaled) and relative residual into `out`.
    fn set(&self, out: &mut SparseFit, i: usize, active: &[usize], scaled: &[f64], y: &[f64]) {
        let scaled = if active.is_empty() { &[][..] } else { scaled };
        for (&j, &c) in active.iter().zip(scaled) {
            out.coefficients[i * self.n_terms + j] = c / self.col_rms[j];
        }
        let y_rms = rms(y);
        out.relative_residual[i] =
            if y_rms == 0.0 { 0.0 } else { (self.sse(active, scaled, y) / self.m as f64).sqrt() / y_rms };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_lists_every_monomial_once_in_order() {
        let lib = PolynomialLibrary::new(2, 0, 2).unwrap();
        let names: Vec<String> = (0..lib.len()).map(|j| lib.name(j, &["x", "y"])).collect();
        assert_eq!(names, ["1", "x", "y", "x^2", "x y", "y^2"]);
        // C(n + d, d) monomials of degree <= d in n variables.
        let lib = PolynomialLibrary::new(3, 0, 4).unwrap();
        assert_eq!(lib.len(), 35);
        let lib = PolynomialLibrary::new(3, 2, 3).unwrap();
        assert_eq!(lib.len(), 6 + 10);
        assert_eq!(lib.name(0, &[]), "u0^2");
        assert_eq!(lib.eval(lib.len() - 1, &[2.0, 3.0, 5.0]), 125.0);
        for bad in [(0, 0, 1), (2, 3, 2), (2, 0, 9)] {
            assert!(PolynomialLibrary::new(bad.0, bad.1, bad.2).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn recovers_lorenz_from_exact_samples() {
        // Lorenz's right-hand side is sparse in the monomials of degree <= 2.
        let lib = PolynomialLibrary::new(3, 0, 2).unwrap();
        let states: Vec<f64> = (0..200)
            .flat_map(|k| {
                let s = k as f64 * 0.37;
                [10.0 * s.sin(), 12.0 * (1.3 * s).cos(), 25.0 + 8.0 * (0.7 * s).sin()]
            })
            .collect();
        let y: Vec<f64> = states
            .chunks(3)
            .flat_map(|u| [10.0 * (u[1] - u[0]), u[0] * (28.0 - u[2]) - u[1], u[0] * u[1] - 8.0 / 3.0 * u[2]])
            .collect();
        let features = lib.features(&states).unwrap();
        let fit = Stlsq::default().fit(&features, lib.len(), &y, 3).unwrap();
        let vars = ["x", "y", "z"];
        let expect = [
            vec![("x", -10.0), ("y", 10.0)],
            vec![("x", 28.0), ("y", -1.0), ("x z", -1.0)],
            vec![("z", -8.0 / 3.0), ("x y", 1.0)],
        ];
        for (i, want) in expect.iter().enumerate() {
            let active = fit.active(i);
            assert_eq!(active.len(), want.len(), "{}", fit.terms_string(i, &lib, &vars, 4));
            for (name, c) in want {
                let j = (0..lib.len()).find(|&j| lib.name(j, &vars) == *name).unwrap();
                assert!((fit.coefficient(i, j) - c).abs() < 1e-8 * c.abs(), "{name}: {}", fit.coefficient(i, j));
            }
            assert!(fit.relative_residual[i] < 1e-7, "{}", fit.relative_residual[i]);
        }
    }

    #[test]
    fn threshold_drops_small_and_noise_terms() {
        let lib = PolynomialLibrary::new(2, 0, 3).unwrap();
        let states: Vec<f64> = (0..100).flat_map(|k| [0.05 * k as f64, 2.0 + (0.2 * k as f64).cos()]).collect();
        // A big term, a 1 % term, and deterministic "noise" at 0.1 %.
        let y: Vec<f64> = states
            .chunks(2)
            .enumerate()
            .map(|(k, u)| -0.9 * u[0] * u[1] + 0.01 * u[1] + 1e-3 * ((k * 7919) % 13) as f64 / 13.0)
            .collect();
        let features = lib.features(&states).unwrap();
        let coarse = Stlsq { threshold: 0.05, ..Default::default() }.fit(&features, lib.len(), &y, 1).unwrap();
        assert_eq!(coarse.terms_string(0, &lib, &["x", "y"], 2), "-0.90 x y");
        assert!(coarse.relative_residual[0] < 0.01);
        // With no threshold every term stays.
        let all = Stlsq { threshold: 0.0, ..Default::default() }.fit(&features, lib.len(), &y, 1).unwrap();
        assert_eq!(all.active(0).len(), lib.len());
        assert!(all.relative_residual[0] <= coarse.relative_residual[0]);
    }

    #[test]
    fn degenerate_targets_and_columns() {
        let lib = PolynomialLibrary::new(2, 1, 1).unwrap();
        // y identically zero: nothing kept; x identically zero: never chosen.
        let states: Vec<f64> = (0..10).flat_map(|k| [0.0, k as f64]).collect();
        let features = lib.features(&states).unwrap();
        let y: Vec<f64> = (0..10).flat_map(|k| [0.0, 3.0 * k as f64]).collect();
        let fit = Stlsq::default().fit(&features, 2, &y, 2).unwrap();
        assert_eq!(fit.terms_string(0, &lib, &["x", "y"], 1), "0");
        assert_eq!(fit.terms_string(1, &lib, &["x", "y"], 1), "3.0 y");
        // Collinear columns (x and 2x) stay finite.
        let features: Vec<f64> = (1..10).flat_map(|k| [k as f64, 2.0 * k as f64]).collect();
        let y: Vec<f64> = (1..10).map(|k| 4.0 * k as f64).collect();
        let fit = Stlsq::default().fit(&features, 2, &y, 1).unwrap();
        assert!(fit.coefficients.iter().all(|c| c.is_finite()));
        assert!(fit.relative_residual[0] < 1e-6);
    }

    #[test]
    fn best_subsets_pick_the_true_terms_of_each_size() {
        // On one curve (a trajectory), monomials are nearly collinear: thresholding keeps
        // many cancelling terms, best-subset selection the true ones.
        let lib = PolynomialLibrary::new(2, 0, 3).unwrap();
        let states: Vec<f64> = (0..150).flat_map(|k| [1.0 + 0.02 * k as f64, (0.04 * k as f64).exp() * 0.5]).collect();
        let y: Vec<f64> = states.chunks(2).flat_map(|u| [-0.9 * u[0] * u[1], 0.8 * u[0] * u[1] - 0.3 * u[1]]).collect();
        let features = lib.features(&states).unwrap();
        let fits = best_subsets(&features, lib.len(), &y, 2, 3, 1e-12).unwrap();
        assert_eq!(fits.len(), 3);
        assert_eq!(fits[0].terms_string(0, &lib, &["x", "y"], 6), "-0.900000 x y");
        assert_eq!(fits[1].terms_string(1, &lib, &["x", "y"], 6), "-0.300000 y + 0.800000 x y");
        assert!(fits[1].relative_residual[1] < 1e-9 && fits[0].relative_residual[1] > 1e-3);
        // Every size keeps exactly that many terms per target, and larger never fits worse.
        for (k, fit) in fits.iter().enumerate() {
            for i in 0..2 {
                assert_eq!(fit.active(i).len(), k + 1);
            }
        }
        assert!(fits[2].relative_residual[0] <= fits[1].relative_residual[0] + 1e-12);
        // Enumeration counts C(n, k) subsets.
        let mut pick = vec![0, 1, 2];
        let mut count = 1;
        while next_combination(&mut pick, 7) {
            count += 1;
        }
        assert_eq!(count, 35);
        assert_eq!(binomial(7, 3), 35);
        // A library too large to enumerate is an error that names the way out.
        let big = PolynomialLibrary::new(4, 0, 8).unwrap();
        let states: Vec<f64> = (0..5).flat_map(|k| [1.0, 2.0, 3.0, k as f64]).collect();
        let err = best_subsets(&big.features(&states).unwrap(), big.len(), &[1.0; 5], 1, 5, 0.0).unwrap_err();
        assert!(err.to_string().contains("Stlsq"), "{err}");
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let s = Stlsq::default();
        assert!(s.fit(&[1.0, 2.0, 3.0], 2, &[1.0], 1).is_err());
        assert!(s.fit(&[1.0, 2.0], 2, &[1.0, 2.0], 1).is_err());
        assert!(s.fit(&[1.0, f64::NAN], 2, &[1.0], 1).is_err());
        assert!(s.fit(&[1.0, 2.0], 2, &[f64::INFINITY], 1).is_err());
        assert!(s.fit(&[], 2, &[], 1).is_err());
        assert!(s.fit(&[1.0], 0, &[1.0], 1).is_err());
        assert!(Stlsq { threshold: -1.0, ..s }.fit(&[1.0], 1, &[1.0], 1).is_err());
        assert!(Stlsq { ridge: f64::NAN, ..s }.fit(&[1.0], 1, &[1.0], 1).is_err());
        assert!(best_subsets(&[1.0, 2.0], 2, &[1.0], 1, 1, -1.0).is_err());
        assert!(best_subsets(&[1.0, 2.0], 2, &[1.0, 2.0], 1, 1, 0.0).is_err());
        let lib = PolynomialLibrary::new(2, 1, 2).unwrap();
        assert!(lib.features(&[1.0, 2.0, 3.0]).is_err());
        assert!(lib.features(&[]).is_err());
        assert!(lib.features(&[1.0, f64::NAN]).is_err());
    }
}
