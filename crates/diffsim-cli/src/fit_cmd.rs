//! `diffsim fit`: estimate a zoo model's parameters from measurements in a CSV file.

use crate::parse;
use crate::plot::{self, Curve, Panel, Style};
use clap::Args;
use diffsim::fit::{
    fit_collocation_then_shooting, fit_growing_windows, fit_least_squares, fit_minibatch_then_shooting,
    fit_multiple_shooting, fit_prediction_error, profile_likelihood, FitProblem, Kernel, LeastSquaresFit, Minibatch,
    MultipleShooting, Observation, PemGain, Profile, ProfileOptions, TimeSeries, Uncertainty,
};
use diffsim::models::{lookup, ZooModel};
use diffsim::optim::{
    Adam, Bobyqa, Lbfgs, LeastSquaresReport, LeastSquaresSolver, LevenbergMarquardt, MinimizeOptions, NelderMead,
    Residuals, ScalarLeastSquares,
};
use diffsim::{solve, Algorithm, Problem, SolveOptions};
use serde_json::json;
use std::io::IsTerminal;
use std::time::Instant;

/// Options of `diffsim fit`.
#[derive(Args, Debug, Clone)]
pub struct FitArgs {
    /// Zoo model (see `diffsim models`).
    #[arg(long)]
    pub model: String,
    /// CSV file: a header `t,<name>,...` (optional `sd_<name>` columns of standard
    /// deviations), one row per time; empty cells or NaN are missing.
    #[arg(long)]
    pub data: String,
    /// single (one solve over the whole span), multiple-shooting (groups of --group-size
    /// measurements, each from its own fitted initial state, continuity as residuals
    /// weighted by --continuity-weight), or collocation (the model's right-hand side fitted
    /// to derivatives smoothed from the data with --kernel, no solve in the loop, then
    /// refined by single shooting; needs every state observed), or pem (the solve nudged
    /// towards the data, u' = f + K H^T (y(t) - H u), the gain --gain annealed to 0 over
    /// --stages fits), or growing (single shooting over --windows horizons growing to the
    /// whole series, each from the last), or minibatch (Adam, step --lr, for --steps steps on
    /// --batch random windows of --window measurements, then --optimizer on the whole
    /// series). Every strategy runs with every --optimizer.
    #[arg(long, default_value = "single")]
    pub strategy: String,
    /// lm (Levenberg-Marquardt with forward sensitivities), bobyqa (bounded, derivative-free,
    /// by quadratic models), lbfgs, adam (step --lr), or nelder-mead (derivative-free); the
    /// gradient methods minimise the same loss with the gradient from the same sensitivities.
    #[arg(long, default_value = "lm")]
    pub optimizer: String,
    /// Starting parameters a,b,.. (default: the model's).
    #[arg(long, allow_hyphen_values = true)]
    pub p0: Option<String>,
    /// Lower bounds, one per fitted value (parameters, then the initial state with --fit-u0).
    #[arg(long, allow_hyphen_values = true)]
    pub lower: Option<String>,
    /// Upper bounds, as --lower.
    #[arg(long, allow_hyphen_values = true)]
    pub upper: Option<String>,
    /// The states the data columns measure, in column order (default: 0, 1, ...).
    #[arg(long)]
    pub observe: Option<String>,
    /// Fit the initial state too (starting from --u0).
    #[arg(long)]
    pub fit_u0: bool,
    /// Initial state a,b,.. (default: the model's).
    #[arg(long, allow_hyphen_values = true)]
    pub u0: Option<String>,
    /// Initial time (default: the model's); the data must lie after it.
    #[arg(long, allow_hyphen_values = true)]
    pub t0: Option<f64>,
    /// The solver (default: tsit5, or rodas5p for a stiff model).
    #[arg(long)]
    pub alg: Option<String>,
    /// Relative tolerance of the solves.
    #[arg(long, default_value_t = 1e-8)]
    pub rtol: f64,
    /// Absolute tolerance of the solves.
    #[arg(long, default_value_t = 1e-8)]
    pub atol: f64,
    /// The most optimizer iterations (default: lm 200, lbfgs 500, adam and nelder-mead
    /// 2000); for bobyqa the most loss evaluations (default 2000).
    #[arg(long)]
    pub max_iters: Option<usize>,
    /// Adam's step size (default 0.01).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Measurements per group (multiple-shooting; default 10; neighbours share a point).
    #[arg(long)]
    pub group_size: Option<usize>,
    /// Weight of the continuity residuals against the data residuals (multiple-shooting;
    /// default 100).
    #[arg(long)]
    pub continuity_weight: Option<f64>,
    /// Smoothing kernel of collocation: epanechnikov (default), uniform, triangular,
    /// quartic, triweight, tricube, gaussian, cosine, logistic, sigmoid, silverman.
    #[arg(long)]
    pub kernel: Option<String>,
    /// The prediction error method's first gain K (pem; default 10).
    #[arg(long)]
    pub gain: Option<f64>,
    /// The number of pem fits, the gain divided by 4 each time and 0 in the last (default
    /// 5; 1 keeps --gain fixed).
    #[arg(long)]
    pub stages: Option<usize>,
    /// Ridge weight: adds l2/2 |p|^2 to the loss (default 0).
    #[arg(long)]
    pub l2: Option<f64>,
    /// Measurements per window (minibatch; default 20).
    #[arg(long)]
    pub window: Option<usize>,
    /// Windows per step (minibatch; default 4).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Adam steps on windows before the whole-series fit (minibatch; default 500).
    #[arg(long)]
    pub steps: Option<usize>,
    /// pem: fit the gain together with the parameters, from --gain (one fit; the nudge
    /// holds the last measurement, so the residuals are one-step-ahead prediction errors).
    #[arg(long)]
    pub fit_gain: bool,
    /// The number of growing windows (growing; default 5).
    #[arg(long)]
    pub windows: Option<usize>,
    /// After the fit, the profile likelihood of this parameter (a name from `diffsim
    /// models`, or an index among the fitted values): a table of the best loss with it held
    /// at 21 values, and its 95 % likelihood-ratio interval. Not with --json.
    #[arg(long)]
    pub profile: Option<String>,
    /// Write the data and the fitted trajectories to this PNG file.
    #[arg(long)]
    pub plot: Option<String>,
    /// Print one JSON object: model, strategy, optimizer, p, loss (half the sum of squared
    /// weighted residuals), iters, seconds, converged, and stderr when computed.
    #[arg(long)]
    pub json: bool,
}

/// What a run found.
struct Outcome {
    x: Vec<f64>,
    loss: f64,
    iters: usize,
    converged: bool,
    uncertainty: Uncertainty,
}

pub fn run(a: &FitArgs) -> Result<(), String> {
    let (multiple, collocation, pem, growing, minibatch) = match a.strategy.as_str() {
        "single" => (false, false, false, false, false),
        "multiple-shooting" => (true, false, false, false, false),
        "collocation" => (false, true, false, false, false),
        "pem" => (false, false, true, false, false),
        "growing" => (false, false, false, true, false),
        "minibatch" => (false, false, false, false, true),
        other => {
            return Err(format!(
                "unknown --strategy '{other}'; choose single, multiple-shooting, collocation, pem, growing or minibatch"
            ))
        }
    };
    if !minibatch && (a.window.is_some() || a.batch.is_some() || a.steps.is_some()) {
        return Err("--window, --batch and --steps belong to --strategy minibatch".into());
    }
    if !growing && a.windows.is_some() {
        return Err("--windows belongs to --strategy growing".into());
    }
    if !pem && (a.gain.is_some() || a.stages.is_some() || a.fit_gain) {
        return Err("--gain, --stages and --fit-gain belong to --strategy pem".into());
    }
    if a.fit_gain && a.stages.is_some() {
        return Err("--fit-gain fits one gain in one fit; drop --stages".into());
    }
    if !multiple && (a.group_size.is_some() || a.continuity_weight.is_some()) {
        return Err("--group-size and --continuity-weight belong to --strategy multiple-shooting".into());
    }
    if a.optimizer != "adam" && !minibatch && a.lr.is_some() {
        return Err("--lr belongs to --optimizer adam or --strategy minibatch".into());
    }
    if !collocation && a.kernel.is_some() {
        return Err("--kernel belongs to --strategy collocation".into());
    }
    let kernel = Kernel::from_name(a.kernel.as_deref().unwrap_or("epanechnikov")).map_err(|e| e.to_string())?;
    let entry = lookup(&a.model).map_err(|e| e.to_string())?;
    let data = TimeSeries::from_csv_path(&a.data).map_err(|e| e.to_string())?;
    let p0 = a.p0.as_deref().map(|s| parse::list("--p0", s)).transpose()?.unwrap_or(entry.p.clone());
    let u0 = a.u0.as_deref().map(|s| parse::list("--u0", s)).transpose()?.unwrap_or(entry.u0.clone());
    let t0 = a.t0.unwrap_or(entry.tspan.0);
    let t_end = *data.t().last().unwrap_or(&t0);
    let span_end = if t_end > t0 { t_end } else { entry.tspan.1 };
    let problem = Problem::new(entry.model, u0, p0, (t0, span_end)).map_err(|e| e.to_string())?;
    let alg_name = a.alg.clone().unwrap_or_else(|| if entry.stiff { "rodas5p" } else { "tsit5" }.into());
    let alg: Algorithm = alg_name.parse().map_err(|e: diffsim::DiffsimError| e.to_string())?;
    if alg == Algorithm::Auto {
        return Err(
            "--alg auto switches methods mid-solve; a fit needs one fixed method (e.g. tsit5 or rodas5p)".into()
        );
    }
    let opts = SolveOptions::default().rtol(a.rtol).atol(a.atol);
    let observation = match &a.observe {
        Some(s) => Observation::States(parse_indices(s)?),
        None => Observation::States((0..data.n_observed()).collect()),
    };
    let spec = FitProblem::new(&problem, &data)
        .observe(observation.clone())
        .alg(alg)
        .options(opts.clone())
        .fit_u0(a.fit_u0)
        .l2(a.l2.unwrap_or(0.0));
    let n_fit = spec.n_fitted();
    let bound = |flag: &str, s: &Option<String>| -> Result<Vec<f64>, String> {
        let Some(s) = s else { return Ok(Vec::new()) };
        let v = parse::list(flag, s)?;
        if v.len() != n_fit {
            return Err(format!("{flag} has {} values; give {n_fit} (one per fitted value)", v.len()));
        }
        Ok(v)
    };
    let (lower, upper) = (bound("--lower", &a.lower)?, bound("--upper", &a.upper)?);
    let profiled = a.profile.as_deref().map(|name| profile_index(name, &entry.param_names, n_fit)).transpose()?;
    if profiled.is_some() && a.json {
        return Err("--profile prints a table; drop --json to see it".into());
    }
    let mut solver = least_squares_solver(a, lower.clone(), upper.clone())?;
    if std::io::stderr().is_terminal() && !a.json {
        solver = Box::new(WithProgress(solver));
    }
    let solver = solver.as_ref();
    let started = Instant::now();
    let fit = if multiple {
        let defaults = MultipleShooting::default();
        let shooting = MultipleShooting {
            group_size: a.group_size.unwrap_or(defaults.group_size),
            continuity_weight: a.continuity_weight.unwrap_or(defaults.continuity_weight),
        };
        fit_multiple_shooting(&spec, solver, shooting)
    } else if collocation {
        fit_collocation_then_shooting(&spec, solver, kernel, None)
    } else if pem {
        let start = a.gain.unwrap_or(10.0);
        let gain = match a.stages.unwrap_or(5) {
            _ if a.fit_gain => PemGain::Fitted { start },
            1 => PemGain::Fixed(start),
            stages => PemGain::Annealed { start, stages },
        };
        fit_prediction_error(&spec, solver, gain).map(|pem| {
            if a.fit_gain && !a.json {
                out!("fitted gain K = {:.6e}", pem.gain);
            }
            pem.fit
        })
    } else if growing {
        fit_growing_windows(&spec, solver, a.windows.unwrap_or(5))
    } else if minibatch {
        let lr = a.lr.unwrap_or(0.05);
        if !(lr > 0.0 && lr.is_finite()) {
            return Err(format!("--lr {lr}: give a positive step size such as 0.05"));
        }
        let defaults = Minibatch::default();
        let windows = Minibatch {
            window: a.window.unwrap_or(defaults.window),
            batch: a.batch.unwrap_or(defaults.batch),
            iters: a.steps.unwrap_or(defaults.iters),
            lower: solver.lower().to_vec(),
            upper: solver.upper().to_vec(),
            ..defaults
        };
        fit_minibatch_then_shooting(&spec, &mut Adam::new(lr), &windows, solver)
    } else {
        fit_least_squares(&spec, solver)
    }
    .map_err(|e| e.to_string())?;
    if std::io::stderr().is_terminal() && !a.json {
        eprintln!();
    }
    let outcome = Outcome::from_fit(fit, a.fit_u0);
    let seconds = started.elapsed().as_secs_f64();
    let np = problem.p().len();
    if let Some(path) = &a.plot {
        let fitted = problem
            .remake(a.fit_u0.then(|| outcome.x[np..].to_vec()), Some(outcome.x[..np].to_vec()))
            .map_err(|e| e.to_string())?;
        plot_fit(path, &a.model, &fitted, alg, &opts, &data, &observation)?;
    }
    report(a, &outcome, np, seconds, entry.param_names.as_slice());
    if let Some(index) = profiled {
        let fitted = problem
            .remake(a.fit_u0.then(|| outcome.x[np..].to_vec()), Some(outcome.x[..np].to_vec()))
            .map_err(|e| e.to_string())?;
        let at_optimum = FitProblem { problem: &fitted, ..spec.clone() };
        let solver = least_squares_solver(a, lower, upper)?;
        let profile = profile_likelihood(&at_optimum, solver.as_ref(), index, &ProfileOptions::default())
            .map_err(|e| e.to_string())?;
        print_profile(a.profile.as_deref().unwrap_or_default(), &profile);
    }
    Ok(())
}

/// "0,2" into state indices.
fn parse_indices(s: &str) -> Result<Vec<usize>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(|x| x.parse::<usize>().map_err(|_| format!("--observe: '{x}' is not a state index (0, 1, ...)")))
        .collect()
}

/// The index among the fitted values of `--profile`'s parameter (a name or an index).
fn profile_index(name: &str, names: &[&str], n_fit: usize) -> Result<usize, String> {
    let index = match names.iter().position(|n| *n == name) {
        Some(j) => j,
        None => name.parse::<usize>().map_err(|_| {
            format!("--profile '{name}' is neither a parameter of the model ({}) nor an index", names.join(", "))
        })?,
    };
    if index >= n_fit {
        return Err(format!("--profile {index}: give an index below {n_fit} (the fitted values)"));
    }
    Ok(index)
}

/// The profile as a table, the threshold and the interval.
fn print_profile(name: &str, profile: &Profile) {
    out!("profile likelihood of {name} (every other value refitted at each point):");
    out!("  {:>18}  {:>14}  {:>14}", name, "loss", "loss - best");
    for (v, c) in profile.values.iter().zip(&profile.cost) {
        let inside = if *c <= profile.threshold { "" } else { "  outside" };
        out!("  {v:>18.10e}  {c:>14.6e}  {:>14.6e}{inside}", c - profile.best.cost);
    }
    let (lo, hi) = profile.interval;
    let end = |x: f64| if x.is_finite() { format!("{x:.8e}") } else { "unbounded within the grid".into() };
    out!("95% likelihood-ratio interval: [{}, {}] (threshold: loss {:.6e})", end(lo), end(hi), profile.threshold);
}

/// The solver `--optimizer` names, with the bounds and `--max-iters`.
fn least_squares_solver(a: &FitArgs, lower: Vec<f64>, upper: Vec<f64>) -> Result<Box<dyn LeastSquaresSolver>, String> {
    let budget = |default: usize| a.max_iters.unwrap_or(default);
    let scalar = |default: usize| MinimizeOptions::default().max_iters(budget(default) as u64);
    Ok(match a.optimizer.as_str() {
        "lm" => Box::new(LevenbergMarquardt::default().bounds(lower, upper).max_iters(budget(200))),
        "bobyqa" => Box::new(Bobyqa::default().bounds(lower, upper).max_evals(budget(2000))),
        "lbfgs" => Box::new(ScalarLeastSquares::new(Lbfgs::default(), scalar(500)).bounds(lower, upper)),
        "adam" => {
            let lr = a.lr.unwrap_or(0.01);
            if !(lr > 0.0 && lr.is_finite()) {
                return Err(format!("--lr {lr}: give a positive step size such as 0.01"));
            }
            Box::new(ScalarLeastSquares::new(Adam::new(lr), scalar(2000)).bounds(lower, upper))
        }
        "nelder-mead" => Box::new(ScalarLeastSquares::new(NelderMead::default(), scalar(2000)).bounds(lower, upper)),
        other => return Err(format!("unknown --optimizer '{other}'; choose lm, bobyqa, lbfgs, adam or nelder-mead")),
    })
}

/// A solver that shows its progress on the terminal: evaluations and the best cost so far.
struct WithProgress(Box<dyn LeastSquaresSolver>);

impl LeastSquaresSolver for WithProgress {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn lower(&self) -> &[f64] {
        self.0.lower()
    }

    fn upper(&self) -> &[f64] {
        self.0.upper()
    }

    fn with_bounds(&self, lower: Vec<f64>, upper: Vec<f64>) -> Box<dyn LeastSquaresSolver> {
        Box::new(WithProgress(self.0.with_bounds(lower, upper)))
    }

    fn solve(&self, problem: &mut dyn Residuals, p0: &[f64]) -> diffsim::Result<LeastSquaresReport> {
        let mut shown = Shown { inner: problem, evaluations: 0, best: f64::INFINITY };
        self.0.solve(&mut shown, p0)
    }
}

/// Residuals that print a progress line as they are evaluated.
struct Shown<'a> {
    inner: &'a mut dyn Residuals,
    evaluations: usize,
    best: f64,
}

impl Shown<'_> {
    fn show(&mut self, r: &[f64]) {
        self.evaluations += 1;
        self.best = self.best.min(0.5 * r.iter().map(|v| v * v).sum::<f64>());
        eprint!("\r{} evaluations, best loss {:.6e}   ", self.evaluations, self.best);
    }
}

impl Residuals for Shown<'_> {
    fn n_params(&self) -> usize {
        self.inner.n_params()
    }

    fn n_residuals(&self) -> usize {
        self.inner.n_residuals()
    }

    fn residuals(&mut self, p: &[f64], r: &mut [f64]) -> bool {
        let ok = self.inner.residuals(p, r);
        if ok {
            self.show(r);
        }
        ok
    }

    fn jacobian(&mut self, p: &[f64], r: &mut [f64], jac: &mut [f64]) -> bool {
        let ok = self.inner.jacobian(p, r, jac);
        if ok {
            self.show(r);
        }
        ok
    }
}

impl Outcome {
    fn from_fit(fit: LeastSquaresFit, fit_u0: bool) -> Self {
        let converged = fit.converged();
        let mut x = fit.p;
        if fit_u0 {
            x.extend_from_slice(&fit.u0);
        }
        Outcome { x, loss: fit.cost, iters: fit.iters, converged, uncertainty: fit.uncertainty }
    }
}

fn report(a: &FitArgs, o: &Outcome, np: usize, seconds: f64, names: &[&str]) {
    let (p, u0) = o.x.split_at(np);
    let finite_or_null =
        |v: &[f64]| v.iter().map(|x| if x.is_finite() { json!(x) } else { json!(null) }).collect::<Vec<_>>();
    if a.json {
        let mut doc = json!({"model": a.model, "strategy": a.strategy, "optimizer": a.optimizer, "p": p,
                             "loss": o.loss, "iters": o.iters, "seconds": seconds, "converged": o.converged});
        doc["stderr"] = json!(finite_or_null(&o.uncertainty.stderr));
        out!("{doc}");
        return;
    }
    out!("model {}  strategy {}  optimizer {}", a.model, a.strategy, a.optimizer);
    for (j, v) in p.iter().enumerate() {
        let name = names.get(j).copied().unwrap_or("p");
        out!("  {name:>8} = {v:.10e}  +/- {:.3e}", o.uncertainty.stderr[j]);
    }
    if !u0.is_empty() {
        out!("  u0 = {u0:?}");
    }
    out!(
        "loss {:.6e}  {} iterations  {:.3} s  {}",
        o.loss,
        o.iters,
        seconds,
        if o.converged { "converged" } else { "NOT converged" }
    );
    if !o.uncertainty.identifiable {
        out!(
            "warning: the data do not determine every parameter (condition number {:.1e} of the scaled Fisher \
             information); the standard errors marked inf belong to combinations the fit cannot resolve",
            o.uncertainty.condition
        );
    }
    if let Some(p) = &a.plot {
        out!("plot written to {p}");
    }
}

/// Data as markers and the fitted model's observed quantities as lines, one panel per
/// column.
fn plot_fit(
    path: &str,
    model: &str,
    fitted: &Problem<ZooModel>,
    alg: Algorithm,
    opts: &SolveOptions,
    data: &TimeSeries,
    observation: &Observation,
) -> Result<(), String> {
    let (t0, t1) = fitted.tspan();
    let fine: Vec<f64> = (0..=500).map(|i| t0 + (t1 - t0) * i as f64 / 500.0).collect();
    let sol = solve(fitted, alg, &opts.clone().saveat_times(fine)).map_err(|e| e.to_string())?;
    let Observation::States(states) = observation else { return Err("plots show observed states only".into()) };
    let panels = states
        .iter()
        .enumerate()
        .map(|(j, &k)| Panel {
            x_desc: "t".into(),
            y_desc: data.names()[j].clone(),
            curves: vec![
                Curve {
                    label: "data".into(),
                    points: (0..data.t().len())
                        .map(|i| (data.t()[i], data.row(i)[j]))
                        .filter(|(_, y)| !y.is_nan())
                        .collect(),
                    style: Style::Markers,
                },
                Curve {
                    label: "fit".into(),
                    points: (0..sol.len()).map(|i| (sol.t()[i], sol.u(i)[k])).collect(),
                    style: Style::Line,
                },
            ],
            log_y: false,
        })
        .collect::<Vec<_>>();
    plot::panels(path, &format!("{model}: data and fit"), &panels)
}
