//! `diffsim train`: train one of the example universal differential equations.

use crate::plot::{self, Curve, Panel, Style};
use clap::Args;
use diffsim::fit::{Physics, Ude};
use diffsim::optim::{Control, MinimizeOptions, MinimizeReport, Progress};
use diffsim::sensitivity::{SensAlg, VjpMethod};
use diffsim::{solve, Algorithm, Problem, SolveOptions};
use diffsim_examples::{
    self as examples, discover_lv, lv_term_errors, Example, LvDiscovery, LvRecipe, LvTruth, Worked, LV_PARAMS,
};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Options of `diffsim train`.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// spiral (neural ODE, 252 parameters) or lv-ude (Lotka-Volterra with a network for the
    /// interaction terms).
    #[arg(long)]
    pub example: String,
    /// Iterations of the main run: spiral, Adam iterations (default 300); lv-ude, Adam then
    /// L-BFGS, half each (default 2000), after 3 x 300 growing-interval Adam iterations.
    #[arg(long)]
    pub iters: Option<u64>,
    /// lv-ude only: network initialisations trained side by side (growing intervals, Adam,
    /// a short L-BFGS run); the best is refined by L-BFGS.
    #[arg(long, default_value_t = 4)]
    pub starts: u64,
    /// spiral only: L-BFGS iterations after Adam (default 0).
    #[arg(long, default_value_t = 0)]
    pub lbfgs: u64,
    /// Any of grad's sensealgs (adjoints with the model's own VJP): auto, discrete,
    /// interpolating, checkpointing, quadrature, backsolve, forward-ad, forward.
    #[arg(long, default_value = "auto")]
    pub sensealg: String,
    /// Relative tolerance (default: spiral 1e-7, lv-ude 1e-6).
    #[arg(long)]
    pub rtol: Option<f64>,
    /// Absolute tolerance (default: spiral 1e-9, lv-ude 1e-6).
    #[arg(long)]
    pub atol: Option<f64>,
    /// Seed of the initial parameters (and of lv-ude's noise).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Directory for plots, parameters and the checkpoint.
    #[arg(long, default_value = "out")]
    pub out: String,
    /// Resume from a checkpoint written by an earlier run (DIR/<example>-checkpoint.json).
    #[arg(long)]
    pub resume: Option<String>,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    pub json: bool,
}

/// What a training run produced, for the report and the demo.
pub struct Outcome {
    pub initial_loss: f64,
    pub report: MinimizeReport,
    pub seconds: f64,
    pub seconds_per_grad: f64,
    pub sensealg: &'static str,
    pub plots: Vec<PathBuf>,
    pub params_file: PathBuf,
    /// lv-ude: what the network learned and the equations recovered from it.
    pub lv: Option<LvOutcome>,
}

/// lv-ude's learned terms and the equations recovered from them.
pub struct LvOutcome {
    /// Largest error and relative RMS error of the network's terms along the data.
    pub term_errors: (f64, f64),
    /// Relative RMS error of the trained UDE's prediction on (5, 8], beyond the data.
    pub extrapolation: f64,
    /// The recovered equations, one line per state.
    pub equations: [String; 2],
    /// Relative RMS error of the recovered equations' prediction on (5, 8].
    pub equations_extrapolation: f64,
    /// How many sparse models were refitted and compared.
    pub compared: usize,
}

fn parse_sensealg(s: &str) -> Result<SensAlg, String> {
    SensAlg::from_name(s, VjpMethod::Auto).map_err(|e| e.to_string())
}

pub fn run(a: &TrainArgs) -> Result<(), String> {
    let outcome = train(a)?;
    let iters = outcome.report.iterations;
    if a.json {
        out!(
            "{}",
            json!({"example": a.example, "iters": iters, "final_loss": outcome.report.best_loss,
                   "initial_loss": outcome.initial_loss, "seconds": outcome.seconds,
                   "grad_evals": outcome.report.evaluations, "seconds_per_grad": outcome.seconds_per_grad,
                   "sensealg": outcome.sensealg})
        );
    } else {
        out!(
            "{}: {} iterations in {:.2} s ({} loss-and-gradient evaluations, {:.3} ms each)",
            a.example,
            iters,
            outcome.seconds,
            outcome.report.evaluations,
            outcome.seconds_per_grad * 1e3
        );
        out!("loss {:.6} -> {:.6} (sensealg {})", outcome.initial_loss, outcome.report.best_loss, outcome.sensealg);
        if let Some(lv) = &outcome.lv {
            let (worst, rel) = lv.term_errors;
            out!(
                "learned interaction terms: relative RMS error {rel:.3} (largest {worst:.3}) on the data; \
                 extrapolation to t = 8: relative RMS error {:.3}",
                lv.extrapolation
            );
            out!(
                "recovered equations: {}; {} (extrapolation to t = 8: relative RMS error {:.3})",
                lv.equations[0],
                lv.equations[1],
                lv.equations_extrapolation
            );
        }
        out!("parameters: {}", outcome.params_file.display());
        if outcome.lv.is_some() {
            out!("recovered equations: {}", outcome.params_file.with_file_name("lv-ude-equations.json").display());
        }
        for p in &outcome.plots {
            out!("plot: {}", p.display());
        }
    }
    Ok(())
}

/// Wall time between checkpoint writes during training.
const CHECKPOINT_SECONDS: f64 = 2.0;

/// Train the chosen example; shared with `diffsim demo`.
pub fn train(a: &TrainArgs) -> Result<Outcome, String> {
    let sensealg = parse_sensealg(&a.sensealg)?;
    let out = PathBuf::from(&a.out);
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let check_tol = |name: &str, v: Option<f64>| match v {
        Some(x) if !(x > 0.0 && x.is_finite()) => Err(format!("--{name} must be positive, got {x}")),
        _ => Ok(()),
    };
    check_tol("rtol", a.rtol)?;
    check_tol("atol", a.atol)?;
    let checkpoint = out.join(format!("{}-checkpoint.json", a.example));
    // By time, not iterations: an iteration of a small model is far cheaper than a durable
    // write, so a fixed count either writes too often or loses too much on slow models.
    let options = MinimizeOptions::default().checkpoint_interval(&checkpoint, CHECKPOINT_SECONDS);
    let resume = a.resume.as_deref().map(Path::new);
    let mut bar = ProgressBar::new(!a.json && std::io::stderr().is_terminal());
    match a.example.as_str() {
        "spiral" => {
            let mut ex =
                examples::spiral(a.seed, a.rtol.unwrap_or(1e-7), a.atol.unwrap_or(1e-9)).map_err(|e| e.to_string())?;
            ex.fit.sensealg = sensealg;
            let iters = a.iters.unwrap_or(300);
            bar.total = iters + a.lbfgs;
            let initial_loss = ex.loss(&ex.p0.clone());
            let start = Instant::now();
            let report = examples::train_spiral(&mut ex, iters, a.lbfgs, &options, resume, &mut |p| bar.tick(p))
                .map_err(|e| e.to_string())?;
            bar.finish();
            let seconds = start.elapsed().as_secs_f64();
            finish(a, &mut ex, initial_loss, report, seconds, &out, None)
        }
        "lv-ude" => {
            let mut ex =
                examples::lv_ude(a.seed, a.rtol.unwrap_or(1e-6), a.atol.unwrap_or(1e-6)).map_err(|e| e.to_string())?;
            ex.fit.sensealg = sensealg;
            let iters = a.iters.unwrap_or(2000);
            let recipe = LvRecipe {
                starts: a.starts,
                adam_iters: iters.div_ceil(2),
                lbfgs_iters: iters / 2,
                ..LvRecipe::default()
            };
            // The bar follows the refinement: the starts run on all cores without it.
            bar.total = recipe.lbfgs_iters;
            if resume.is_none() {
                bar.note(&format!(
                    "training {} starts side by side (growing windows, Adam, L-BFGS) ...",
                    recipe.starts
                ));
            }
            let initial_loss = ex.loss(&ex.p0.clone());
            let start = Instant::now();
            let report = examples::train_lv_ude(&mut ex, &recipe, &options, resume, &mut |p| bar.tick(p))
                .map_err(|e| e.to_string())?;
            bar.finish();
            let seconds = start.elapsed().as_secs_f64();
            let terms = lv_term_errors(&ex, &report.best_x);
            let found = discover_lv(&mut ex, &report.best_x).map_err(|e| format!("recovering equations: {e}"))?;
            finish(a, &mut ex, initial_loss, report, seconds, &out, Some((terms, found)))
        }
        other => Err(format!("unknown example '{other}'; choose spiral or lv-ude")),
    }
}

/// Time the gradient, write parameters and plots, and for lv-ude the report on what the
/// network learned and the equations recovered from it.
fn finish<P: Physics + Clone>(
    a: &TrainArgs,
    ex: &mut Example<Ude<P>>,
    initial_loss: f64,
    report: MinimizeReport,
    seconds: f64,
    out: &Path,
    lv_in: Option<((f64, f64), LvDiscovery)>,
) -> Result<Outcome, String>
where
    Example<Ude<P>>: Worked,
{
    let p = report.best_x.clone();
    let seconds_per_grad = median_gradient_seconds(ex, &p);
    let sensealg = ex.sensealg_name().map_err(|e| e.to_string())?;
    let params_file = out.join(format!("{}-params.json", a.example));
    let body = json!({"example": a.example, "seed": a.seed, "loss": report.best_loss, "params": p}).to_string();
    write_atomic(&params_file, &body)?;

    // The trained model on a fine grid (for lv-ude, extrapolated past the data), with the
    // truth and the recovered equations' own prediction for lv-ude.
    let t_end = ex.times.last().copied().unwrap_or(1.0);
    let horizon = if lv_in.is_some() { 8.0 } else { t_end };
    let fine: Vec<f64> = (0..=400).map(|i| horizon * i as f64 / 400.0).collect();
    let opts = SolveOptions::default().rtol(1e-8).atol(1e-8).saveat_times(fine.clone());
    let pred = ex.predict(&p, (0.0, horizon), &opts).map_err(|e| e.to_string())?.into_u_flat();
    let lv = match &lv_in {
        Some((_, found)) => Some(LvCurves {
            truth: lv_truth(ex.fit.problem.u0(), &fine)?,
            recovered: found.predict(&fine).map_err(|e| e.to_string())?,
        }),
        None => None,
    };
    let curves = Curves { fine: &fine, pred: &pred, lv: lv.as_ref() };
    let mut plots = vec![plot_fit(a, ex, &curves, out)?, plot_loss(a, &report, out)?];
    let lv = match (lv_in, &lv) {
        (Some((terms, found)), Some(lv)) => {
            Some(lv_report(a, ex, &p, &curves, lv, t_end, terms, &found, out, &mut plots)?)
        }
        _ => None,
    };
    Ok(Outcome { initial_loss, report, seconds, seconds_per_grad, sensealg, plots, params_file, lv })
}

/// Median seconds of one loss-and-gradient at `p` (21 runs).
fn median_gradient_seconds<E: Worked>(ex: &mut E, p: &[f64]) -> f64 {
    let mut grad = vec![0.0; p.len()];
    let mut times: Vec<f64> = (0..21)
        .map(|_| {
            let t = Instant::now();
            ex.loss_and_gradient(p, &mut grad);
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// lv-ude's extra curves at the fine times: the truth and the recovered equations' solution.
struct LvCurves {
    truth: Vec<f64>,
    recovered: Vec<f64>,
}

/// The solutions the plots draw, flat with 2 states, at `fine`.
struct Curves<'a> {
    fine: &'a [f64],
    pred: &'a [f64],
    lv: Option<&'a LvCurves>,
}

impl Curves<'_> {
    /// State `k` of a flat 2-state solution at the fine times.
    fn state(&self, values: &[f64], k: usize) -> Vec<(f64, f64)> {
        self.fine.iter().zip(values.chunks(2)).map(|(&t, u)| (t, u[k])).collect()
    }
}

/// The data, the trained model and (lv-ude) the truth and the recovered equations, one
/// panel per state.
fn plot_fit<P: Physics>(a: &TrainArgs, ex: &Example<Ude<P>>, c: &Curves, out: &Path) -> Result<PathBuf, String> {
    let n = 2;
    let mut panels = Vec::new();
    for k in 0..n {
        let mut curves = vec![
            Curve {
                label: format!("data u[{k}]"),
                points: ex.times.iter().zip(ex.data.chunks(n)).map(|(&t, u)| (t, u[k])).collect(),
                style: Style::Markers,
            },
            Curve { label: "trained model".into(), points: c.state(c.pred, k), style: Style::Line },
        ];
        if let Some(lv) = c.lv {
            // The truth first and wide, so the recovered equations show on top of it.
            curves.insert(0, Curve { label: "truth".into(), points: c.state(&lv.truth, k), style: Style::Wide });
            curves.push(Curve {
                label: "recovered equations".into(),
                points: c.state(&lv.recovered, k),
                style: Style::Line,
            });
        }
        panels.push(Panel { x_desc: "t".into(), y_desc: format!("u[{k}]"), curves, log_y: false });
    }
    let fit_plot = out.join(format!("{}-fit.png", a.example));
    let title = if c.lv.is_some() {
        "lv-ude: data (t <= 5), trained UDE, recovered equations and truth (extrapolated to t = 8)"
    } else {
        "spiral: data and trained neural ODE"
    };
    plot::panels(&fit_plot.to_string_lossy(), title, &panels)?;
    Ok(fit_plot)
}

/// The training loss per iteration, on a log scale.
fn plot_loss(a: &TrainArgs, report: &MinimizeReport, out: &Path) -> Result<PathBuf, String> {
    let loss_plot = out.join(format!("{}-loss.png", a.example));
    let history: Vec<(f64, f64)> = report.history.iter().enumerate().map(|(i, &l)| ((i + 1) as f64, l)).collect();
    plot::panels(
        &loss_plot.to_string_lossy(),
        &format!("{}: training loss", a.example),
        &[Panel {
            x_desc: "iteration".into(),
            y_desc: "loss".into(),
            curves: vec![Curve { label: "loss".into(), points: history, style: Style::Line }],
            log_y: true,
        }],
    )?;
    Ok(loss_plot)
}

/// lv-ude's report: the learned, recovered and true interaction terms along the true
/// trajectory (a plot), the extrapolation errors, and the recovered equations (a JSON file).
#[allow(clippy::too_many_arguments)]
fn lv_report<P: Physics>(
    a: &TrainArgs,
    ex: &Example<Ude<P>>,
    p: &[f64],
    c: &Curves,
    lv: &LvCurves,
    t_end: f64,
    term_errors: (f64, f64),
    found: &LvDiscovery,
    out: &Path,
    plots: &mut Vec<PathBuf>,
) -> Result<LvOutcome, String> {
    let (beta, gamma) = (LV_PARAMS[1], LV_PARAMS[2]);
    let mut learned = [Vec::new(), Vec::new()];
    let mut exact = [Vec::new(), Vec::new()];
    let mut recovered = [Vec::new(), Vec::new()];
    let mut nn = [0.0; 2];
    for (&t, u) in c.fine.iter().zip(lv.truth.chunks(2)) {
        ex.fit.problem.model().network_term(u, p, &mut nn);
        let eq = found.terms_at(u);
        for k in 0..2 {
            learned[k].push((t, nn[k]));
            recovered[k].push((t, eq[k]));
        }
        exact[0].push((t, -beta * u[0] * u[1]));
        exact[1].push((t, gamma * u[0] * u[1]));
    }
    let names = ["-beta x y", "gamma x y"];
    let panels: Vec<Panel> = (0..2)
        .map(|k| Panel {
            x_desc: "t (data on [0, 5])".into(),
            y_desc: names[k].into(),
            curves: vec![
                Curve { label: format!("true {}", names[k]), points: exact[k].clone(), style: Style::Wide },
                Curve { label: "learned by the network".into(), points: learned[k].clone(), style: Style::Line },
                Curve { label: "recovered equation".into(), points: recovered[k].clone(), style: Style::Line },
            ],
            log_y: false,
        })
        .collect();
    let terms_plot = out.join("lv-ude-terms.png");
    plot::panels(
        &terms_plot.to_string_lossy(),
        "lv-ude: learned, recovered and true interaction terms along the true trajectory",
        &panels,
    )?;
    plots.push(terms_plot);
    let extrapolation = relative_rms_after(t_end, c.fine, c.pred, &lv.truth);
    let equations_extrapolation = relative_rms_after(t_end, c.fine, &lv.recovered, &lv.truth);
    // The recovered equations are a result worth keeping, like the parameters.
    let model = found.fit.problem.model();
    let vars = ["x", "y"];
    let terms_json: Vec<_> = model
        .terms()
        .iter()
        .zip(&found.coefficients)
        .map(|(&(i, j), &c)| json!({"state": vars[i], "term": model.library().name(j, &vars), "coefficient": c}))
        .collect();
    let body = json!({"example": a.example, "seed": a.seed, "equations": found.equations(),
                      "terms": terms_json, "loss": found.loss,
                      "extrapolation_relative_rms": equations_extrapolation})
    .to_string();
    write_atomic(&out.join("lv-ude-equations.json"), &body)?;
    Ok(LvOutcome {
        term_errors,
        extrapolation,
        equations: found.equations(),
        equations_extrapolation,
        compared: found.compared,
    })
}

/// Relative RMS error of `pred` against `truth` (both flat, 2 states, at `times`) over the
/// times after `t_end`. A prediction cut short (a failed solve) counts as NaN.
fn relative_rms_after(t_end: f64, times: &[f64], pred: &[f64], truth: &[f64]) -> f64 {
    if pred.len() != truth.len() {
        return f64::NAN;
    }
    let (mut se, mut st) = (0.0, 0.0);
    for ((&t, u), v) in times.iter().zip(pred.chunks(2)).zip(truth.chunks(2)) {
        if t > t_end {
            for k in 0..2 {
                se += (u[k] - v[k]).powi(2);
                st += v[k].powi(2);
            }
        }
    }
    (se / st).sqrt()
}

fn lv_truth(u0: &[f64], times: &[f64]) -> Result<Vec<f64>, String> {
    let span = (times[0], times[times.len() - 1]);
    let prob = Problem::new(LvTruth, u0.to_vec(), LV_PARAMS.to_vec(), span).map_err(|e| e.to_string())?;
    let opts = SolveOptions::default().rtol(1e-10).atol(1e-10).saveat_times(times.to_vec());
    Ok(solve(&prob, Algorithm::Vern7, &opts).map_err(|e| e.to_string())?.into_u_flat())
}

/// Write through a temporary file and a rename, so a crash never leaves half a file.
fn write_atomic(path: &Path, body: &str) -> Result<(), String> {
    let tmp = path.with_extension("json.tmp");
    let err = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(body.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// A one-line progress bar on stderr, drawn only on a terminal.
struct ProgressBar {
    enabled: bool,
    total: u64,
}

impl ProgressBar {
    fn new(enabled: bool) -> Self {
        Self { enabled, total: 0 }
    }
    fn tick(&mut self, p: &Progress<'_>) -> Control {
        if self.enabled && (p.iteration % 10 == 0 || p.iteration == self.total) {
            let width = 30;
            let done = (p.iteration.min(self.total) * width / self.total.max(1)) as usize;
            eprint!(
                "\r[{}{}] {:5}/{} {:<6} loss {:.6e}  ",
                "#".repeat(done),
                ".".repeat(width as usize - done),
                p.iteration,
                self.total,
                p.optimizer,
                p.loss
            );
        }
        Control::Continue
    }
    /// A line shown until the first tick (for work done before the bar's iterations).
    fn note(&self, text: &str) {
        if self.enabled {
            eprint!("\r{text}");
        }
    }
    fn finish(&self) {
        if self.enabled {
            eprintln!();
        }
    }
}
