//! `diffsim shadow`: the derivative of a long-time average of a chaotic zoo model by
//! shadowing, beside the naive derivative that fails.

use crate::parse;
use crate::plot::{self, Curve, Panel, Style};
use clap::Args;
use diffsim::models::ZooModel;
use diffsim::sensitivity::shadowing::{naive_derivative, shadowing, ShadowingMethod, ShadowingOptions, Window};
use diffsim::sensitivity::RunningCost;
use diffsim::{Problem, Scalar, SolveOptions};
use serde_json::json;
use std::time::Instant;

/// Options of `diffsim shadow`.
#[derive(Args, Debug, Clone)]
pub struct ShadowArgs {
    /// Zoo model (see `diffsim models`).
    #[arg(long, default_value = "lorenz")]
    pub model: String,
    /// lss (forward least-squares shadowing), adjoint-lss (one adjoint solve for every
    /// parameter), or nilss (non-intrusive: the shadowing direction among --unstable
    /// homogeneous tangents).
    #[arg(long, default_value = "lss")]
    pub method: String,
    /// The parameter to differentiate by, by name or index (default: rho for lorenz, else
    /// the first).
    #[arg(long)]
    pub param: Option<String>,
    /// The span T0,T1; the average is over [T0 + spinup, T1] (default 0,210).
    #[arg(long)]
    pub tspan: Option<String>,
    /// Segments of the window (default: one per 0.05 time units).
    #[arg(long)]
    pub segments: Option<usize>,
    /// Time discarded at the start of the span (the transient onto the attractor).
    #[arg(long, default_value_t = 10.0)]
    pub spinup: f64,
    /// The averaged state, by index (default: the last, z for lorenz).
    #[arg(long)]
    pub state: Option<usize>,
    /// Weight of the time dilation in the least-squares objective (lss, adjoint-lss).
    #[arg(long, default_value_t = 10.0)]
    pub alpha: f64,
    /// The number of unstable directions (nilss).
    #[arg(long, default_value_t = 1)]
    pub unstable: usize,
    /// uniform or sin2 (the time average weighted by sin^2 over the window).
    #[arg(long, default_value = "uniform")]
    pub window: String,
    /// Initial state a,b,.. (default: the model's).
    #[arg(long)]
    pub u0: Option<String>,
    /// Parameters a,b,.. (default: the model's).
    #[arg(long)]
    pub p: Option<String>,
    /// Relative and absolute tolerance of the solves.
    #[arg(long, default_value_t = 1e-10)]
    pub rtol: f64,
    #[arg(long, default_value_t = 1e-10)]
    pub atol: f64,
    /// Print exactly {"method", "param", "dJdp", "seconds"}.
    #[arg(long)]
    pub json: bool,
    /// Write a PNG of the naive derivative against the span, beside the shadowing value.
    #[arg(long)]
    pub plot: Option<String>,
}

/// The time average's integrand: one state.
struct State(usize);
impl RunningCost for State {
    fn cost<T: Scalar>(&self, u: &[T], _p: &[T], _t: T) -> T {
        u[self.0]
    }
}

pub fn run(a: &ShadowArgs) -> Result<(), String> {
    let method = match a.method.as_str() {
        "lss" => ShadowingMethod::Lss,
        "adjoint-lss" => ShadowingMethod::AdjointLss,
        "nilss" => ShadowingMethod::Nilss,
        other => return Err(format!("unknown --method '{other}'; choose lss, adjoint-lss or nilss")),
    };
    let entry = diffsim::models::lookup(&a.model).map_err(|e| e.to_string())?;
    let (prob, param, name, state) = problem(a, entry)?;
    let window = match a.window.as_str() {
        "uniform" => Window::Uniform,
        "sin2" => Window::SinSquared,
        other => return Err(format!("unknown --window '{other}'; choose uniform or sin2")),
    };
    let (t0, t1) = prob.tspan();
    let segment = match a.segments {
        Some(0) => return Err("--segments must be at least 1".into()),
        Some(m) => (t1 - t0 - a.spinup) / m as f64,
        None => 0.05,
    };
    let opts = ShadowingOptions {
        spinup: a.spinup,
        segment,
        alpha: a.alpha,
        unstable: a.unstable,
        window,
        solve: SolveOptions::default().rtol(a.rtol).atol(a.atol),
        ..ShadowingOptions::default()
    };
    let start = Instant::now();
    let s = shadowing(&prob, &State(state), method, &opts).map_err(|e| e.to_string())?;
    let seconds = start.elapsed().as_secs_f64();
    let dj = s.dj_dp[param];
    if a.json {
        let m = json!({"method": method.name(), "param": name, "dJdp": dj, "seconds": seconds});
        out!("{m}");
    } else {
        out!(
            "model {}  method {}  window {:?}, {} segments after a spin-up of {}",
            a.model,
            method.name(),
            window,
            s.segments,
            a.spinup
        );
        out!("<u{state}> = {:.6}", s.average);
        out!("d<u{state}>/d{name} = {dj:.6}  ({seconds:.3} s)");
    }
    if let Some(path) = &a.plot {
        plot_naive(path, &prob, &State(state), &opts, (param, &name), dj)?;
    }
    Ok(())
}

/// The problem with the user's overrides, the parameter's index and name, and the state.
fn problem(
    a: &ShadowArgs,
    entry: diffsim::models::ZooEntry,
) -> Result<(Problem<ZooModel>, usize, String, usize), String> {
    let p = a.p.as_deref().map(|s| parse::list("--p", s)).transpose()?.unwrap_or(entry.p);
    let u0 = a.u0.as_deref().map(|s| parse::list("--u0", s)).transpose()?.unwrap_or(entry.u0);
    let tspan = a.tspan.as_deref().map(|s| parse::span("--tspan", s)).transpose()?.unwrap_or((0.0, 210.0));
    let names = entry.param_names;
    let default = if names.contains(&"rho") { "rho" } else { names.first().copied().unwrap_or("0") };
    let wanted = a.param.as_deref().unwrap_or(default);
    let param = names
        .iter()
        .position(|n| *n == wanted)
        .or_else(|| wanted.parse::<usize>().ok().filter(|&i| i < p.len()))
        .ok_or_else(|| {
            format!("--param '{wanted}': choose one of {} or an index below {}", names.join(", "), p.len())
        })?;
    let name = names.get(param).map_or(param.to_string(), |n| n.to_string());
    let n = u0.len();
    let state = a.state.unwrap_or(n.saturating_sub(1));
    if state >= n {
        return Err(format!("--state {state}: the model has {n} states"));
    }
    let prob = Problem::new(entry.model, u0, p, tspan).map_err(|e| e.to_string())?;
    Ok((prob, param, name, state))
}

/// The naive derivative (forward-mode AD through one solve) against the window's length,
/// on a log scale, with the shadowing value as a line.
fn plot_naive(
    path: &str,
    prob: &Problem<ZooModel>,
    objective: &State,
    opts: &ShadowingOptions,
    (param, name): (usize, &str),
    shadow: f64,
) -> Result<(), String> {
    let (t0, t1) = prob.tspan();
    let longest = t1 - t0 - opts.spinup;
    let spans: Vec<f64> =
        [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0].into_iter().filter(|&s| s <= longest).collect();
    let mut naive = Vec::new();
    for &span in &spans {
        let short = Problem::new(*prob.model(), prob.u0().to_vec(), prob.p().to_vec(), (t0, t0 + opts.spinup + span))
            .map_err(|e| e.to_string())?;
        let d = naive_derivative(&short, objective, opts).map_err(|e| e.to_string())?[param];
        naive.push((span, d.abs()));
    }
    let curves = vec![
        Curve {
            label: format!("|naive d<J>/d{name}| (forward AD of one solve)"),
            points: naive,
            style: Style::Markers,
        },
        Curve {
            label: format!("|shadowing| = {:.4}", shadow.abs()),
            points: vec![(spans[0], shadow.abs()), (*spans.last().unwrap_or(&longest), shadow.abs())],
            style: Style::Line,
        },
    ];
    let panel = Panel {
        x_desc: "averaging window (time units)".into(),
        y_desc: format!("|d<J>/d{name}|"),
        curves,
        log_y: true,
    };
    plot::panels(path, "the naive derivative grows with the window; shadowing does not", &[panel])
}
