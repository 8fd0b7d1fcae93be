//! diffsim's side of `bench/peers/spiral_peers.py`: one loss-and-gradient of the spiral
//! neural ODE per sensitivity method, on the very network and data the Python peers used.
//!
//! ```text
//! bench/peers/.venv/bin/python bench/peers/spiral_peers.py > spiral.jsonl
//! cargo bench -q -p diffsim-examples --bench spiral_peers -- spiral.jsonl [BUDGET_S] >> spiral.jsonl
//! bench/peers/.venv/bin/python bench/peers/spiral_peers.py --table spiral.jsonl
//! ```
//!
//! It reads the peers' `data` record (the 30 data points), and their `init_params` and
//! `trained_params` records (`W1[50, 2]`, `b1`, `W2[2, 50]`, `b2`: row-major weights then
//! biases, which is [`diffsim::nn::Mlp`]'s flat layout), and prints one JSON line per
//! (parameters, method) in the peers' format, with `loss` to check that the networks agree,
//! and one for 300 Adam(0.05) iterations from the initial network (case `adam300`).

use diffsim::optim::{Adam, Control, MinimizeOptions};
use diffsim::sensitivity::{SensAlg, VjpMethod};
use diffsim_examples as examples;
use serde_json::{json, Value};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `cargo bench` appends `--bench`.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let path = args.first().ok_or("usage: spiral_peers PEERS.jsonl [BUDGET_SECONDS]")?;
    let budget: f64 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(1.0);
    let records: Vec<Value> = std::fs::read_to_string(path)?
        .lines()
        .filter(|l| l.trim_start().starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let find = |case: &str| records.iter().find(|r| r["case"] == case);
    let floats = |v: &Value| -> Vec<f64> { v.as_array().into_iter().flatten().filter_map(Value::as_f64).collect() };

    let mut ex = examples::spiral(0, 1e-7, 1e-9)?;
    if let Some(data) = find("data").map(|r| r["data"].as_array().cloned().unwrap_or_default()) {
        let flat: Vec<f64> = data.iter().flat_map(floats).collect();
        if flat.len() == ex.data.len() {
            ex.fit.loss = diffsim::sensitivity::Loss::squared_error(flat);
        } else {
            eprintln!("spiral_peers: no full data in the peers' data record; using diffsim's own truth");
        }
    }
    let mut param_sets = Vec::new();
    for case in ["init_params", "trained_params"] {
        if let Some(r) = find(case) {
            let p: Vec<f64> = r["values"].as_array().into_iter().flatten().flat_map(floats).collect();
            if p.len() != ex.p0.len() {
                return Err(format!("{case}: {} values, the network has {}", p.len(), ex.p0.len()).into());
            }
            let label = if case == "init_params" {
                "init".to_string()
            } else {
                r["label"].as_str().unwrap_or("trained").into()
            };
            param_sets.push((label, p));
        }
    }
    if param_sets.is_empty() {
        return Err(format!("{path} holds no init_params or trained_params record").into());
    }

    let methods = [
        SensAlg::Discrete(VjpMethod::Model),
        SensAlg::DiscreteCheckpointing(VjpMethod::Model),
        SensAlg::Checkpointing(VjpMethod::Model),
        SensAlg::Interpolating(VjpMethod::Model),
        SensAlg::Quadrature(VjpMethod::Model),
        SensAlg::Backsolve(VjpMethod::Model),
        SensAlg::Forward,
    ];
    let mut grad = vec![0.0; ex.p0.len()];
    for (label, p) in &param_sets {
        let forward_steps = {
            ex.fit.problem.set_p(p)?;
            diffsim::solve(&ex.fit.problem, ex.fit.alg, &ex.fit.opts)?.stats()
        };
        for sensealg in methods {
            ex.fit.sensealg = sensealg;
            let loss = ex.fit.loss_and_gradient(p, &mut grad); // warm-up
            let mut times = Vec::new();
            let start = Instant::now();
            while times.len() < 3 || (start.elapsed().as_secs_f64() < budget && times.len() < 2000) {
                let t = Instant::now();
                ex.fit.loss_and_gradient(p, &mut grad);
                times.push(t.elapsed().as_secs_f64());
            }
            times.sort_by(f64::total_cmp);
            let grad_norm = grad.iter().map(|g| g * g).sum::<f64>().sqrt();
            let vjp = sensealg.vjp().map(|v| format!(", vjp {}", v.name())).unwrap_or_default();
            println!(
                "{}",
                json!({
                    "peer": "diffsim", "case": "loss_grad", "params": label, "dtype": "float64",
                    "solver": "Tsit5", "adjoint": format!("{}{vjp}", sensealg.name()),
                    "seconds": times[times.len() / 2], "seconds_min": times[0], "repeats": times.len(),
                    "num_steps": forward_steps.nsteps, "num_accepted_steps": forward_steps.naccept,
                    "num_rejected_steps": forward_steps.nreject, "loss": loss, "grad_norm": grad_norm,
                    "rtol": 1e-7, "atol": 1e-9,
                })
            );
        }
    }
    // 300 Adam(0.05) iterations from the peers' initial network, as their adam300 case.
    if let Some((_, p0)) = param_sets.iter().find(|(label, _)| label == "init") {
        ex.fit.sensealg = SensAlg::Discrete(VjpMethod::Model);
        let initial = ex.fit.loss(p0);
        let start = Instant::now();
        let opts = MinimizeOptions::default().max_iters(300);
        let report = ex.fit.train(p0, &mut Adam::new(0.05), &opts, None, |_| Control::Continue)?;
        let seconds = start.elapsed().as_secs_f64();
        let final_loss = ex.fit.loss(&report.final_x);
        let steps = {
            ex.fit.problem.set_p(&report.final_x)?;
            diffsim::solve(&ex.fit.problem, ex.fit.alg, &ex.fit.opts)?.stats().nsteps
        };
        println!(
            "{}",
            json!({
                "peer": "diffsim", "case": "adam300", "dtype": "float64", "solver": "Tsit5",
                "adjoint": "discrete, vjp model", "seconds": seconds, "iterations": report.iterations,
                "iterations_run": report.iterations, "extrapolated": false,
                "seconds_per_iteration": seconds / report.iterations.max(1) as f64,
                "loss_initial": initial, "final_loss": final_loss, "num_steps_final": steps,
                "lr": 0.05, "rtol": 1e-7, "atol": 1e-9,
            })
        );
    }
    Ok(())
}
