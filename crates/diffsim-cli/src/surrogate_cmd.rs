//! `diffsim surrogate`: train a continuous-time echo state network surrogate of a stiff zoo
//! model over a box of parameters, and test it at held-out ones against the stiff solver.

use crate::plot::{self, Curve, Panel, Style};
use crate::solve_cmd::timed;
use clap::Args;
use diffsim::models::{Robertson, ZooModel};
use diffsim::surrogate::{Ctesn, CtesnOptions};
use diffsim::{solve, Algorithm, Problem, SolveOptions};
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::time::Instant;

/// Options of `diffsim surrogate`.
#[derive(Args, Debug, Clone)]
pub struct SurrogateArgs {
    /// The worked example: robertson (rate constants within a factor of two of 0.04, 3e7,
    /// 1e4, log-uniform; 41 log-spaced times from 1e-5 to 1e5).
    #[arg(long, default_value = "robertson")]
    pub example: String,
    /// Training samples (one stiff solve each).
    #[arg(long, default_value_t = 40)]
    pub train: usize,
    /// Held-out samples the surrogate is tested on.
    #[arg(long, default_value_t = 10)]
    pub test: usize,
    /// Reservoir size.
    #[arg(long, default_value_t = 100)]
    pub reservoir: usize,
    /// Seed of the samples and the reservoir.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print exactly {"example", "train", "test", "max_rel_error", "median_rel_error",
    /// "seconds_train", "speedup"}.
    #[arg(long)]
    pub json: bool,
    /// The plot of surrogate against solver at held-out parameters.
    #[arg(long, default_value = "surrogate.png")]
    pub plot: String,
}

const NOMINAL: [f64; 3] = [0.04, 3e7, 1e4];

pub fn run(a: &SurrogateArgs) -> Result<(), String> {
    if a.example != "robertson" {
        return Err(format!("unknown --example '{}'; the surrogate example is robertson", a.example));
    }
    if a.train < 5 || a.test == 0 {
        return Err("--train needs at least 5 samples and --test at least 1".into());
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let mut draw = |count: usize| -> Vec<Vec<f64>> {
        (0..count).map(|_| NOMINAL.iter().map(|k| k * 2f64.powf(rng.random_range(-1.0..1.0))).collect()).collect()
    };
    let (train, test) = (draw(a.train), draw(a.test));
    let problem = |p: Vec<f64>| Problem::new(ZooModel::from(Robertson), vec![1.0, 0.0, 0.0], p, (0.0, 1e5));
    let prob = problem(NOMINAL.to_vec()).map_err(|e| e.to_string())?;
    let times: Vec<f64> = (0..=40).map(|i| 10f64.powf(-5.0 + 0.25 * i as f64)).collect();
    let opts = SolveOptions::default().rtol(1e-8).atol(1e-12);
    let c = CtesnOptions { reservoir: a.reservoir, seed: a.seed, ..CtesnOptions::default() };

    let start = Instant::now();
    let surrogate = Ctesn::train(&prob, Algorithm::Rodas5P, &opts, &times, &train, &c).map_err(|e| e.to_string())?;
    let seconds_train = start.elapsed().as_secs_f64();

    // Held out: each species' error relative to its largest value at that parameter.
    let saved = opts.clone().saveat_times(times.clone());
    let mut errors = Vec::new();
    let mut shown = Vec::new();
    let (mut t_solve, mut t_predict) = (Vec::new(), Vec::new());
    for p in &test {
        let held = problem(p.clone()).map_err(|e| e.to_string())?;
        let (sol, ts) = timed(5, || solve(&held, Algorithm::Rodas5P, &saved));
        let sol = sol.map_err(|e| e.to_string())?;
        let (got, tp) = timed(50, || surrogate.predict(p));
        let got = got.map_err(|e| e.to_string())?;
        t_solve.push(ts);
        t_predict.push(tp);
        for s in 0..3 {
            let scale = (0..times.len()).map(|k| sol.u(k)[s].abs()).fold(0.0, f64::max);
            errors.extend((0..times.len()).map(|k| ((got[k * 3 + s] - sol.u(k)[s]) / scale).abs()));
        }
        if shown.len() < 2 {
            shown.push((p.clone(), sol, got));
        }
    }
    errors.sort_by(f64::total_cmp);
    let (median, max) = (errors[errors.len() / 2], errors[errors.len() - 1]);
    let speedup = t_solve.iter().sum::<f64>() / t_predict.iter().sum::<f64>();
    if a.json {
        let m = json!({
            "example": a.example, "train": a.train, "test": a.test, "max_rel_error": max,
            "median_rel_error": median, "seconds_train": seconds_train, "speedup": speedup,
        });
        out!("{m}");
    } else {
        out!("robertson surrogate: continuous-time ESN, reservoir {}, trained on {} stiff solves in {seconds_train:.3} s", a.reservoir, a.train);
        out!("held out ({} parameter sets): error relative to each species' largest value: median {median:.2e}, max {max:.2e}", a.test);
        out!(
            "a prediction takes {:.1} us, a Rodas5P solve {:.1} us: {speedup:.0}x faster",
            1e6 * median_of(&t_predict),
            1e6 * median_of(&t_solve)
        );
        out!("plot: {}", a.plot);
    }
    plot_held_out(&a.plot, &times, &shown)
}

fn median_of(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

/// One panel per species: the solver's lines and the surrogate's markers at up to two
/// held-out parameter sets, against log10 t.
fn plot_held_out(path: &str, times: &[f64], shown: &[(Vec<f64>, diffsim::Solution, Vec<f64>)]) -> Result<(), String> {
    let names = ["y1", "y2", "y3"];
    let panels: Vec<Panel> = (0..3)
        .map(|s| {
            let mut curves = Vec::new();
            for (j, (p, sol, got)) in shown.iter().enumerate() {
                let label = format!("k = ({:.3}, {:.2e}, {:.0})", p[0], p[1], p[2]);
                curves.push(Curve {
                    label: format!("Rodas5P, {label}"),
                    points: times.iter().enumerate().map(|(k, t)| (t.log10(), sol.u(k)[s])).collect(),
                    style: if j == 0 { Style::Wide } else { Style::Line },
                });
                curves.push(Curve {
                    label: format!("surrogate, {label}"),
                    points: times.iter().enumerate().map(|(k, t)| (t.log10(), got[k * 3 + s])).collect(),
                    style: Style::Markers,
                });
            }
            Panel { x_desc: "log10 t".into(), y_desc: names[s].into(), curves, log_y: false }
        })
        .collect();
    plot::panels(path, "Robertson at held-out rate constants: surrogate against the stiff solver", &panels)
}
