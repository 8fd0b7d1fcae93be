//! `diffsim grad`: the loss of a zoo-model solve and its gradient.

use crate::solve_cmd::{self, stats_json, timed, SolveArgs};
use clap::Args;
use diffsim::models::{ZooModel, ZooVisitor};
use diffsim::sensitivity::{finite_difference_gradient, gradient, GradientCheck, Loss, SensAlg, VjpMethod};
use diffsim::{Algorithm, Model, Problem, SaveAt, SolveOptions};
use serde_json::json;

/// Options of `diffsim grad`.
#[derive(Args, Debug, Clone)]
pub struct GradArgs {
    #[command(flatten)]
    pub solve: SolveArgs,
    /// sum (of every saved value) or sumsq (half the sum of their squares).
    #[arg(long, default_value = "sum")]
    pub loss: String,
    /// forward, forward-ad, forward-ad-value-norm, backsolve, interpolating, checkpointing,
    /// quadrature, discrete, discrete-checkpointing, or auto (explicit methods: forward-ad for at most 8 parameters
    /// plus states, else discrete; stiff methods: interpolating, discrete from 32 states; never the
    /// discrete adjoint for a model that switches on its state; never backsolve).
    #[arg(long, default_value = "auto")]
    pub sensealg: String,
    /// How adjoints get vector-Jacobian products: model (its own), forward (forward-mode
    /// AD), tape (reverse mode, recorded per call), compiled-tape (recorded once, replayed;
    /// re-recorded when a branch flips), finite, or auto (the model's own if it has one,
    /// else compiled-tape above 16 states plus parameters, else forward). Forward-mode
    /// methods use none.
    #[arg(long)]
    pub vjp: Option<String>,
    /// Also print the gradient beside central differences of tight solves (Vern7, or
    /// Rodas5P for stiff methods, at rtol = atol = 1e-12 or the given ones where tighter),
    /// per component with the relative error, and the largest. Reports only: the exit status does not depend on it.
    #[arg(long)]
    pub check: bool,
}

fn parse(a: &GradArgs) -> Result<(Loss, SensAlg), String> {
    let loss = match a.loss.as_str() {
        "sum" => Loss::Sum,
        "sumsq" => Loss::SumSq,
        other => return Err(format!("unknown loss '{other}'; choose sum or sumsq")),
    };
    let vjp_name = a.vjp.as_deref().unwrap_or("auto");
    let vjp = VjpMethod::from_name(vjp_name).ok_or_else(|| {
        format!("unknown vjp '{vjp_name}'; choose auto, model, forward, tape, compiled-tape or finite")
    })?;
    let sensealg = SensAlg::from_name(&a.sensealg, vjp).map_err(|e| e.to_string())?;
    if a.solve.ensemble.is_some() || a.solve.plot.is_some() || a.solve.csv.is_some() {
        return Err("grad takes none of --ensemble, --plot and --csv".into());
    }
    Ok((loss, sensealg))
}

pub fn run(a: &GradArgs) -> Result<(), String> {
    let (loss, sensealg) = parse(a)?;
    let mut solve_args = a.solve.clone();
    if solve_args.alg == "auto" {
        // Gradients need one fixed method: Rodas5P for a stiff model, else Tsit5.
        let entry = diffsim::models::lookup(&solve_args.model).map_err(|e| e.to_string())?;
        let alg = if entry.stiff { diffsim::Algorithm::Rodas5P } else { diffsim::Algorithm::Tsit5 };
        solve_args.alg = alg.name().into();
    }
    let (prob, alg, mut opts) = solve_cmd::setup(&solve_args)?;
    if matches!(opts.saveat, SaveAt::EveryStep) {
        // A loss needs fixed data times: default to 11 points across the span.
        let (t0, t1) = prob.tspan();
        opts = opts.saveat_times((0..=10).map(|i| t0 + (t1 - t0) * i as f64 / 10.0).collect());
    }
    // Through the `ZooModel` enum itself, not each concrete model (as `solve` does): every
    // model type instantiates the whole gradient stack, and eight of them made this binary
    // the slowest build in CI, for a match per right-hand side at run time.
    Run { a, prob: &prob, alg, opts: &opts, loss, sensealg }.visit(*prob.model())
}

struct Run<'a> {
    a: &'a GradArgs,
    prob: &'a Problem<ZooModel>,
    alg: Algorithm,
    opts: &'a SolveOptions,
    loss: Loss,
    sensealg: SensAlg,
}

impl ZooVisitor for Run<'_> {
    type Output = Result<(), String>;
    fn visit<M: Model + Clone + 'static>(self, model: M) -> Self::Output {
        let prob = Problem::new(model, self.prob.u0().to_vec(), self.prob.p().to_vec(), self.prob.tspan())
            .map_err(|e| e.to_string())?;
        let (g, secs) = timed(self.a.solve.repeat, || gradient(&prob, self.alg, self.opts, &self.loss, self.sensealg));
        let g = g.map_err(|e| e.to_string())?;
        // What the gradient cannot see goes to stderr, so the JSON on stdout keeps its keys.
        for w in &g.warnings {
            eprintln!("warning: {w}");
        }
        let sensealg = g.sensealg;
        let vjp = match sensealg.vjp() {
            Some(v) => v.resolve(prob.model()).map_err(|e| e.to_string())?.name(),
            None => "none",
        };
        let check = if self.a.check {
            let fd = finite_difference_gradient(&prob, self.alg, self.opts, &self.loss).map_err(|e| e.to_string())?;
            Some(GradientCheck::new(g.clone(), fd).map_err(|e| e.to_string())?)
        } else {
            None
        };
        if self.a.solve.json {
            let mut doc = json!({"loss": g.loss, "grad_p": g.dp, "grad_u0": g.du0, "sensealg": sensealg.name(),
                                 "vjp": vjp, "stats": stats_json(&g.stats), "seconds_median": secs});
            if let Some(c) = &check {
                doc["check"] = json!({"fd": c.fd, "max_rel_err": c.max_rel_err, "rel_err": c.rel_err});
            }
            out!("{doc}");
        } else {
            out!("model {}  alg {}  sensealg {}", self.a.solve.model, self.alg.name(), sensealg.name());
            out!("loss {:.12e}", g.loss);
            out!("dL/dp  = {:?}", g.dp);
            out!("dL/du0 = {:?}", g.du0);
            out!(
                "{} steps, {} f evaluations; median {:.3} ms over {} run(s)",
                g.stats.naccept,
                g.stats.nf,
                secs * 1e3,
                self.a.solve.repeat
            );
            if let Some(c) = &check {
                out!("check against central differences of tight solves:\n{c}");
            }
        }
        Ok(())
    }
}
