use diffsim::{models::*, *};
fn main() {
    let prob = Problem::new(Lorenz, vec![1.0, 0.0, 0.0], vec![10.0, 28.0, 8.0 / 3.0], (0.0, 100.0)).unwrap();
    let alg = match std::env::args().nth(1).as_deref() {
        Some("vern7") => Algorithm::Vern7,
        _ => Algorithm::Tsit5,
    };
    let opts = SolveOptions::default().rtol(1e-8).atol(1e-8).saveat_times(vec![100.0]);
    let n: u32 = std::env::args().nth(2).and_then(|s| s.parse().ok()).unwrap_or(200);
    let t = std::time::Instant::now();
    let mut steps = 0;
    for _ in 0..n {
        steps = solve(&prob, alg, &opts).unwrap().stats.naccept;
    }
    println!("{alg} Lorenz {steps} steps {:?} per solve", t.elapsed() / n);
}
