//! Peer benchmark for `diffsim`: solves the shared benchmark problems with the
//! `diffsol` crate (crates.io) and prints one JSON object per line.
//!
//! Problems and tolerances are the ones defined in `bench/peers/peers.py`:
//!   lorenz       sigma=10 rho=28 beta=8/3, u0=[1,0,0], t in [0,100], rtol=atol=1e-8
//!   robertson    k1=0.04 k2=3e7 k3=1e4, u0=[1,0,0], t in [0,1e5], rtol=1e-6 atol=1e-10
//!   van-der-pol  mu=1e3 (u2' = mu((1-u1^2)u2 - u1)), u0=[2,0], t in [0,3], rtol=atol=1e-6
//!   ensemble     1000 Robertson solves, rates scaled by log-uniform factors in [0.5,2]
//!
//! Usage: diffsol-bench [--budget SECONDS] [--only NAME[,NAME..]]
//!        diffsol-bench --stiff NAME --rtol R --atol A [--budget SECONDS] [--methods BDF,..]
//! The second form runs one problem of the stiff test set (hires, orego, pollu, vdpol,
//! rober, akzo, e5; see `stiff_set.rs`) at one tolerance, for `stiff_peers.py`.
//! Timing: each case is repeated until `budget` seconds have been spent (at
//! least 3 and at most 1000 repeats) and the median wall time is reported.
//! Only the end state is kept (the solver is stepped to a stop time; no dense
//! output is stored). The time includes creating the solver (initial step
//! selection, first Jacobian) but not building the problem description.

use diffsol::{
    NalgebraLU, NalgebraMat, OdeBuilder, OdeSolverMethod, OdeSolverStopReason, Vector,
};
use std::time::Instant;

type M = NalgebraMat<f64>;
type LS = NalgebraLU<f64>;

/// End of the Van der Pol span: about two relaxation periods in this scaling (see README).
const VDP_T1: f64 = 3.0;

struct Outcome {
    y: Vec<f64>,
    t: f64,
    nsteps: usize,
    nreject: usize,
    nsetups: usize,
    newton_iters: usize,
    ok: bool,
}

/// Step `solver` to `t1` (no intermediate output) and collect statistics.
fn integrate<'a, Eqn, S>(mut solver: S, t1: f64) -> Outcome
where
    Eqn: diffsol::OdeEquations<T = f64> + 'a,
    S: OdeSolverMethod<'a, Eqn>,
{
    let mut ok = solver.set_stop_time(t1).is_ok();
    if ok {
        loop {
            match solver.step() {
                Ok(OdeSolverStopReason::TstopReached) => break,
                Ok(_) => {}
                Err(e) => {
                    if std::env::var("DIFFSOL_BENCH_DEBUG").is_ok() {
                        eprintln!("diffsol error at t={}: {e}", solver.state().t);
                    }
                    ok = false;
                    break;
                }
            }
        }
    }
    let st = solver.get_statistics().clone();
    let state = solver.state();
    Outcome {
        y: state.y.clone_as_vec(),
        t: state.t,
        nsteps: st.number_of_steps,
        nreject: st.number_of_error_test_failures,
        nsetups: st.number_of_linear_solver_setups,
        newton_iters: st.number_of_nonlinear_solver_iterations,
        ok,
    }
}

impl Outcome {
    /// A run whose solver could not be created.
    fn failed(t: f64) -> Self {
        Outcome { y: Vec::new(), t, nsteps: 0, nreject: 0, nsetups: 0, newton_iters: 0, ok: false }
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Repeat `f` until the time budget is spent; return (median seconds, repeats, last outcome).
fn timed<F: FnMut() -> Outcome>(budget: f64, mut f: F) -> (f64, usize, Outcome) {
    let _warm = f();
    let mut times = Vec::new();
    let start = Instant::now();
    let mut last;
    loop {
        let t0 = Instant::now();
        last = f();
        times.push(t0.elapsed().as_secs_f64());
        let spent = start.elapsed().as_secs_f64();
        if (times.len() >= 3 && spent >= budget) || times.len() >= 1000 {
            break;
        }
    }
    let n = times.len();
    (median(&mut times), n, last)
}

fn json_f64s(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|x| format!("{:e}", x)).collect();
    format!("[{}]", parts.join(","))
}

#[allow(clippy::too_many_arguments)]
fn emit(problem: &str, solver: &str, secs: f64, repeats: usize, o: &Outcome, rtol: f64, atol: f64) {
    println!(
        "{{\"peer\":\"diffsol\",\"problem\":\"{}\",\"solver\":\"{}\",\"seconds_median\":{:e},\"repeats\":{},\"t_final\":{:e},\"u_final\":{},\"success\":{},\"stats\":{{\"nsteps\":{},\"nreject\":{},\"nlu\":{},\"newton_iters\":{}}},\"rtol\":{:e},\"atol\":{:e}}}",
        problem,
        solver,
        secs,
        repeats,
        o.t,
        json_f64s(&o.y),
        o.ok,
        o.nsteps,
        o.nreject,
        o.nsetups,
        o.newton_iters,
        rtol,
        atol
    );
}

// ---------------------------------------------------------------- problems

fn lorenz(budget: f64) {
    let (rtol, atol, t1) = (1e-8, 1e-8, 100.0);
    let problem = OdeBuilder::<M>::new()
        .rtol(rtol)
        .atol([atol])
        .p([10.0, 28.0, 8.0 / 3.0])
        .rhs(|x: &[f64], p: &[f64], _t: f64, y: &mut [f64]| {
            y[0] = p[0] * (x[1] - x[0]);
            y[1] = x[0] * (p[1] - x[2]) - x[1];
            y[2] = x[0] * x[1] - p[2] * x[2];
        })
        .init(
            |_p: &[f64], _t: f64, y: &mut [f64]| {
                y[0] = 1.0;
                y[1] = 0.0;
                y[2] = 0.0;
            },
            3,
        )
        .build()
        .expect("lorenz problem");
    let (s, n, o) = timed(budget, || integrate(problem.tsit45().unwrap(), t1));
    emit("lorenz", "Tsit45", s, n, &o, rtol, atol);
}

/// Robertson with rate constants k = [k1, k2, k3] (k2 multiplies u2^2, k3 multiplies u2*u3).
macro_rules! robertson_problem {
    ($k:expr, $rtol:expr, $atol:expr) => {{
        let k: [f64; 3] = $k;
        OdeBuilder::<M>::new()
            .rtol($rtol)
            .atol([$atol])
            .p(k)
            .rhs_implicit(
                |x: &[f64], p: &[f64], _t: f64, y: &mut [f64]| {
                    y[0] = -p[0] * x[0] + p[2] * x[1] * x[2];
                    y[1] = p[0] * x[0] - p[1] * x[1] * x[1] - p[2] * x[1] * x[2];
                    y[2] = p[1] * x[1] * x[1];
                },
                // Jacobian-vector product J(x) v
                |x: &[f64], p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| {
                    y[0] = -p[0] * v[0] + p[2] * (x[2] * v[1] + x[1] * v[2]);
                    y[1] = p[0] * v[0]
                        - (2.0 * p[1] * x[1] + p[2] * x[2]) * v[1]
                        - p[2] * x[1] * v[2];
                    y[2] = 2.0 * p[1] * x[1] * v[1];
                },
            )
            .init(
                |_p: &[f64], _t: f64, y: &mut [f64]| {
                    y[0] = 1.0;
                    y[1] = 0.0;
                    y[2] = 0.0;
                },
                3,
            )
            .build()
            .expect("robertson problem")
    }};
}

macro_rules! vdp_problem {
    ($mu:expr, $rtol:expr, $atol:expr) => {{
        OdeBuilder::<M>::new()
            .rtol($rtol)
            .atol([$atol])
            .p([$mu])
            .rhs_implicit(
                |x: &[f64], p: &[f64], _t: f64, y: &mut [f64]| {
                    y[0] = x[1];
                    y[1] = p[0] * ((1.0 - x[0] * x[0]) * x[1] - x[0]);
                },
                |x: &[f64], p: &[f64], _t: f64, v: &[f64], y: &mut [f64]| {
                    y[0] = v[1];
                    y[1] = p[0] * ((-2.0 * x[0] * x[1] - 1.0) * v[0] + (1.0 - x[0] * x[0]) * v[1]);
                },
            )
            .init(
                |_p: &[f64], _t: f64, y: &mut [f64]| {
                    y[0] = 2.0;
                    y[1] = 0.0;
                },
                2,
            )
            .build()
            .expect("van der pol problem")
    }};
}

/// Run BDF, ESDIRK34 and TR-BDF2 on a built stiff problem.
macro_rules! stiff_suite {
    ($name:expr, $problem:expr, $t1:expr, $rtol:expr, $atol:expr, $budget:expr) => {{
        let problem = $problem;
        let (s, n, o) = timed($budget, || integrate(problem.bdf::<LS>().unwrap(), $t1));
        emit($name, "BDF", s, n, &o, $rtol, $atol);
        let (s, n, o) = timed($budget, || integrate(problem.esdirk34::<LS>().unwrap(), $t1));
        emit($name, "ESDIRK34", s, n, &o, $rtol, $atol);
        let (s, n, o) = timed($budget, || integrate(problem.tr_bdf2::<LS>().unwrap(), $t1));
        emit($name, "TR-BDF2", s, n, &o, $rtol, $atol);
    }};
}

fn robertson(budget: f64) {
    let (rtol, atol) = (1e-6, 1e-10);
    stiff_suite!(
        "robertson",
        robertson_problem!([0.04, 3e7, 1e4], rtol, atol),
        1e5,
        rtol,
        atol,
        budget
    );
}

fn van_der_pol(budget: f64) {
    let (rtol, atol) = (1e-6, 1e-6);
    stiff_suite!("van-der-pol", vdp_problem!(1e3, rtol, atol), VDP_T1, rtol, atol, budget);
}

mod stiff_set;

/// Small deterministic RNG (splitmix64) so the ensemble needs no extra crates.
struct SplitMix(u64);
impl SplitMix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
    /// log-uniform in [0.5, 2]
    fn factor(&mut self) -> f64 {
        (2f64.ln() * (2.0 * self.next_f64() - 1.0)).exp()
    }
}

fn ensemble(budget: f64) {
    let (rtol, atol, n) = (1e-6, 1e-10, 1000usize);
    let mut rng = SplitMix(1);
    let ks: Vec<[f64; 3]> = (0..n)
        .map(|_| [0.04 * rng.factor(), 3e7 * rng.factor(), 1e4 * rng.factor()])
        .collect();
    let run = || {
        let mut agg = Outcome {
            y: vec![0.0; 3],
            t: 1e5,
            nsteps: 0,
            nreject: 0,
            nsetups: 0,
            newton_iters: 0,
            ok: true,
        };
        let mut nfail = 0usize;
        for k in &ks {
            let problem = robertson_problem!(*k, rtol, atol);
            let o = integrate(problem.bdf::<LS>().unwrap(), 1e5);
            agg.nsteps += o.nsteps;
            agg.nreject += o.nreject;
            agg.nsetups += o.nsetups;
            agg.newton_iters += o.newton_iters;
            if !o.ok {
                nfail += 1;
            }
            for i in 0..3 {
                agg.y[i] += o.y[i] / n as f64; // ensemble mean of the end state
            }
        }
        agg.ok = nfail == 0;
        agg
    };
    // The ensemble is expensive; a smaller budget multiple is plenty.
    let (s, reps, o) = timed(budget, run);
    emit("ensemble", "BDF (loop, 1000)", s, reps, &o, rtol, atol);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut budget = 1.0;
    let mut only: Option<Vec<String>> = None;
    let (mut stiff, mut rtol, mut atol): (Option<String>, Option<f64>, Option<f64>) = (None, None, None);
    let mut methods: Vec<String> = Vec::new();
    let mut i = 1;
    while i < args.len() {
        match args[i].as_str() {
            "--budget" => {
                budget = args[i + 1].parse().expect("--budget SECONDS");
                i += 1;
            }
            "--only" => {
                only = Some(args[i + 1].split(',').map(String::from).collect());
                i += 1;
            }
            "--methods" if i + 1 < args.len() => {
                methods = args[i + 1].split(',').map(String::from).collect();
                i += 1;
            }
            "--stiff" | "--rtol" | "--atol" if i + 1 < args.len() => {
                let v = &args[i + 1];
                let number = || v.parse::<f64>().ok().filter(|x| *x > 0.0);
                match args[i].as_str() {
                    "--stiff" => stiff = Some(v.clone()),
                    "--rtol" => rtol = number(),
                    _ => atol = number(),
                }
                i += 1;
            }
            other => {
                eprintln!(
                    "unknown argument {other}; usage: diffsol-bench [--budget S] [--only a,b] | --stiff NAME --rtol R --atol A"
                );
                std::process::exit(2);
            }
        }
        i += 1;
    }
    if let Some(name) = stiff {
        let (Some(rtol), Some(atol)) = (rtol, atol) else {
            eprintln!("--stiff NAME needs --rtol R and --atol A (positive numbers)");
            std::process::exit(2);
        };
        if !stiff_set::run(&name, rtol, atol, budget, methods) {
            eprintln!("unknown stiff test-set problem {name}; one of hires, orego, pollu, vdpol, rober, akzo, e5");
            std::process::exit(2);
        }
        return;
    }
    let want = |name: &str| only.as_ref().is_none_or(|v| v.iter().any(|x| x == name));
    if want("lorenz") {
        lorenz(budget);
    }
    if want("robertson") {
        robertson(budget);
    }
    if want("van-der-pol") {
        van_der_pol(budget);
    }
    if want("ensemble") {
        ensemble(budget);
    }
}
