//! Integration tests of the `diffsim` binary: the CLI contract of the README, run as a
//! user would run it (a child process, checking exit status, stdout and stderr).

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

const MODELS: [&str; 8] = [
    "lorenz",
    "lotka-volterra",
    "robertson",
    "robertson-dae",
    "van-der-pol",
    "pendulum",
    "brusselator",
    "lv-piecewise",
];
const ALGS: [&str; 8] = ["tsit5", "dp5", "vern7", "bs3", "rosenbrock23", "rodas4", "rodas5p", "auto"];
const PNG_SIGNATURE: [u8; 8] = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];

/// Run `diffsim ARGS...`.
fn diffsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_diffsim"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("could not run the diffsim binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).expect("stderr is UTF-8")
}

/// Run and require success; return stdout.
fn ok(args: &[&str]) -> String {
    let o = diffsim(args);
    assert!(o.status.success(), "diffsim {args:?} failed ({:?}); stderr:\n{}", o.status, stderr(&o));
    stdout(&o)
}

/// Run with `--json` output expected: exactly one line holding one JSON object.
fn json(args: &[&str]) -> serde_json::Map<String, Value> {
    let out = ok(args);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "diffsim {args:?}: expected exactly one line of JSON, got:\n{out}");
    match serde_json::from_str::<Value>(lines[0]) {
        Ok(Value::Object(m)) => m,
        other => panic!("diffsim {args:?}: not a JSON object ({other:?}):\n{out}"),
    }
}

fn keys(m: &serde_json::Map<String, Value>) -> BTreeSet<&str> {
    m.keys().map(String::as_str).collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

fn object<'a>(v: &'a Value, what: &str) -> &'a serde_json::Map<String, Value> {
    v.as_object().unwrap_or_else(|| panic!("{what} is not an object: {v}"))
}

fn numbers(v: &Value, what: &str) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what} is not an array: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap_or_else(|| panic!("{what} holds a non-number: {x}")))
        .collect()
}

fn rows(v: &Value, what: &str) -> Vec<Vec<f64>> {
    v.as_array().unwrap_or_else(|| panic!("{what} is not an array: {v}")).iter().map(|r| numbers(r, what)).collect()
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// Check the full shape of a single-solve JSON object; return (t, u).
fn check_solve_json(m: &serde_json::Map<String, Value>, model: &str, n: usize) -> (Vec<f64>, Vec<Vec<f64>>) {
    assert_eq!(keys(m), set(&["model", "alg", "retcode", "t", "u", "stats", "seconds_median"]), "{m:?}");
    assert_eq!(m["model"], model);
    assert!(m["alg"].is_string());
    let stats = object(&m["stats"], "stats");
    assert_eq!(keys(stats), set(&["nf", "njac", "nlu", "nsteps", "naccept", "nreject"]));
    for (k, v) in stats {
        assert!(v.is_u64(), "stats.{k} is not a non-negative integer: {v}");
    }
    assert_eq!(
        stats["nsteps"].as_u64().unwrap(),
        stats["naccept"].as_u64().unwrap() + stats["nreject"].as_u64().unwrap(),
        "nsteps = naccept + nreject"
    );
    let secs = m["seconds_median"].as_f64().expect("seconds_median is a number");
    assert!(secs.is_finite() && secs >= 0.0, "seconds_median = {secs}");
    let t = numbers(&m["t"], "t");
    let u = rows(&m["u"], "u");
    assert_eq!(u.len(), t.len(), "one row of u per saved time");
    for row in &u {
        assert_eq!(row.len(), n, "each row of u has {n} states");
    }
    (t, u)
}

/// A fresh, unique directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let name = format!(
            "diffsim-cli-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn assert_png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(bytes.len() > PNG_SIGNATURE.len(), "{} is too short ({} bytes)", path.display(), bytes.len());
    assert_eq!(bytes[..8], PNG_SIGNATURE, "{} does not start with the PNG signature", path.display());
}

// ---------------------------------------------------------------------------------------
// models

#[test]
fn models_lists_every_zoo_name() {
    let out = ok(&["models"]);
    let first_words: BTreeSet<&str> = out.lines().filter_map(|l| l.split_whitespace().next()).collect();
    for name in MODELS {
        assert!(first_words.contains(name), "`diffsim models` does not list {name}:\n{out}");
    }
}

// ---------------------------------------------------------------------------------------
// solve --json

#[test]
fn solve_json_lotka_volterra_contract() {
    let base = ["solve", "--model", "lotka-volterra", "--alg", "tsit5", "--saveat", "1", "--json"];
    let m = json(&base);
    let (t, u) = check_solve_json(&m, "lotka-volterra", 2);
    assert_eq!(m["alg"], "tsit5");
    assert_eq!(m["retcode"], "Success");
    assert_eq!(t, (0..=10).map(f64::from).collect::<Vec<_>>());
    assert_eq!(u[0], vec![1.0, 1.0], "u at t = 0 is the default u0");
    assert!(u.iter().flatten().all(|x| x.is_finite() && *x > 0.0), "populations stay positive: {u:?}");

    // The same solve at tight tolerances: the end points agree.
    let tight: Vec<&str> = base.iter().copied().chain(["--rtol", "1e-10", "--atol", "1e-10"]).collect();
    let mt = json(&tight);
    let (tt, ut) = check_solve_json(&mt, "lotka-volterra", 2);
    assert_eq!(tt, t);
    assert_eq!(mt["retcode"], "Success");
    let err = max_abs_diff(&u[10], &ut[10]);
    assert!(err < 1e-4, "u(10) at default tolerances {:?} vs tight {:?}: differ by {err:e}", u[10], ut[10]);
    let steps = |m: &serde_json::Map<String, Value>| m["stats"]["naccept"].as_u64().unwrap();
    assert!(steps(&mt) > steps(&m), "tighter tolerances take more steps");
}

#[test]
fn every_algorithm_solves_van_der_pol_and_agrees() {
    let mut ends: Vec<(&str, Vec<f64>)> = Vec::new();
    for alg in ALGS {
        let m = json(&[
            "solve",
            "--model",
            "van-der-pol",
            "--p",
            "10",
            "--tspan",
            "0,1",
            "--saveat-times",
            "1",
            "--json",
            "--alg",
            alg,
        ]);
        let (t, u) = check_solve_json(&m, "van-der-pol", 2);
        assert_eq!(m["alg"], alg);
        assert_eq!(m["retcode"], "Success", "{alg}");
        assert_eq!(t, vec![1.0], "{alg}");
        ends.push((alg, u[0].clone()));
    }
    let (ref_alg, reference) = &ends[0];
    for (alg, end) in &ends {
        let err = max_abs_diff(end, reference);
        assert!(err < 1e-3, "{alg} ends at {end:?}, {ref_alg} at {reference:?}: differ by {err:e}");
    }
}

#[test]
fn tstops_are_hit_exactly_when_saving_every_step() {
    let m = json(&["solve", "--model", "lorenz", "--tspan", "0,1", "--tstops", "0.3,0.7", "--json"]);
    let (t, _) = check_solve_json(&m, "lorenz", 3);
    assert_eq!(m["retcode"], "Success");
    assert!(t.len() > 4, "saving every step gives many points: {t:?}");
    assert_eq!(t[0], 0.0);
    assert_eq!(*t.last().unwrap(), 1.0);
    assert!(t.windows(2).all(|w| w[0] < w[1]), "t increases: {t:?}");
    for stop in [0.3, 0.7] {
        assert!(t.contains(&stop), "t does not contain the tstop {stop} exactly: {t:?}");
    }
    // A stop outside the span is an error, not silently skipped.
    let o = diffsim(&["solve", "--model", "lorenz", "--tspan", "0,1", "--tstops", "0.3,1.5"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("1.5"), "{}", stderr(&o));
}

#[test]
fn repeat_reports_a_positive_median_time() {
    let m = json(&["solve", "--model", "lotka-volterra", "--repeat", "5", "--json"]);
    check_solve_json(&m, "lotka-volterra", 2);
    let secs = m["seconds_median"].as_f64().unwrap();
    assert!(secs > 0.0 && secs.is_finite(), "seconds_median = {secs}");
}

/// Saving every DT must work whatever the floating-point rounding of T1 / DT.
#[test]
fn saveat_grid_whose_last_point_rounds_past_t1() {
    for (tspan, dt, n) in [("0,0.7", "0.01", 71usize), ("0,0.35", "0.01", 36), ("0,0.63", "0.07", 10)] {
        let m = json(&["solve", "--model", "lorenz", "--tspan", tspan, "--saveat", dt, "--json"]);
        let (t, _) = check_solve_json(&m, "lorenz", 3);
        assert_eq!(t.len(), n, "--tspan {tspan} --saveat {dt}: {t:?}");
        let t1: f64 = tspan.split(',').nth(1).unwrap().parse().unwrap();
        assert_eq!(*t.last().unwrap(), t1);
    }
}

// ---------------------------------------------------------------------------------------
// ensembles

#[test]
fn ensemble_json_contract_and_seed_reproducibility() {
    let args = [
        "solve",
        "--model",
        "robertson",
        "--alg",
        "rodas5p",
        "--tspan",
        "0,10",
        "--ensemble",
        "20",
        "--seed",
        "3",
        "--json",
    ];
    let a = json(&args);
    assert_eq!(keys(&a), set(&["model", "alg", "ensemble", "retcodes", "stats", "seconds_median"]), "{a:?}");
    assert_eq!(a["model"], "robertson");
    assert_eq!(a["alg"], "rodas5p");
    assert_eq!(a["ensemble"], 20);
    assert_eq!(a["retcodes"], serde_json::json!({"Success": 20}));
    assert_eq!(keys(object(&a["stats"], "stats")), set(&["nf", "njac", "nlu", "nsteps", "naccept", "nreject"]));
    assert!(a["stats"]["naccept"].as_u64().unwrap() >= 20, "every member takes steps");
    assert!(a["seconds_median"].as_f64().unwrap() >= 0.0);

    let b = json(&args);
    assert_eq!(a["stats"], b["stats"], "the same seed gives the same work");
    assert_eq!(a["retcodes"], b["retcodes"]);
}

// ---------------------------------------------------------------------------------------
// plots

#[test]
fn plot_writes_a_png() {
    let dir = TempDir::new("plot");
    let path = dir.path().join("lv.png");
    let path_str = path.to_str().expect("temp path is UTF-8");
    ok(&["solve", "--model", "lotka-volterra", "--plot", path_str]);
    assert_png(&path);
}

#[test]
fn demo_trains_the_ude_and_writes_its_plots() {
    let dir = TempDir::new("demo");
    let out = dir.path().join("plots"); // demo creates the directory itself
    let out_str = out.to_str().expect("temp path is UTF-8");
    let text = ok(&["demo", "--out", out_str]);
    assert!(text.contains("the network's interaction terms along the data"), "demo reports what was learned:\n{text}");
    // The equations recovered from the network: the known linear terms plus one x y term
    // each, with the true coefficients (0.9 and 0.8) to about 1 %, and an extrapolation
    // that stays on the truth.
    let printed = |prefix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix)?.strip_suffix(" x y")?.parse().ok())
            .unwrap_or_else(|| panic!("no printed equation '{prefix}... x y' in:\n{text}"))
    };
    let (beta, gamma) = (printed("x' = 1.3 x - "), printed("y' = -1.8 y + "));
    assert!((beta - 0.9).abs() < 0.01 && (gamma - 0.8).abs() < 0.01, "{beta} {gamma}\n{text}");
    let extrapolation: f64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("recovered equations")?.trim().strip_suffix('%')?.trim().parse().ok())
        .expect("the recovered equations' extrapolation error");
    assert!(extrapolation < 1.0, "{extrapolation} %\n{text}");
    for name in ["lv-ude-fit.png", "lv-ude-loss.png", "lv-ude-terms.png"] {
        assert_png(&out.join(name));
    }
    let params: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("lv-ude-params.json")).unwrap()).unwrap();
    assert_eq!(params["params"].as_array().map(|a| a.len()), Some(87));
    let eqs: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("lv-ude-equations.json")).unwrap()).unwrap();
    let terms = eqs["terms"].as_array().expect("terms");
    assert_eq!(terms.len(), 2, "{eqs}");
    assert_eq!((&terms[0]["term"], &terms[1]["term"]), (&Value::from("x y"), &Value::from("x y")), "{eqs}");
    assert!((terms[0]["coefficient"].as_f64().unwrap() + 0.9).abs() < 0.01, "{eqs}");
    assert!((terms[1]["coefficient"].as_f64().unwrap() - 0.8).abs() < 0.01, "{eqs}");
}

/// The `train --json` contract: exactly these keys, a loss that went down, and a resume
/// from the checkpoint the run left.
#[test]
fn train_json_contract_and_resume() {
    let dir = TempDir::new("train");
    let out_str = dir.path().to_str().expect("temp path is UTF-8");
    let v = json(&["train", "--example", "spiral", "--iters", "60", "--out", out_str, "--json"]);
    let mut keys: Vec<&str> = v.keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["example", "final_loss", "grad_evals", "initial_loss", "iters", "seconds", "seconds_per_grad", "sensealg"]
    );
    assert_eq!(v["example"], "spiral");
    assert_eq!(v["iters"], 60);
    assert_eq!(v["sensealg"], "discrete");
    assert!(v["final_loss"].as_f64().unwrap() < v["initial_loss"].as_f64().unwrap() / 10.0);
    for name in ["spiral-fit.png", "spiral-loss.png"] {
        assert_png(&dir.path().join(name));
    }
    let ckpt = dir.path().join("spiral-checkpoint.json");
    let ckpt_str = ckpt.to_str().unwrap();
    let resumed =
        json(&["train", "--example", "spiral", "--iters", "80", "--out", out_str, "--resume", ckpt_str, "--json"]);
    assert_eq!(resumed["iters"], 80);
    assert!(resumed["final_loss"].as_f64().unwrap() <= v["final_loss"].as_f64().unwrap());
}

// ---------------------------------------------------------------------------------------
// bad arguments

/// Each exits non-zero with one line on stderr and no panic trace.
#[test]
fn bad_arguments_fail_with_one_line() {
    let cases: &[&[&str]] = &[
        &["solve", "--model", "nope"],
        &["train", "--example", "nope"],
        &["train", "--example", "spiral", "--sensealg", "nope"],
        &["train", "--example", "spiral", "--rtol", "0"],
        &["train", "--example", "spiral", "--resume", "/nonexistent/ckpt.json"],
        &["solve", "--model", "lorenz", "--alg", "nope"],
        &["solve", "--model", "lorenz", "--u0", "1,2"],
        &["solve", "--model", "lorenz", "--tspan", "1,1"],
        &["solve", "--model", "lorenz", "--tspan", "0,1", "--rtol", "-1"],
        &["solve", "--model", "lorenz", "--tspan", "0,1", "--rtol=-1"],
        &["solve", "--model", "lorenz", "--tspan", "0,1", "--saveat-times", "5"],
        &["solve", "--model", "lotka-volterra", "--u0", "1,x"],
        &["solve", "--model", "lorenz", "--tspan", "0,1", "--bogus-flag"],
        &["solve", "--model", "lorenz", "--tspan", "0,1", "--repeat", "0"],
        &["no-such-command"],
    ];
    for args in cases {
        for json_flag in [false, true] {
            let mut args = args.to_vec();
            if json_flag && args[0] == "solve" {
                args.push("--json");
            }
            let o = diffsim(&args);
            let err = stderr(&o);
            assert!(!o.status.success(), "diffsim {args:?} should fail; stdout:\n{}", stdout(&o));
            assert!(o.status.code().is_some(), "diffsim {args:?} was killed by a signal");
            assert_eq!(err.lines().count(), 1, "diffsim {args:?}: expected one line on stderr, got:\n{err}");
            assert!(!err.trim().is_empty(), "diffsim {args:?}: empty error line");
            assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "diffsim {args:?} panicked:\n{err}");
            assert!(stdout(&o).trim().is_empty(), "diffsim {args:?}: nothing on stdout, got:\n{}", stdout(&o));
        }
    }
}

#[test]
fn bad_argument_messages_name_the_problem() {
    let msg = |args: &[&str]| stderr(&diffsim(args));
    assert!(msg(&["solve", "--model", "nope"]).contains("nope"));
    assert!(msg(&["solve", "--model", "lorenz", "--alg", "nope"]).contains("nope"));
    assert!(msg(&["solve", "--model", "lotka-volterra", "--u0", "1,x"]).contains("'x'"));
    assert!(msg(&["solve", "--model", "lorenz", "--repeat", "0"]).contains("--repeat"));
    assert!(msg(&["solve", "--model", "lorenz", "--tspan", "0"]).contains("--tspan"));
}

/// Lists take spaces and exponents; spans too.
#[test]
fn lists_and_spans_parse() {
    let m = json(&["solve", "--model", "lorenz", "--u0", "1, 2.5,-3e2", "--tspan", "0,1e-3", "--json"]);
    let u = rows(&m["u"], "u");
    assert_eq!(u[0], vec![1.0, 2.5, -300.0]);
    assert_eq!(numbers(&m["t"], "t").last().copied(), Some(1e-3));
}

/// Models with events: `solve --json` lists them as `{"t", "index"}` objects (other models'
/// objects have no such key); `grad` works with the forward methods and the adjoints, with
/// explicit and stiff solvers, and agrees with central differences.
#[test]
fn events_in_solve_json_and_grad() {
    let m = json(&["solve", "--model", "pk-oral", "--saveat", "12", "--json"]);
    let times: Vec<f64> =
        m["events"].as_array().expect("an events array").iter().map(|e| e["t"].as_f64().unwrap()).collect();
    assert_eq!(times, [0.0, 12.0, 24.0, 36.0, 48.0, 60.0]);
    assert!(m["events"].as_array().unwrap().iter().all(|e| keys(object(e, "event")) == set(&["t", "index"])));
    assert!(!json(&["solve", "--model", "lorenz", "--tspan", "0,1", "--json"]).contains_key("events"));
    let args = ["grad", "--model", "thermostat", "--tspan", "0,6", "--rtol", "1e-11", "--atol", "1e-11"];
    for (sensealg, alg) in
        [("forward", "tsit5"), ("forward-ad", "tsit5"), ("interpolating", "tsit5"), ("discrete", "rodas5p")]
    {
        let g = json(&[&args[..], &["--sensealg", sensealg, "--alg", alg, "--json", "--check"]].concat());
        let max = g["check"]["max_rel_err"].as_f64().expect("max_rel_err is a number");
        assert!(max < 1e-5, "{sensealg}: max_rel_err {max}");
    }
    // The absorption and elimination rates fitted back through the doses, observing the
    // central compartment only, by single and multiple shooting.
    let dir = TempDir::new("pk");
    let csv = dir.path().join("pk.csv");
    let csv = csv.to_str().unwrap();
    ok(&["solve", "--model", "pk-oral", "--saveat", "2", "--rtol", "1e-10", "--atol", "1e-10", "--csv", csv]);
    let central: String = std::fs::read_to_string(csv)
        .unwrap()
        .lines()
        .skip(1)
        .map(|row| row.split(',').collect::<Vec<_>>())
        .filter(|cells| cells[0] != "0.0")
        .map(|cells| format!("{},{}\n", cells[0], cells[2]))
        .collect();
    std::fs::write(csv, format!("t,central\n{central}")).unwrap();
    for strategy in ["single", "multiple-shooting"] {
        let m = json(&[
            "fit",
            "--model",
            "pk-oral",
            "--data",
            csv,
            "--observe",
            "1",
            "--p0",
            "0.3,0.5",
            "--lower",
            "0.01,0.01",
            "--upper",
            "10,5",
            "--rtol",
            "1e-10",
            "--atol",
            "1e-10",
            "--strategy",
            strategy,
            "--json",
        ]);
        let p = numbers(&m["p"], "p");
        assert!((p[0] - 1.0).abs() < 1e-5 && (p[1] - 0.2).abs() < 1e-6, "{strategy}: {p:?}");
    }
}

/// `diffsim grad --check` adds exactly one key to the JSON, the reference in the order
/// grad_p then grad_u0, and a small error for a right gradient; text output gets the table.
#[test]
fn grad_check_reports_central_differences() {
    let args = ["grad", "--model", "lotka-volterra", "--tspan", "0,1", "--rtol", "1e-10", "--atol", "1e-10"];
    let plain = json(&[&args[..], &["--json"]].concat());
    let g = json(&[&args[..], &["--json", "--check"]].concat());
    let mut expected = keys(&plain);
    expected.insert("check");
    assert_eq!(keys(&g), expected);
    let check = object(&g["check"], "check");
    assert_eq!(keys(check), set(&["fd", "max_rel_err", "rel_err"]));
    let fd = numbers(&check["fd"], "fd");
    let grad: Vec<f64> = [numbers(&g["grad_p"], "grad_p"), numbers(&g["grad_u0"], "grad_u0")].concat();
    assert_eq!((fd.len(), numbers(&check["rel_err"], "rel_err").len()), (6, 6));
    for (x, y) in grad.iter().zip(&fd) {
        assert!((x - y).abs() < 1e-6 * y.abs().max(1.0), "{grad:?} vs {fd:?}");
    }
    let max = check["max_rel_err"].as_f64().expect("max_rel_err is a number");
    assert!(max < 1e-6, "max_rel_err {max}");
    let text = ok(&[&args[..], &["--check"]].concat());
    assert!(text.contains("u0[1]") && text.contains("max relative error"), "{text}");
    assert!(!ok(&args).contains("max relative error"));
}

/// `diffsim grad --json` keeps its contract, and its dL/dp agrees with central differences
/// of the loss computed from `diffsim solve --json` at tight tolerance.
#[test]
fn grad_json_contract_and_finite_differences() {
    let common =
        ["--model", "lotka-volterra", "--tspan", "0,2", "--saveat", "0.5", "--rtol", "1e-11", "--atol", "1e-11"];
    let mut args = vec!["grad"];
    args.extend_from_slice(&common);
    args.extend_from_slice(&["--loss", "sumsq", "--json"]);
    let g = json(&args);
    assert_eq!(keys(&g), set(&["loss", "grad_p", "grad_u0", "sensealg", "vjp", "stats", "seconds_median"]));
    assert_eq!(g["sensealg"], "forward-ad");
    let grad_p = numbers(&g["grad_p"], "grad_p");
    assert_eq!((grad_p.len(), numbers(&g["grad_u0"], "grad_u0").len()), (4, 2));
    let loss_at = |p0: f64| {
        let p = format!("{p0},1,3,1");
        let mut a = vec!["solve"];
        a.extend_from_slice(&common);
        a.extend_from_slice(&["--alg", "vern7", "--p", &p, "--json"]);
        let m = json(&a);
        rows(&m["u"], "u").iter().flatten().map(|x| 0.5 * x * x).sum::<f64>()
    };
    let h = 1e-5;
    let fd = (loss_at(1.5 + h) - loss_at(1.5 - h)) / (2.0 * h);
    assert!((grad_p[0] - fd).abs() < 1e-5 * fd.abs().max(1.0), "{} vs {fd}", grad_p[0]);
    assert!((g["loss"].as_f64().unwrap() - loss_at(1.5)).abs() < 1e-8);
    // Every method by name agrees with the default's gradient; unknown names fail cleanly.
    let every =
        ["forward", "interpolating", "checkpointing", "quadrature", "backsolve", "discrete", "discrete-checkpointing"];
    for (i, sensealg) in every.into_iter().enumerate() {
        let mut a = args.clone();
        a.extend_from_slice(&["--sensealg", sensealg]);
        // Every VJP method by name too, one per sensealg in turn.
        let vjp = ["forward", "tape", "compiled-tape", "finite"][i % 4];
        if sensealg != "forward" {
            a.extend_from_slice(&["--vjp", vjp]);
        }
        let m = json(&a);
        assert_eq!(m["sensealg"], sensealg);
        assert_eq!(m["vjp"], if sensealg == "forward" { "none" } else { vjp });
        let other = numbers(&m["grad_p"], "grad_p");
        for (x, y) in other.iter().zip(&grad_p) {
            assert!((x - y).abs() < 1e-6 * y.abs().max(1.0), "{sensealg}: {other:?} vs {grad_p:?}");
        }
    }
    let o = diffsim(&["grad", "--model", "lorenz", "--sensealg", "nope"]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).lines().count(), 1);
    let o = diffsim(&["grad", "--model", "lorenz", "--vjp", "nope"]);
    assert!(!o.status.success());
    assert_eq!(stderr(&o).lines().count(), 1);
}

/// `solve --csv` writes data that `fit --data` reads; the fit from [9, 20, 2] recovers the
/// Lorenz parameters by every strategy and by bobyqa and lbfgs, and `--json` prints exactly
/// the pinned keys and `stderr`.
#[test]
fn fit_recovers_lorenz_parameters_from_a_solve_written_as_csv() {
    let dir = TempDir::new("fit");
    let csv = dir.path().join("lorenz.csv");
    let csv = csv.to_str().unwrap();
    ok(&[
        "solve", "--model", "lorenz", "--u0", "1,0,0", "--tspan", "0,3", "--saveat", "0.01", "--alg", "vern7",
        "--rtol", "1e-12", "--atol", "1e-12", "--csv", csv,
    ]);
    let png = dir.path().join("fit.png");
    let common = [
        "fit", "--model", "lorenz", "--data", csv, "--u0", "1,0,0", "--t0", "0", "--p0", "9,20,2", "--lower", "9,20,2",
        "--upper", "11,30,3", "--rtol", "1e-10", "--atol", "1e-10", "--json",
    ];
    let mut args = common.to_vec();
    args.extend(["--plot", png.to_str().unwrap()]);
    let m = json(&args);
    let pinned = ["model", "strategy", "optimizer", "p", "loss", "iters", "seconds", "converged"];
    let mut with_stderr = pinned.to_vec();
    with_stderr.push("stderr");
    assert_eq!(keys(&m), set(&with_stderr), "{m:?}");
    assert_eq!((m["strategy"].as_str(), m["optimizer"].as_str()), (Some("single"), Some("lm")));
    assert_eq!(m["converged"], true);
    let p = numbers(&m["p"], "p");
    for (a, b) in p.iter().zip([10.0, 28.0, 8.0 / 3.0]) {
        assert!(((a - b) / b).abs() < 1e-6, "{p:?}");
    }
    assert_eq!(numbers(&m["stderr"], "stderr").len(), 3);
    assert_eq!(std::fs::read(&png).unwrap()[..8], PNG_SIGNATURE);
    // Collocation then shooting: the same answer.
    let mut args = common.to_vec();
    args.extend(["--strategy", "collocation", "--kernel", "tricube"]);
    let m = json(&args);
    assert_eq!(m["strategy"], "collocation");
    for (a, b) in numbers(&m["p"], "p").iter().zip([10.0, 28.0, 8.0 / 3.0]) {
        assert!(((a - b) / b).abs() < 1e-6, "{m:?}");
    }
    // The prediction error method, the gain annealed to 0: the same answer.
    let mut args = common.to_vec();
    args.extend(["--strategy", "pem", "--gain", "5", "--stages", "3"]);
    let m = json(&args);
    for (a, b) in numbers(&m["p"], "p").iter().zip([10.0, 28.0, 8.0 / 3.0]) {
        assert!(((a - b) / b).abs() < 1e-6, "{m:?}");
    }
    // Growing windows, and minibatches of windows then the whole series: the same answer.
    for extra in [["--windows", "3"], ["--steps", "50"]] {
        let mut args = common.to_vec();
        args.extend(["--strategy", if extra[0] == "--windows" { "growing" } else { "minibatch" }]);
        args.extend(extra);
        for (a, b) in numbers(&json(&args)["p"], "p").iter().zip([10.0, 28.0, 8.0 / 3.0]) {
            assert!(((a - b) / b).abs() < 1e-6, "{args:?}");
        }
    }
    // The profile likelihood of beta: a table of 21 values and the interval (its values are
    // tested on noisy data in the library; these data are exact).
    let mut args: Vec<&str> = common.iter().copied().filter(|a| *a != "--json").collect();
    args.extend(["--profile", "beta"]);
    let text = ok(&args);
    let rows = text.lines().skip_while(|l| !l.starts_with("profile likelihood of beta")).skip(2);
    assert_eq!(rows.take_while(|l| !l.starts_with("95%")).count(), 21, "{text}");
    assert!(text.contains("95% likelihood-ratio interval: ["), "{text}");
    // Derivative-free BOBYQA, and a gradient optimizer with a strategy: the same answer
    // and keys.
    for extra in [["--optimizer", "bobyqa", "--strategy", "single"], ["--optimizer", "lbfgs", "--strategy", "growing"]]
    {
        let mut args = common.to_vec();
        args.extend(extra);
        let m = json(&args);
        assert_eq!(keys(&m), set(&with_stderr), "{m:?}");
        assert_eq!((m["optimizer"].as_str(), m["converged"].as_bool()), (Some(extra[1]), Some(true)));
        for (a, b) in numbers(&m["p"], "p").iter().zip([10.0, 28.0, 8.0 / 3.0]) {
            assert!(((a - b) / b).abs() < 1e-6, "{m:?}");
        }
    }
}

/// Bad data files and flags end with a one-line message naming the problem, never a panic.
#[test]
fn fit_rejects_bad_files_and_flags_with_a_message() {
    let dir = TempDir::new("fit-bad");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let cases = [
        (write("empty.csv", ""), vec![], "empty.csv:0:0: the file is empty"),
        (write("text.csv", "t,x,y,z\n0,1,0,0\n0.1,1,oops,0\n"), vec![], "text.csv:3:3: 'oops' is not a number"),
        (write("order.csv", "t,x,y,z\n0.2,1,0,0\n0.1,1,0,0\n"), vec![], "order.csv:3:1: time 0.1"),
        (write("fields.csv", "t,x,y,z\n0.2,1,0\n"), vec![], "fields.csv:2:4: 3 fields"),
        (write("few.csv", "t,x\n0.5,1\n"), vec!["--observe", "0"], "at least as many measurements as parameters"),
        (write("ok.csv", "t,x,y,z\n0.5,1,0,0\n1,1,0,0\n"), vec!["--optimizer", "bfgs2"], "unknown --optimizer"),
        (write("ok2.csv", "t,x,y,z\n0.5,1,0,0\n1,1,0,0\n"), vec!["--strategy", "shooting"], "unknown --strategy"),
        (
            write("ok7.csv", "t,x,y,z\n0.5,1,0,0\n1,1,0,0\n"),
            vec!["--lr", "0.1"],
            "--lr belongs to --optimizer adam or --strategy minibatch",
        ),
        (write("ok11.csv", "t,x,y,z\n0.5,1,0,0\n1,1,0,0\n"), vec!["--window", "5"], "belong to --strategy minibatch"),
        (write("ok10.csv", "t,x,y,z\n0.5,1,0,0\n1,1,0,0\n"), vec!["--fit-gain"], "belong to --strategy pem"),
        (write("ok8.csv", "t,x,y,z\n0.5,1,0,0\n1,1,0,0\n"), vec!["--profile", "gamma"], "neither a parameter"),
        (write("ok9.csv", "t,x,y,z\n0.5,1,0,0\n1,1,0,0\n"), vec!["--profile", "rho", "--json"], "drop --json"),
        (
            write("ok5.csv", "t,x,y,z\n0.5,1,0,0\n1,1,0,0\n"),
            vec!["--group-size", "4"],
            "belong to --strategy multiple-shooting",
        ),
        (
            write("ok6.csv", "t,x,y,z\n0.5,1,0,0\n1,1,0,0\n"),
            vec!["--strategy", "collocation", "--kernel", "boxcar"],
            "unknown kernel 'boxcar'",
        ),
        (write("ok3.csv", "t,x,y,z\n0.5,1,0,0\n1,1,0,0\n"), vec!["--lower", "1,2"], "--lower has 2 values; give 3"),
        (write("ok4.csv", "t,x,y,z\n0.5,1,0,0\n1,1,0,0\n"), vec!["--observe", "0,7,1"], "state 7 does not exist"),
    ];
    for (path, extra, want) in cases {
        let mut args = vec!["fit", "--model", "lorenz", "--data", path.as_str()];
        args.extend(extra);
        let o = diffsim(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: expected '{want}' in:\n{err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line expected:\n{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// `diffsim shadow` prints exactly `{"method", "param", "dJdp", "seconds"}`; every method
/// gives Lorenz's d<z>/d rho near 1 (the two LSS forms agree to rounding); `--plot` writes
/// the naive derivative's growth; bad methods, directions and parameters are errors that
/// say what to use.
#[test]
fn shadow_prints_d_mean_z_d_rho_near_one() {
    let dir = TempDir::new("shadow");
    let png = dir.path().join("naive.png");
    let mut found = Vec::new();
    for method in ["lss", "adjoint-lss", "nilss"] {
        let mut args = vec!["shadow", "--model", "lorenz", "--method", method, "--param", "rho", "--json"];
        if method == "lss" {
            args.extend(["--plot", png.to_str().unwrap()]);
        }
        let m = json(&args);
        assert_eq!(keys(&m), set(&["method", "param", "dJdp", "seconds"]), "{m:?}");
        assert_eq!((m["method"].as_str(), m["param"].as_str()), (Some(method), Some("rho")));
        let d = m["dJdp"].as_f64().expect("dJdp is a number");
        assert!((d - 1.01).abs() < 0.05, "{method}: {d}");
        found.push(d);
    }
    assert!((found[0] - found[1]).abs() < 1e-8 && (found[0] - found[2]).abs() < 0.05, "{found:?}");
    assert_eq!(std::fs::read(&png).unwrap()[..8], PNG_SIGNATURE);
    let o = diffsim(&["shadow", "--method", "nilss", "--unstable", "3"]);
    assert!(!o.status.success() && stderr(&o).contains("unstable directions"), "{}", stderr(&o));
    let o = diffsim(&["shadow", "--method", "nils"]);
    assert!(!o.status.success() && stderr(&o).contains("lss, adjoint-lss or nilss"), "{}", stderr(&o));
    let o = diffsim(&["shadow", "--param", "gamma"]);
    assert!(!o.status.success() && stderr(&o).contains("sigma, rho, beta"), "{}", stderr(&o));
}

/// `diffsim surrogate --example robertson --json` prints exactly the pinned keys, a held-out
/// error well below a percent, and writes its plot; other examples are errors.
#[test]
fn surrogate_predicts_robertson_at_held_out_rates() {
    let dir = TempDir::new("surrogate");
    let png = dir.path().join("surrogate.png");
    let m = json(&[
        "surrogate",
        "--example",
        "robertson",
        "--train",
        "30",
        "--test",
        "5",
        "--json",
        "--plot",
        png.to_str().unwrap(),
    ]);
    let pinned = ["example", "train", "test", "max_rel_error", "median_rel_error", "seconds_train", "speedup"];
    assert_eq!(keys(&m), set(&pinned), "{m:?}");
    assert_eq!(
        (m["example"].as_str(), m["train"].as_u64(), m["test"].as_u64()),
        (Some("robertson"), Some(30), Some(5))
    );
    let (median, max) = (m["median_rel_error"].as_f64().unwrap(), m["max_rel_error"].as_f64().unwrap());
    assert!(median < 1e-3 && max < 0.05, "{m:?}");
    assert!(m["speedup"].as_f64().unwrap() > 0.0 && m["seconds_train"].as_f64().unwrap() > 0.0);
    assert_eq!(std::fs::read(&png).unwrap()[..8], PNG_SIGNATURE);
    let o = diffsim(&["surrogate", "--example", "pollu"]);
    assert!(!o.status.success() && stderr(&o).contains("robertson"), "{}", stderr(&o));
}
