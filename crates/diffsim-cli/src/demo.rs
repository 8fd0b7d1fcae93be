//! `diffsim demo` (what `cargo run --release` runs): train the Lotka-Volterra universal
//! differential equation end to end and show that the missing physics was learned.

use crate::train_cmd::{self, TrainArgs};
use clap::Args;

/// Options of `diffsim demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// Directory for the plots and trained parameters.
    #[arg(long, default_value = "out")]
    pub out: String,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self { out: "out".into() }
    }
}

pub fn run(a: &DemoArgs) -> Result<(), String> {
    out!("diffsim demo: a universal differential equation learns missing physics\n");
    out!("Lotka-Volterra predator-prey data (21 points on t in [0, 5], 5 % noise). The model knows");
    out!("only the linear terms, x' = 1.3 x + NN_1(x, y) and y' = -1.8 y + NN_2(x, y); a 2-5-5-5-2");
    out!("network must discover the interaction terms -0.9 x y and 0.8 x y from the data.\n");
    let args = TrainArgs {
        example: "lv-ude".into(),
        iters: None,
        starts: 4,
        lbfgs: 0,
        sensealg: "auto".into(),
        rtol: None,
        atol: None,
        seed: 1,
        out: a.out.clone(),
        resume: None,
        json: false,
    };
    let o = train_cmd::train(&args)?;
    out!(
        "trained: {} starts of 900 growing-interval Adam iterations and Adam on all the data, the best refined",
        args.starts
    );
    out!(
        "  by L-BFGS: {} iterations on all the data, {} loss-and-gradient evaluations in all",
        o.report.iterations,
        o.report.evaluations
    );
    out!(
        "  in {:.2} s, {:.3} ms per loss and gradient (sensealg {}, Tsit5)",
        o.seconds,
        o.seconds_per_grad * 1e3,
        o.sensealg
    );
    out!("  loss (sum of squared errors): {:.4} -> {:.4}", o.initial_loss, o.report.best_loss);
    if let Some(lv) = &o.lv {
        let (worst, rel) = lv.term_errors;
        out!(
            "the network's interaction terms along the data: relative RMS error {:.1} % (largest error {worst:.2})",
            100.0 * rel
        );
        out!("\nequations recovered from the network (sparse regression on the monomials of x, y up to");
        out!("degree 3, {} candidate models refitted to the data, chosen by BIC):", lv.compared);
        for eq in &lv.equations {
            out!("  {eq}");
        }
        out!("  (true: x' = 1.3 x - 0.9 x y, y' = -1.8 y + 0.8 x y)");
        out!("\nextrapolation beyond the data, t in (5, 8], relative RMS error:");
        out!("  trained UDE (network)  {:8.2} %", 100.0 * lv.extrapolation);
        out!("  recovered equations    {:8.2} %", 100.0 * lv.equations_extrapolation);
    }
    out!("\nplots:");
    for p in &o.plots {
        out!("  {}", p.display());
    }
    out!("trained parameters: {}", o.params_file.display());
    out!("recovered equations: {}", o.params_file.with_file_name("lv-ude-equations.json").display());
    out!("\nmore: diffsim train --example spiral | diffsim solve --model robertson --alg rodas5p | diffsim grad --model lorenz --sensealg discrete | diffsim shadow --model lorenz | diffsim surrogate --example robertson");
    Ok(())
}
