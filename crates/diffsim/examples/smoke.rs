use diffsim::{models::*, *};
fn main() {
    let mut fj = ad::ForwardJacobian::new(2, 1);
    let mut j = vec![0.0; 4];
    let mut dt = vec![0.0; 2];
    fj.evaluate(&VanDerPol, &[2.0, 0.5], &[1000.0], 0.0, &mut j, Some(&mut dt));
    println!("J = {j:?}, dt = {dt:?}");
    let prob = Problem::new(Robertson, vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 1e5)).unwrap();
    for jm in [JacobianMethod::Auto, JacobianMethod::ForwardAd, JacobianMethod::FiniteDiff] {
        let sol =
            solve(&prob, Algorithm::Rodas5P, &SolveOptions::default().rtol(1e-6).atol(1e-10).jacobian(jm)).unwrap();
        println!("{jm:?} {:?} {:?}", sol.retcode, sol.stats);
    }
    let prob = Problem::new(VanDerPol, vec![2.0, 0.0], vec![1000.0], (0.0, 3000.0)).unwrap();
    let mut last = 0.0;
    let mut cnt = 0;
    let mut cb = |t: f64, u: &[f64]| {
        cnt += 1;
        if cnt % 20000 == 0 || cnt < 40 {
            println!("t={t:.6} h={:.3e} u={u:?}", t - last);
        }
        last = t;
        true
    };
    let sol =
        solve_with_callback(&prob, Algorithm::Rodas5P, &SolveOptions::default().rtol(1e-6).atol(1e-6), Some(&mut cb))
            .unwrap();
    println!("{:?}", sol.stats);
}
