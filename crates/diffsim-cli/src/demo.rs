//! `diffsim demo`: a short tour of the solvers (what `cargo run --release` runs).

use crate::plot;
use crate::solve_cmd::timed;
use clap::Args;
use diffsim::models::lookup;
use diffsim::{solve, Algorithm, Problem, SolveOptions};

/// Options of `diffsim demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Directory for the plots.
    #[arg(long, default_value = "out")]
    pub out: String,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self { out: "out".into() }
    }
}

pub fn run(a: &DemoArgs) -> Result<(), String> {
    std::fs::create_dir_all(&a.out).map_err(|e| format!("cannot create {}: {e}", a.out))?;
    out!("diffsim demo: the same three problems every peer benchmark uses\n");
    let cases = [
        ("lorenz", Algorithm::Tsit5, 1e-8, 1e-8, "non-stiff, chaotic; Tsit5"),
        ("robertson", Algorithm::Rodas5P, 1e-6, 1e-10, "stiff chemistry over 10 decades of time; Rodas5P"),
        (
            "van-der-pol",
            Algorithm::Auto,
            1e-6,
            1e-6,
            "relaxation oscillator, mu = 1000; auto switches Tsit5 -> Rodas5P",
        ),
    ];
    for (name, alg, rtol, atol, what) in cases {
        let e = lookup(name).map_err(|e| e.to_string())?;
        let prob = Problem::new(e.model, e.u0, e.p, e.tspan).map_err(|e| e.to_string())?;
        let opts = SolveOptions::default().rtol(rtol).atol(atol);
        let (sol, secs) = timed(5, || solve(&prob, alg, &opts));
        let sol = sol.map_err(|e| e.to_string())?;
        let path = format!("{}/demo-{name}.png", a.out);
        plot::solution(&path, &format!("{name} ({})", sol.alg.name()), &sol)?;
        out!("{name}: {what}");
        out!(
            "  t in [{}, {}], rtol {rtol:e}, atol {atol:e}: {} in {:.3} ms, {} steps ({} rejected), {} f evals, {} Jacobians",
            e.tspan.0,
            e.tspan.1,
            sol.retcode.as_str(),
            secs * 1e3,
            sol.stats.naccept,
            sol.stats.nreject,
            sol.stats.nf,
            sol.stats.njac
        );
        out!("  final state {:?}\n  plot: {path}\n", sol.last().unwrap_or(&[]));
    }
    out!("Next: `diffsim models`, `diffsim solve --model lorenz --alg vern7 --rtol 1e-10 --atol 1e-10 --json`.");
    Ok(())
}
