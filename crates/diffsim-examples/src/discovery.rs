//! Turning a trained lv-ude network into equations: sparse regression of its terms,
//! refitted to the data through the solver.

use crate::systems::{linspace, LvLinear, LV_PARAMS};
use crate::{Known, LvUde};
use diffsim::fit::{best_subsets, Fit, PolynomialLibrary, PolynomialUde, SparseFit};
use diffsim::optim::{Control, Lbfgs, MinimizeOptions, OptimError};
use diffsim::sensitivity::SensAlg;
use diffsim::{Problem, Result, SolveOptions};

/// What sparse regression made of a trained lv-ude network: see [`discover_lv`].
#[derive(Clone, Debug)]
pub struct LvDiscovery {
    /// The chosen regression of the network's two terms on them.
    pub regression: SparseFit,
    /// The recovered equations as a model, set up to fit the example's data.
    pub fit: Fit<PolynomialUde<LvLinear>>,
    /// The kept terms' coefficients refitted to the data (one per term of `fit`'s model).
    pub coefficients: Vec<f64>,
    /// The recovered model's loss on the data with those coefficients.
    pub loss: f64,
    /// How many sparse models were refitted and compared.
    pub compared: usize,
}

impl LvDiscovery {
    /// The recovered interaction terms (the polynomial part of each equation) at state `u`.
    pub fn terms_at(&self, u: &[f64]) -> [f64; 2] {
        let mut out = [0.0; 2];
        self.fit.problem.model().add_terms(&mut out, u, &self.coefficients);
        out
    }

    /// The recovered model's solution at `times` (from the example's `u0` and start time;
    /// `times` sorted, the last the end of the span), flat and time-major.
    pub fn predict(&self, times: &[f64]) -> Result<Vec<f64>> {
        let opts = SolveOptions::default().rtol(1e-8).atol(1e-8).saveat_times(times.to_vec());
        let mut fit = self.fit.clone();
        let span = (fit.problem.tspan().0, times.last().copied().unwrap_or(fit.problem.tspan().1));
        Ok(fit.predict(&self.coefficients, span, &opts)?.into_u_flat())
    }

    /// The recovered equations, one line per state, e.g. `x' = 1.3 x - 0.901 x y`.
    pub fn equations(&self) -> [String; 2] {
        let model = &self.fit.problem.model();
        let vars = ["x", "y"];
        let known = [format!("{} x", LV_PARAMS[0]), format!("-{} y", LV_PARAMS[3])];
        [0, 1].map(|i| {
            let terms = model.terms_string(i, &self.coefficients, &vars, 3);
            let rest = match terms.strip_prefix('-') {
                _ if terms == "0" => String::new(),
                Some(t) => format!(" - {t}"),
                None => format!(" + {terms}"),
            };
            format!("{}' = {}{rest}", vars[i], known[i])
        })
    }
}

/// Most terms per equation [`discover_lv`] considers.
const MAX_DISCOVERED_TERMS: usize = 3;

/// Most solver steps of one solve while refitting a candidate model.
const MAX_REFIT_STEPS: usize = 2000;

/// Turn the trained network `p` of an lv-ude example into equations.
///
/// 1. Sample the network's two terms along its own fitted trajectory over the data window
///    (201 points).
/// 2. For each equation and each size `k = 1..=3`, find the `k` monomials of `x, y` (degrees
///    0 to 3) that fit its samples best ([`best_subsets`]).
/// 3. Refit every combination's coefficients to the data through the solver (L-BFGS, at
///    most 100 iterations from the regression's values), and keep the one with the lowest
///    Bayesian information criterion `N ln(SSE / N) + K ln N` (`N` data values, `K` terms):
///    a term must pay for itself in the fit to the data, not to the network.
///
/// The network is only trusted where it was trained; the data decide the final model. The
/// true terms are `-0.9 x y` and `0.8 x y`.
pub fn discover_lv(ex: &mut LvUde, p: &[f64]) -> std::result::Result<LvDiscovery, OptimError> {
    let span = ex.fit.problem.tspan();
    let times = linspace(span.0, span.1, 201);
    let sol = ex.fit.predict(p, span, &SolveOptions::default().rtol(1e-8).atol(1e-8).saveat_times(times))?;
    if !sol.retcode().is_success() {
        return Err(diffsim::DiffsimError::InvalidOption {
            name: "trained parameters",
            why: format!("the trained model does not solve over the data window ({:?})", sol.retcode()),
        }
        .into());
    }
    let states = sol.u_flat();
    let mut targets = vec![0.0; states.len()];
    for (u, out) in states.chunks(2).zip(targets.chunks_mut(2)) {
        ex.fit.problem.model().network_term(u, p, out);
    }
    let library = PolynomialLibrary::new(2, 0, 3)?;
    let features = library.features(states)?;
    let sizes = best_subsets(&features, library.len(), &targets, 2, MAX_DISCOVERED_TERMS, 1e-12)?;
    let Known::LvLinear(physics) = *ex.fit.problem.model().physics() else {
        return Err(diffsim::DiffsimError::InvalidOption {
            name: "example",
            why: "equations are recovered for the lv-ude example only".into(),
        }
        .into());
    };
    let n_data = ex.data.len() as f64;
    let mut best: Option<(f64, LvDiscovery)> = None;
    for kx in 0..sizes.len() {
        for ky in 0..sizes.len() {
            // Equation 0 from the kx-term fit, equation 1 from the ky-term fit.
            let mut regression = sizes[kx].clone();
            let nt = library.len();
            regression.coefficients[nt..].copy_from_slice(&sizes[ky].coefficients[nt..]);
            regression.relative_residual[1] = sizes[ky].relative_residual[1];
            let (model, c0) = PolynomialUde::from_sparse_fit(physics, library.clone(), &regression)?;
            let problem = Problem::new(model, ex.fit.problem.u0().to_vec(), c0.clone(), span)?;
            let mut fit = Fit {
                problem,
                alg: ex.fit.alg,
                // Candidates with spurious terms can blow up or turn stiff: such a solve is
                // cut short (a NaN loss, which the optimizer steps back from) rather than
                // left to grind. The true model needs about a hundred steps.
                opts: ex.fit.opts.clone().max_steps(MAX_REFIT_STEPS),
                loss: ex.fit.loss.clone(),
                sensealg: SensAlg::Auto,
                l2: 0.0,
            };
            let opts = MinimizeOptions::default().max_iters(100);
            let r = fit.train(&c0, &mut Lbfgs::default(), &opts, None, |_| Control::Continue)?;
            if !r.best_loss.is_finite() {
                continue;
            }
            let bic = n_data * (r.best_loss / n_data).ln() + c0.len() as f64 * n_data.ln();
            if best.as_ref().is_none_or(|(b, _)| bic < *b) {
                let found = LvDiscovery {
                    regression,
                    fit,
                    coefficients: r.best_x,
                    loss: r.best_loss,
                    compared: sizes.len() * sizes.len(),
                };
                best = Some((bic, found));
            }
        }
    }
    let (_, found) = best.ok_or_else(|| diffsim::DiffsimError::InvalidOption {
        name: "trained parameters",
        why: "no sparse model of the network's terms could be fitted to the data".into(),
    })?;
    Ok(found)
}
