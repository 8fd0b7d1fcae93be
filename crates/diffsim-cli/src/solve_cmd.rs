//! `diffsim solve`: one solve (or an ensemble) of a zoo model, timed in-process.

use crate::{parse, plot};
use clap::Args;
use diffsim::ensemble::{solve_ensemble, Member};
use diffsim::models::{lookup, ZooModel, ZooVisitor};
use diffsim::Model;
use diffsim::{solve, Algorithm, Problem, RetCode, Solution, SolveOptions, Stats};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Instant;

/// Options of `diffsim solve`.
#[derive(Args, Debug, Clone)]
pub struct SolveArgs {
    /// Zoo model (see `diffsim models`).
    #[arg(long)]
    pub model: String,
    /// tsit5, dp5, vern7, bs3, rosenbrock23, rodas4, rodas5p, bdf, radau5, radau9,
    /// or auto (Tsit5, switching to Rodas5P, Radau9 or BDF by size and tolerance when
    /// stiffness is detected).
    #[arg(long, default_value = "auto")]
    pub alg: String,
    /// Time span T0,T1 (default: the model's).
    #[arg(long, allow_hyphen_values = true)]
    pub tspan: Option<String>,
    /// Initial state a,b,.. (default: the model's).
    #[arg(long, allow_hyphen_values = true)]
    pub u0: Option<String>,
    /// Parameters a,b,.. (default: the model's).
    #[arg(long, allow_hyphen_values = true)]
    pub p: Option<String>,
    /// Relative tolerance.
    #[arg(long, default_value_t = 1e-6, allow_hyphen_values = true)]
    pub rtol: f64,
    /// Absolute tolerance.
    #[arg(long, default_value_t = 1e-6, allow_hyphen_values = true)]
    pub atol: f64,
    /// Save every DT (from T0 to T1 inclusive) instead of every step.
    #[arg(long)]
    pub saveat: Option<f64>,
    /// Save at exactly these times t1,t2,..
    #[arg(long, allow_hyphen_values = true)]
    pub saveat_times: Option<String>,
    /// Times steps must land on exactly t1,t2,.. (added to the model's own).
    #[arg(long, allow_hyphen_values = true)]
    pub tstops: Option<String>,
    /// Solve N times and report the median wall time.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Write a plot of the solution to this PNG file.
    #[arg(long)]
    pub plot: Option<String>,
    /// Write the saved states to this CSV file (header `t,u0,u1,..`), the form `diffsim fit
    /// --data` reads.
    #[arg(long)]
    pub csv: Option<String>,
    /// Solve an ensemble of N members, each parameter multiplied by an independent
    /// log-uniform factor in [0.5, 2] (seeded), in parallel.
    #[arg(long)]
    pub ensemble: Option<usize>,
    /// Seed for --ensemble.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Save the state on both sides of each event's jump (models with events).
    #[arg(long)]
    pub save_events: bool,
}

/// The problem and options an argument set describes.
pub fn setup(a: &SolveArgs) -> Result<(Problem<ZooModel>, Algorithm, SolveOptions), String> {
    let e = lookup(&a.model).map_err(|e| e.to_string())?;
    let alg: Algorithm = a.alg.parse().map_err(|e: diffsim::DiffsimError| e.to_string())?;
    let tspan = a.tspan.as_deref().map(|s| parse::span("--tspan", s)).transpose()?.unwrap_or(e.tspan);
    let u0 = a.u0.as_deref().map(|s| parse::list("--u0", s)).transpose()?.unwrap_or(e.u0.clone());
    let p = a.p.as_deref().map(|s| parse::list("--p", s)).transpose()?.unwrap_or(e.p.clone());
    let prob = Problem::new(e.model, u0, p, tspan).map_err(|e| e.to_string())?;
    let mut opts = SolveOptions::default().rtol(a.rtol).atol(a.atol).save_events(a.save_events);
    if a.saveat.is_some() && a.saveat_times.is_some() {
        return Err("give --saveat or --saveat-times, not both".into());
    }
    if let Some(dt) = a.saveat {
        if !(dt > 0.0 && dt.is_finite()) {
            return Err(format!("--saveat {dt}: give a positive step between saved times"));
        }
        let (t0, t1) = tspan;
        let count = ((t1 - t0).abs() / dt).floor() as usize;
        if count > 10_000_000 {
            return Err(format!("--saveat {dt} would save {count} points; use a larger step"));
        }
        let dir = (t1 - t0).signum();
        // Grid points that round to within 1e-9 dt of t1 (or past it) become t1 itself.
        let mut ts: Vec<f64> =
            (0..=count).map(|i| t0 + dir * dt * i as f64).filter(|&t| (t1 - t) * dir > 1e-9 * dt).collect();
        ts.push(t1);
        opts = opts.saveat_times(ts);
    }
    if let Some(s) = &a.saveat_times {
        let ts = parse::list("--saveat-times", s)?;
        if ts.is_empty() {
            return Err("--saveat-times needs at least one time".into());
        }
        opts = opts.saveat_times(ts);
    }
    if let Some(s) = &a.tstops {
        let stops = parse::list("--tstops", s)?;
        // The library skips stops outside the span (a model's breakpoints may lie beyond a
        // shorter span); a stop typed on the command line outside it is a mistake.
        let (t0, t1) = prob.tspan();
        if let Some(t) = stops.iter().find(|&&t| (t - t0) * (t1 - t0) < 0.0 || (t - t1) * (t0 - t1) < 0.0) {
            return Err(format!("--tstops: {t} lies outside the span {t0},{t1}"));
        }
        opts = opts.tstops(stops);
    }
    if a.repeat == 0 {
        return Err("--repeat must be at least 1".into());
    }
    Ok((prob, alg, opts))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        0.5 * (v[m - 1] + v[m])
    }
}

/// Run `f` `repeat` times; return the last result and the median seconds.
pub fn timed<R>(repeat: usize, mut f: impl FnMut() -> R) -> (R, f64) {
    let mut times = Vec::with_capacity(repeat);
    let mut last = None;
    for _ in 0..repeat {
        let start = Instant::now();
        let r = f();
        times.push(start.elapsed().as_secs_f64());
        last = Some(r);
    }
    (last.expect("repeat >= 1"), median(times))
}

/// The saved states as CSV (`t,u0,u1,..`), in the form `diffsim fit --data` reads.
fn write_csv(path: &str, sol: &Solution) -> Result<(), String> {
    let n = if sol.is_empty() { 0 } else { sol.u(0).len() };
    let values = (0..sol.len()).flat_map(|i| sol.u(i).to_vec()).collect();
    let names = (0..n).map(|k| format!("u{k}")).collect();
    let series = diffsim::fit::TimeSeries::new(sol.t().to_vec(), names, values, None)
        .map_err(|e| format!("--csv: cannot write these saves as data ({e})"))?;
    std::fs::write(path, series.to_csv()).map_err(|e| format!("--csv: could not write {path}: {e}"))
}

pub fn stats_json(s: &Stats) -> Value {
    json!({"nf": s.nf, "njac": s.njac, "nlu": s.nlu, "nsteps": s.nsteps, "naccept": s.naccept, "nreject": s.nreject})
}

pub fn run(a: &SolveArgs) -> Result<(), String> {
    let (prob, alg, opts) = setup(a)?;
    prob.model().visit(Run { a, prob: &prob, alg, opts: &opts })
}

/// Runs the command on the concrete model type (no enum dispatch inside the solver).
struct Run<'a> {
    a: &'a SolveArgs,
    prob: &'a Problem<ZooModel>,
    alg: Algorithm,
    opts: &'a SolveOptions,
}

impl ZooVisitor for Run<'_> {
    type Output = Result<(), String>;
    fn visit<M: Model + Clone + 'static>(self, model: M) -> Self::Output {
        let prob = Problem::new(model, self.prob.u0().to_vec(), self.prob.p().to_vec(), self.prob.tspan())
            .map_err(|e| e.to_string())?;
        run_concrete(self.a, &prob, self.alg, self.opts)
    }
}

fn run_concrete<M: Model + Clone>(
    a: &SolveArgs,
    prob: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
) -> Result<(), String> {
    if let Some(n) = a.ensemble {
        return run_ensemble(a, prob, alg, opts, n);
    }
    let (sol, secs) = timed(a.repeat, || solve(prob, alg, opts));
    let sol = sol.map_err(|e| e.to_string())?;
    if let Some(path) = &a.plot {
        plot::solution(path, &a.model, &sol)?;
    }
    if let Some(path) = &a.csv {
        write_csv(path, &sol)?;
    }
    if a.json {
        let u: Vec<&[f64]> = sol.states().collect();
        let mut out = json!({
            "model": a.model, "alg": alg.name(), "retcode": sol.retcode().as_str(),
            "t": sol.t(), "u": u, "stats": stats_json(&sol.stats()), "seconds_median": secs,
        });
        if !prob.model().events().is_empty() {
            let events: Vec<_> = sol.events().iter().map(|e| json!({"t": e.t, "index": e.index})).collect();
            out["events"] = json!(events);
        }
        out!("{out}");
    } else {
        print_summary(a, alg, &sol, secs);
    }
    // A terminating event ends the solve where the model asked.
    if sol.retcode().is_success() || sol.retcode() == RetCode::EventTerminated {
        Ok(())
    } else {
        Err(format!("the solve ended early: {} at t = {}", sol.retcode().as_str(), sol.t_reached()))
    }
}

fn print_summary(a: &SolveArgs, alg: Algorithm, sol: &Solution, secs: f64) {
    out!("model {}  alg {}  (last method used: {})", a.model, alg.name(), sol.alg().name());
    out!("retcode {}  reached t = {}", sol.retcode().as_str(), sol.t_reached());
    let s = &sol.stats();
    out!(
        "steps {} accepted, {} rejected; f evaluations {} (and {} on dual numbers in AD Jacobians); Jacobians {}; LU {}",
        s.naccept,
        s.nreject,
        s.nf,
        s.nf_ad,
        s.njac,
        s.nlu
    );
    out!("saved {} points; median wall time {:.3} ms over {} solve(s)", sol.len(), secs * 1e3, a.repeat);
    if let (Some(first), Some(last)) = (sol.events().first(), sol.events().last()) {
        out!("events: {} fired, the first at t = {}, the last at t = {}", sol.events().len(), first.t, last.t);
    }
    if let Some(u) = sol.last() {
        let shown: Vec<String> = u.iter().take(8).map(|x| format!("{x:.10e}")).collect();
        let more = if u.len() > 8 { format!(" ... ({} states)", u.len()) } else { String::new() };
        out!("u(t = {}) = [{}]{}", sol.t()[sol.len() - 1], shown.join(", "), more);
    }
    if let Some(p) = &a.plot {
        out!("plot written to {p}");
    }
}

fn run_ensemble<M: Model + Clone>(
    a: &SolveArgs,
    prob: &Problem<M>,
    alg: Algorithm,
    opts: &SolveOptions,
    n: usize,
) -> Result<(), String> {
    if n == 0 {
        return Err("--ensemble must be at least 1".into());
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let members: Vec<Member> = (0..n)
        .map(|_| {
            let p = prob.p().iter().map(|&x| x * 2f64.powf(rng.random_range(-1.0..=1.0))).collect();
            Member { u0: None, p: Some(p) }
        })
        .collect();
    // Ensembles keep only what they are asked to save: by default the end point.
    let mut opts = opts.clone();
    if matches!(opts.saveat, diffsim::SaveAt::EveryStep) {
        opts = opts.saveat_times(vec![prob.tspan().1]);
    }
    let (sols, secs) = timed(a.repeat, || solve_ensemble(prob, alg, &opts, &members));
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let mut total = Stats::default();
    for s in &sols {
        match s {
            Ok(s) => {
                *counts.entry(s.retcode().as_str()).or_default() += 1;
                total += s.stats();
            }
            Err(_) => *counts.entry("InputError").or_default() += 1,
        }
    }
    if a.json {
        out!(
            "{}",
            json!({"model": a.model, "alg": alg.name(), "ensemble": n, "retcodes": counts,
                   "stats": stats_json(&total), "seconds_median": secs})
        );
    } else {
        out!("ensemble of {n} {} solves with {}: {:?}", a.model, alg.name(), counts);
        out!("total steps {} (rejected {}), median wall time {:.3} ms", total.naccept, total.nreject, secs * 1e3);
    }
    let ok = counts.get(RetCode::Success.as_str()).copied().unwrap_or(0);
    if ok == n {
        Ok(())
    } else {
        Err(format!("{} of {n} members did not succeed", n - ok))
    }
}
