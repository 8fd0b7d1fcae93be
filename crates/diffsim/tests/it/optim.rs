//! Optimizers and the driver: accuracy against known minimisers, strong Wolfe checked
//! numerically, non-finite safety, early stopping, bit-for-bit resume, bad checkpoints.

use std::fs;
use std::path::PathBuf;

use diffsim::optim::{
    minimize, minimize_or_resume, minimize_with_callback, resume, strong_wolfe, Adam, Bfgs, Chain, Checkpoint, Control,
    Lbfgs, LineSearch, LineSearchStatus, MinimizeOptions, MinimizeReport, NelderMead, OptimError, Optimizer, Schedule,
    StepStatus, StopReason,
};
use diffsim::DiffsimError;

fn rosenbrock(x: &[f64], g: &mut [f64]) -> f64 {
    let (a, b) = (1.0 - x[0], x[1] - x[0] * x[0]);
    g[0] = -2.0 * a - 400.0 * x[0] * b;
    g[1] = 200.0 * b;
    a * a + 100.0 * b * b
}

const START: [f64; 2] = [-1.2, 1.0];

fn dist_to_one(x: &[f64]) -> f64 {
    x.iter().map(|v| (v - 1.0).abs()).fold(0.0, f64::max)
}

/// A fresh, empty directory for one test.
fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("diffsim-optim-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn lbfgs_and_bfgs_solve_rosenbrock_to_1e_8() {
    let opts = MinimizeOptions::default().max_iters(100);
    let mut optimizers: Vec<Box<dyn Optimizer>> =
        vec![Box::new(Lbfgs::default().gtol(1e-11).ftol(0.0)), Box::new(Bfgs::new().gtol(1e-11).ftol(0.0))];
    for opt in &mut optimizers {
        let r = minimize(&START, rosenbrock, opt.as_mut(), &opts).unwrap();
        assert_eq!(r.stop, StopReason::Converged, "{}: {r:?}", opt.name());
        assert!(dist_to_one(&r.best_x) < 1e-8, "{}: {:?}", opt.name(), r.best_x);
        assert!(r.iterations < 100 && r.skipped_steps == 0);
        assert_eq!(r.best_x, r.final_x);
        eprintln!("{}: {} iterations, {} evaluations", opt.name(), r.iterations, r.evaluations);
    }
}

#[test]
fn adam_solves_rosenbrock_to_1e_6() {
    let mut adam = Adam::new(0.02).schedule(Schedule::Cosine { period: 10_000, min_lr: 1e-4 });
    let r = minimize(&START, rosenbrock, &mut adam, &MinimizeOptions::default().max_iters(10_000)).unwrap();
    assert!(dist_to_one(&r.best_x) < 1e-6, "{:?} loss {}", r.best_x, r.best_loss);
    // Half the budget is not enough: the stated accuracy is not a given.
    let mut adam = Adam::new(0.02).schedule(Schedule::Cosine { period: 1_000, min_lr: 1e-4 });
    let r = minimize(&START, rosenbrock, &mut adam, &MinimizeOptions::default().max_iters(1_000)).unwrap();
    assert!(dist_to_one(&r.best_x) > 1e-6, "{:?} loss {}", r.best_x, r.best_loss);
}

#[test]
fn nelder_mead_solves_rosenbrock() {
    let mut nm = NelderMead::new(0.1).xtol(1e-10).ftol(1e-20);
    let r = minimize(&START, rosenbrock, &mut nm, &MinimizeOptions::default().max_iters(2000)).unwrap();
    assert_eq!(r.stop, StopReason::Converged);
    assert!(dist_to_one(&r.best_x) < 1e-8, "{:?}", r.best_x);
    assert!(r.best_loss < 1e-16);
}

#[test]
fn lbfgs_solves_an_ill_conditioned_50d_quadratic() {
    // A = D T D with T = tridiag(-1, 2.2, -1) and D = diag(10^(k / 49)): condition ~ 1e3.
    // The loss 0.5 (x - x*)'A(x - x*) has the exact minimiser x*. (Written as 0.5 x'Ax - b'x
    // the loss would be ~1e4 at the minimum, and decreases below ~1e-12 relative, i.e.
    // errors below ~1e-6 in x, would be lost to rounding: no line search could see them.)
    let n = 50;
    let d: Vec<f64> = (0..n).map(|k| 10f64.powf(k as f64 / 49.0)).collect();
    let apply = |x: &[f64], out: &mut [f64]| {
        for i in 0..n {
            let mut t = 2.2 * d[i] * x[i];
            if i > 0 {
                t -= d[i - 1] * x[i - 1];
            }
            if i + 1 < n {
                t -= d[i + 1] * x[i + 1];
            }
            out[i] = d[i] * t;
        }
    };
    let x_star: Vec<f64> = (0..n).map(|i| (i as f64 * 0.7).sin() + 0.1 * i as f64).collect();
    let mut e = vec![0.0; n];
    let f = |x: &[f64], g: &mut [f64]| {
        e.iter_mut().zip(x).zip(&x_star).for_each(|((ei, xi), si)| *ei = xi - si);
        apply(&e, g);
        0.5 * e.iter().zip(g.iter()).map(|(a, c)| a * c).sum::<f64>()
    };
    let mut opt = Lbfgs::default().gtol(1e-10).ftol(0.0);
    let r = minimize(&vec![0.0; n], f, &mut opt, &MinimizeOptions::default().max_iters(1000)).unwrap();
    assert_eq!(r.stop, StopReason::Converged);
    let err = r.best_x.iter().zip(&x_star).map(|(a, c)| (a - c).abs()).fold(0.0, f64::max);
    assert!(err < 1e-8, "max error {err} after {} iterations", r.iterations);
    eprintln!("50-D quadratic: {} iterations, error {err:e}", r.iterations);
}

#[test]
fn line_search_satisfies_strong_wolfe() {
    // Along the steepest descent of Rosenbrock from several points, with several first trials.
    for x0 in [[-1.2, 1.0], [0.0, 0.0], [2.0, 2.0], [0.5, -0.3]] {
        let mut g0 = [0.0; 2];
        let f0 = rosenbrock(&x0, &mut g0);
        let d = [-g0[0], -g0[1]];
        let dphi0 = -(g0[0] * g0[0] + g0[1] * g0[1]);
        let phi = |a: f64| {
            let x = [x0[0] + a * d[0], x0[1] + a * d[1]];
            let mut g = [0.0; 2];
            let f = rosenbrock(&x, &mut g);
            (f, g[0] * d[0] + g[1] * d[1])
        };
        for alpha0 in [1e-6, 1e-3, 1.0, 100.0] {
            for c2 in [0.1, 0.9] {
                let params = LineSearch { c2, ..LineSearch::default() };
                let r = strong_wolfe(&mut { phi }, f0, dphi0, alpha0, &params);
                assert_eq!(r.status, LineSearchStatus::StrongWolfe, "{x0:?} {alpha0} {c2}: {r:?}");
                // Check independently at the returned step.
                let (fa, da) = phi(r.alpha);
                assert_eq!((fa, da), (r.f, r.dphi));
                assert!(r.alpha > 0.0);
                assert!(fa <= f0 + params.c1 * r.alpha * dphi0, "sufficient decrease {x0:?} {alpha0} {c2}");
                assert!(da.abs() <= params.c2 * dphi0.abs(), "curvature {x0:?} {alpha0} {c2}: {da} vs {dphi0}");
            }
        }
    }
}

#[test]
fn adam_follows_its_schedule() {
    let schedule = Schedule::Warmup { steps: 5, then: Box::new(Schedule::Step { every: 10, factor: 0.5 }) };
    let mut adam = Adam::new(0.1).schedule(schedule.clone());
    let mut x = vec![100.0];
    let mut f = |x: &[f64], g: &mut [f64]| {
        g[0] = 1.0;
        x[0]
    };
    for k in 0..30u64 {
        assert_eq!(adam.current_learning_rate(), schedule.lr(0.1, k));
        let before = x[0];
        adam.step(&mut x, &mut f);
        // A constant gradient makes every bias-corrected Adam step equal to the rate.
        assert!((before - x[0] - schedule.lr(0.1, k)).abs() < 1e-9, "step {k}");
    }
    assert_eq!(schedule.lr(0.1, 0), 0.1 / 5.0);
    assert_eq!(schedule.lr(0.1, 14), 0.1);
    assert_eq!(schedule.lr(0.1, 15), 0.05);
}

#[test]
fn chain_switches_at_the_right_iteration_and_converges() {
    let mut chain = Chain::new().then(Adam::new(0.01), 50).then(Lbfgs::default().gtol(1e-11).ftol(0.0), 200);
    let mut names = Vec::new();
    let r = minimize_with_callback(&START, rosenbrock, &mut chain, &MinimizeOptions::default(), |p| {
        names.push(p.optimizer.to_string());
        Control::Continue
    })
    .unwrap();
    assert!(names[..50].iter().all(|n| n == "adam"));
    assert!(names[50..].iter().all(|n| n == "lbfgs"));
    assert!(names.len() > 51 && names.len() < 150, "{}", names.len());
    assert_eq!(r.stop, StopReason::Converged);
    assert!(dist_to_one(&r.best_x) < 1e-8);
    // A chain that runs out of stages finishes.
    let mut short = Chain::new().then(Adam::new(0.01), 3).then(NelderMead::default(), 4);
    let r = minimize(&START, rosenbrock, &mut short, &MinimizeOptions::default()).unwrap();
    assert_eq!((r.stop, r.iterations), (StopReason::Finished, 7));
}

/// `a (x0 - c0)^2 + (x1 - c1)^2`, but a NaN loss for x[0] > 2 and a NaN gradient for x[1] < -5.
fn fenced(a: f64, c: [f64; 2]) -> impl FnMut(&[f64], &mut [f64]) -> f64 {
    move |x: &[f64], g: &mut [f64]| {
        g[0] = 2.0 * a * (x[0] - c[0]);
        g[1] = if x[1] < -5.0 { f64::NAN } else { 2.0 * (x[1] - c[1]) };
        if x[0] > 2.0 {
            return f64::NAN;
        }
        a * (x[0] - c[0]).powi(2) + (x[1] - c[1]).powi(2)
    }
}

fn fenced_optimizers() -> Vec<Box<dyn Optimizer>> {
    vec![
        Box::new(Adam::new(0.5).schedule(Schedule::Exponential { decay: 0.99 })),
        Box::new(Lbfgs::default()),
        Box::new(Bfgs::new()),
        Box::new(NelderMead::new(1.0)),
        Box::new(Chain::new().then(Adam::new(0.5), 30).then(Lbfgs::default(), 100)),
    ]
}

#[test]
fn non_finite_objective_never_reaches_the_parameters() {
    // The minimum (3, 1) lies in the NaN region: every method keeps bumping into x[0] = 2.
    // Gradient methods cannot reach the constrained optimum (2, 1) this way (their steps
    // shrink at the fence), but nothing non-finite may get into the parameters, every
    // skipped step is reported, and the best point stays finite and inside.
    for mut opt in fenced_optimizers() {
        let name = opt.name().to_string();
        let (mut all_finite, mut skips) = (true, 0);
        let opts = MinimizeOptions::default().max_iters(300).max_consecutive_skips(1000);
        let r = minimize_with_callback(&[0.0, -4.0], fenced(1.0, [3.0, 1.0]), opt.as_mut(), &opts, |p| {
            all_finite &= p.x.iter().all(|v| v.is_finite());
            skips += usize::from(p.status == StepStatus::Skipped);
            Control::Continue
        })
        .unwrap();
        assert!(all_finite && r.final_x.iter().all(|v| v.is_finite()), "{name}");
        assert!(r.best_loss.is_finite() && r.best_x[0] <= 2.0, "{name}: {r:?}");
        assert!(r.best_loss < 10.0, "{name}: {}", r.best_loss); // from 34 at the start
        assert_eq!(r.skipped_steps, skips as u64, "{name}");
        assert!(r.non_finite_evaluations > 0, "{name} met no NaN?");
        if name != "nelder-mead" {
            // (Nelder-Mead treats NaN as +inf and never needs to skip.)
            assert!(r.skipped_steps > 0, "{name} reported no skipped steps");
        }
    }
}

#[test]
fn overshooting_into_non_finite_ground_recovers() {
    // Rosenbrock with a NaN loss for x[1] > 1.2: the minimum (1, 1) is inside, but the
    // early steps (Adam's, the line search's trials, the simplex's expansions) overshoot.
    let f = |x: &[f64], g: &mut [f64]| {
        let v = rosenbrock(x, g);
        if x[1] > 1.2 {
            f64::NAN
        } else {
            v
        }
    };
    let optimizers: Vec<(Box<dyn Optimizer>, f64)> = vec![
        (Box::new(Adam::new(0.05).schedule(Schedule::Cosine { period: 4000, min_lr: 1e-5 })), 1e-3),
        (Box::new(Lbfgs::default()), 1e-6),
        (Box::new(Bfgs::new()), 1e-6),
        (Box::new(NelderMead::new(0.5)), 1e-6),
        (Box::new(Chain::new().then(Adam::new(0.1), 30).then(Lbfgs::default(), 100)), 1e-6),
    ];
    for (mut opt, tol) in optimizers {
        let name = opt.name().to_string();
        let r = minimize(&START, f, opt.as_mut(), &MinimizeOptions::default().max_iters(4000)).unwrap();
        assert!(dist_to_one(&r.best_x) < tol, "{name}: {:?} {:?}", r.best_x, r.stop);
        assert!(r.non_finite_evaluations > 0, "{name} never overshot: the test would be too easy");
        assert!(r.final_x.iter().all(|v| v.is_finite()));
    }
}

#[test]
fn a_non_finite_start_stops_with_the_start_as_best() {
    let nan = |_: &[f64], _: &mut [f64]| f64::NAN;
    for mut opt in [Box::new(Adam::new(0.1)) as Box<dyn Optimizer>, Box::new(Lbfgs::default())] {
        let r = minimize(&[1.0, 2.0], nan, opt.as_mut(), &MinimizeOptions::default()).unwrap();
        assert_eq!((r.stop, r.iterations, r.skipped_steps), (StopReason::NonFinite, 20, 20));
        assert_eq!(r.best_x, vec![1.0, 2.0]);
        assert_eq!(r.best_loss, f64::INFINITY);
    }
}

#[test]
fn the_best_parameters_survive_a_later_blow_up() {
    // The loss is fine for 10 evaluations, then NaN forever: the best point must be kept.
    let mut calls = 0;
    let f = |x: &[f64], g: &mut [f64]| {
        calls += 1;
        g[0] = 2.0 * x[0];
        if calls > 10 {
            f64::NAN
        } else {
            x[0] * x[0]
        }
    };
    let r = minimize(&[1.0], f, &mut Adam::new(0.1), &MinimizeOptions::default()).unwrap();
    assert_eq!(r.stop, StopReason::NonFinite);
    assert_eq!(r.best_loss, r.history[9]);
    assert!(r.best_x[0] < 0.2 && r.best_x[0] > 0.0 && (r.best_x[0] * r.best_x[0] - r.best_loss).abs() < 1e-15);
}

#[test]
fn early_stopping_triggers() {
    // 1 + exp(-x): the loss keeps falling, ever more slowly.
    let f = |x: &[f64], g: &mut [f64]| {
        g[0] = -(-x[0]).exp();
        1.0 + (-x[0]).exp()
    };
    let opts = MinimizeOptions::default().max_iters(100_000).early_stopping(20, 1e-4);
    let r = minimize(&[0.0], f, &mut Adam::new(0.05), &opts).unwrap();
    assert_eq!(r.stop, StopReason::NoImprovement);
    let n = r.history.len();
    assert!(n < 100_000);
    // Over the last 20 iterations the loss fell by less than 1e-4 relative.
    let reference = r.history[..n - 20].iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(r.history[n - 20..].iter().all(|&l| l >= reference * (1.0 - 1e-4)));
    // And it did not stop as soon as the improvements fell below that rate.
    assert!(r.history[n - 21] - r.history[n - 1] > 0.0);

    let quad = |x: &[f64], g: &mut [f64]| {
        g[0] = 2.0 * x[0];
        x[0] * x[0]
    };
    let r = minimize(&[1.0], quad, &mut Adam::new(0.01), &MinimizeOptions::default().target_loss(0.25)).unwrap();
    assert_eq!(r.stop, StopReason::TargetReached);
    assert!(r.best_loss <= 0.25 && r.history[..r.history.len() - 1].iter().all(|&l| l > 0.25));
}

fn bits(v: &[f64]) -> Vec<u64> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn assert_same_run(a: &MinimizeReport, b: &MinimizeReport, what: &str) {
    assert_eq!(bits(&a.final_x), bits(&b.final_x), "{what}: final x");
    assert_eq!(bits(&a.best_x), bits(&b.best_x), "{what}: best x");
    assert_eq!(bits(&a.history), bits(&b.history), "{what}: history");
    assert_eq!(a.best_loss.to_bits(), b.best_loss.to_bits(), "{what}: best loss");
    assert_eq!(
        (a.iterations, a.evaluations, a.skipped_steps, a.stop),
        (b.iterations, b.evaluations, b.skipped_steps, b.stop)
    );
}

#[test]
fn resume_reproduces_an_uninterrupted_run_bit_for_bit() {
    let dir = scratch_dir("resume");
    type Make = fn() -> Box<dyn Optimizer>;
    let cases: Vec<(&str, Make, u64, u64)> = vec![
        (
            "adam",
            || Box::new(Adam::new(0.01).schedule(Schedule::Exponential { decay: 0.999 }).weight_decay(1e-3)),
            400,
            137,
        ),
        ("lbfgs", || Box::new(Lbfgs::new(4).gtol(0.0).ftol(0.0)), 30, 11),
        ("bfgs", || Box::new(Bfgs::new().gtol(0.0).ftol(0.0)), 25, 9),
        ("nelder-mead", || Box::new(NelderMead::new(0.3)), 200, 77),
        (
            "chain",
            || Box::new(Chain::new().then(Adam::new(0.02), 40).then(Lbfgs::default().gtol(0.0).ftol(0.0), 30)),
            60,
            45,
        ),
        (
            "chain-early",
            || Box::new(Chain::new().then(Adam::new(0.02), 40).then(Lbfgs::default().gtol(0.0).ftol(0.0), 30)),
            60,
            23,
        ),
    ];
    for (name, make, total, cut) in cases {
        let full = minimize(&START, rosenbrock, make().as_mut(), &MinimizeOptions::default().max_iters(total)).unwrap();
        let path = dir.join(format!("{name}.json"));
        let opts = MinimizeOptions::default().checkpoint(&path, 10);
        let first = minimize(&START, rosenbrock, make().as_mut(), &opts.clone().max_iters(cut)).unwrap();
        assert_eq!(first.iterations, cut);
        let resumed = resume(&path, rosenbrock, make().as_mut(), &opts.clone().max_iters(total)).unwrap();
        assert_same_run(&full, &resumed, name);
        assert!(full.iterations > cut, "{name}: the run must go on past the cut");
    }
    // Mid-way through skips (Adam holding an undo, a shrunk rate) resumes exactly too.
    let fenced_rosenbrock = |x: &[f64], g: &mut [f64]| if x[1] > 1.2 { f64::NAN } else { rosenbrock(x, g) };
    let make = || Chain::new().then(Adam::new(0.1), 40).then(Lbfgs::default().gtol(0.0).ftol(0.0), 30);
    let opts = MinimizeOptions::default().max_consecutive_skips(100);
    let full = minimize(&START, fenced_rosenbrock, &mut make(), &opts.clone().max_iters(60)).unwrap();
    assert!(full.skipped_steps > 0 && full.non_finite_evaluations > full.skipped_steps);
    for cut in 1..60 {
        let path = dir.join("fenced.json");
        let opts = opts.clone().checkpoint(&path, 1000);
        minimize(&START, fenced_rosenbrock, &mut make(), &opts.clone().max_iters(cut)).unwrap();
        let resumed = resume(&path, fenced_rosenbrock, &mut make(), &opts.clone().max_iters(60)).unwrap();
        assert_same_run(&full, &resumed, &format!("fenced chain cut at {cut}"));
    }
    // A periodic (not final) checkpoint resumes just as well: copy the one written at
    // iteration 30 while the run goes on, then resume from the copy.
    let path = dir.join("periodic.json");
    let copy = dir.join("periodic-at-30.json");
    let opts = MinimizeOptions::default().checkpoint(&path, 15).max_iters(100);
    let make = || Chain::new().then(Adam::new(0.02), 20).then(Lbfgs::default().gtol(0.0).ftol(0.0), 80);
    let full = minimize_with_callback(&START, rosenbrock, &mut make(), &opts, |p| {
        if p.iteration == 31 {
            fs::copy(&path, &copy).unwrap();
        }
        Control::Continue
    })
    .unwrap();
    assert_eq!(Checkpoint::load(&copy).unwrap().iteration, 30);
    let resumed = resume(&copy, rosenbrock, &mut make(), &opts).unwrap();
    assert_same_run(&full, &resumed, "periodic");
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn checkpoint_writes_are_atomic() {
    let dir = scratch_dir("atomic");
    let path = dir.join("fit.json");
    fs::write(&path, "old contents").unwrap();
    let opts = MinimizeOptions::default().checkpoint(&path, 3).max_iters(20);
    let mut seen = Vec::new();
    minimize_with_callback(&START, rosenbrock, &mut Adam::new(0.01), &opts, |p| {
        // After every write the directory holds the checkpoint and nothing else, and it parses.
        let names: Vec<_> = fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("fit.json")]);
        seen.push((p.iteration, Checkpoint::load(&path).unwrap().iteration));
        Control::Continue
    })
    .unwrap();
    // The file holds the latest multiple of 3 (the callback runs before the write).
    assert!(seen.iter().all(|&(it, cp)| cp == (it - 1) / 3 * 3), "{seen:?}");
    let cp = Checkpoint::load(&path).unwrap();
    assert_eq!((cp.iteration, cp.optimizer.as_str(), cp.n_params()), (20, "adam", 2));
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn checkpoints_by_time_interval() {
    let dir = scratch_dir("interval");
    let path = dir.join("fit.json");
    // A zero interval writes after every iteration; a huge one only at the start and the end.
    let every_iteration: fn(u64) -> u64 = |it| it - 1;
    let start_only: fn(u64) -> u64 = |_| 0;
    for (seconds, expect) in [(0.0, every_iteration), (1e9, start_only)] {
        let opts = MinimizeOptions::default().checkpoint_interval(&path, seconds).max_iters(12);
        let mut seen = Vec::new();
        minimize_with_callback(&START, rosenbrock, &mut Adam::new(0.01), &opts, |p| {
            seen.push((p.iteration, Checkpoint::load(&path).unwrap().iteration));
            Control::Continue
        })
        .unwrap();
        assert!(seen.iter().all(|&(it, cp)| cp == expect(it)), "interval {seconds}: {seen:?}");
        assert_eq!(Checkpoint::load(&path).unwrap().iteration, 12);
    }
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_or_mismatched_checkpoints_are_errors() {
    let dir = scratch_dir("bad");
    let path = dir.join("cp.json");
    let opts = MinimizeOptions::default().checkpoint(&path, 5).max_iters(12);
    minimize(&START, rosenbrock, &mut Adam::new(0.01), &opts).unwrap();
    let good = fs::read_to_string(&path).unwrap();

    // Missing file.
    let e = resume(dir.join("nope.json"), rosenbrock, &mut Adam::new(0.01), &opts).unwrap_err();
    assert!(matches!(e, OptimError::CheckpointIo { action: "read", .. }), "{e}");
    // Not JSON, truncated, wrong format tag, wrong length.
    let edits = [
        "garbage".to_string(),
        good[..good.len() / 2].to_string(),
        good.replace("diffsim-optim-checkpoint", "something-else"),
        good.replacen("\"x\":[", "\"x\":[1.0,", 1),
        good.replacen("\"iteration\":12", "\"iteration\":13", 1),
    ];
    for (k, text) in edits.iter().enumerate() {
        let bad = dir.join(format!("bad{k}.json"));
        fs::write(&bad, text).unwrap();
        let e = resume(&bad, rosenbrock, &mut Adam::new(0.01), &opts).unwrap_err();
        assert!(matches!(e, OptimError::CheckpointFormat { .. }), "edit {k}: {e}");
        assert!(e.to_string().contains("start a new run"), "{e}");
    }
    // Another optimizer, another chain, another parameter count, a state of the wrong size.
    let e = resume(&path, rosenbrock, &mut Lbfgs::default(), &opts).unwrap_err();
    assert!(matches!(&e, OptimError::CheckpointMismatch { why, .. } if why.contains("'adam'")), "{e}");
    let chain_path = dir.join("chain.json");
    let copts = MinimizeOptions::default().checkpoint(&chain_path, 5).max_iters(12);
    minimize(&START, rosenbrock, &mut Chain::new().then(Adam::new(0.01), 10).then(Lbfgs::default(), 10), &copts)
        .unwrap();
    let mut other = Chain::new().then(Adam::new(0.01), 10).then(Bfgs::new(), 10);
    let e = resume(&chain_path, rosenbrock, &mut other, &copts).unwrap_err();
    assert!(matches!(&e, OptimError::CheckpointMismatch { why, .. } if why.contains("bfgs")), "{e}");
    let e = minimize_or_resume(&[0.0, 0.0, 0.0], rosenbrock, &mut Adam::new(0.01), &opts).unwrap_err();
    assert!(matches!(&e, OptimError::CheckpointMismatch { why, .. } if why.contains("2 parameters")), "{e}");
    let wrong_m = dir.join("wrong-m.json");
    let mut cp: serde_json::Value = serde_json::from_str(&good).unwrap();
    cp["optimizer_state"]["state"]["m"] = serde_json::json!([0.0, 0.0, 0.0]);
    fs::write(&wrong_m, cp.to_string()).unwrap();
    let e = resume(&wrong_m, rosenbrock, &mut Adam::new(0.01), &opts).unwrap_err();
    assert!(matches!(e, OptimError::CheckpointMismatch { .. }), "{e}");
    // The good file still resumes, and minimize_or_resume picks it up.
    let r = minimize_or_resume(&[9.0, 9.0], rosenbrock, &mut Adam::new(0.01), &opts.clone().max_iters(15)).unwrap();
    assert_eq!(r.iterations, 15);
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_is_an_error() {
    let opts = MinimizeOptions::default();
    let e = minimize(&[], rosenbrock, &mut Adam::new(0.1), &opts).unwrap_err();
    assert!(matches!(e, OptimError::Input(DiffsimError::InvalidOption { name: "x0", .. })));
    let e = minimize(&[1.0, f64::NAN], rosenbrock, &mut Adam::new(0.1), &opts).unwrap_err();
    assert_eq!(e, OptimError::Input(DiffsimError::NonFinite { what: "x0", index: 1 }));
    let bad: Vec<(Box<dyn Optimizer>, &str)> = vec![
        (Box::new(Adam::new(-0.1)), "lr"),
        (Box::new(Adam::new(0.1).betas(1.0, 0.999)), "beta1"),
        (Box::new(Adam::new(0.1).schedule(Schedule::Step { every: 0, factor: 0.5 })), "schedule every"),
        (Box::new(Lbfgs::new(0)), "memory"),
        (Box::new(Bfgs::new().gtol(f64::NAN)), "gtol"),
        (Box::new(NelderMead::new(0.0)), "initial_step"),
        (Box::new(Chain::new().then(Adam::new(0.1), 5).then(Lbfgs::new(0), 5)), "memory"),
    ];
    for (mut opt, field) in bad {
        let e = minimize(&START, rosenbrock, opt.as_mut(), &opts).unwrap_err();
        assert!(matches!(e, OptimError::Input(DiffsimError::InvalidOption { name, .. }) if name == field), "{field}");
    }
    for o in [
        MinimizeOptions::default().early_stopping(5, 1.5),
        MinimizeOptions::default().target_loss(f64::NAN),
        MinimizeOptions::default().max_consecutive_skips(0),
        MinimizeOptions::default().checkpoint("x.json", 0),
        MinimizeOptions::default().checkpoint_interval("x.json", f64::NAN),
        MinimizeOptions::default().checkpoint_interval("x.json", -1.0),
    ] {
        assert!(minimize(&START, rosenbrock, &mut Adam::new(0.1), &o).is_err(), "{o:?}");
    }
}
