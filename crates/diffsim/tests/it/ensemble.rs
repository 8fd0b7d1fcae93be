//! Ensembles: input order, determinism, per-member results.

use diffsim::ensemble::{solve_ensemble, Member};
use diffsim::models::{Robertson, ZooModel};
use diffsim::{solve, Algorithm, Problem, RetCode, SolveOptions};

#[test]
fn ensemble_matches_individual_solves_in_input_order_whatever_the_thread_count() {
    let prob = Problem::new(ZooModel::from(Robertson), vec![1.0, 0.0, 0.0], vec![0.04, 3e7, 1e4], (0.0, 1e3)).unwrap();
    let opts = SolveOptions::default().rtol(1e-6).atol(1e-10).saveat_times(vec![1.0, 1e3]);
    let mut members: Vec<Member> =
        (0..40).map(|i| Member { u0: None, p: Some(vec![0.04 * (1.0 + i as f64 / 10.0), 3e7, 1e4]) }).collect();
    members.push(Member { u0: Some(vec![1.0, 0.0]), p: None }); // bad: wrong size
    members.push(Member { u0: Some(vec![0.5, 0.0, 0.5]), p: None });
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| solve_ensemble(&prob, Algorithm::Rodas5P, &opts, &members))
    };
    let (one, many) = (run(1), run(2));
    assert_eq!(one.len(), members.len());
    for (i, m) in members.iter().enumerate() {
        if i == 40 {
            assert!(one[i].is_err() && many[i].is_err(), "the bad member fails alone");
            continue;
        }
        let single = solve(&prob.remake(m.u0.clone(), m.p.clone()).unwrap(), Algorithm::Rodas5P, &opts).unwrap();
        let (a, b) = (one[i].as_ref().unwrap(), many[i].as_ref().unwrap());
        assert_eq!(a.u_flat(), single.u_flat(), "member {i} in order");
        assert_eq!(a.u_flat(), b.u_flat(), "member {i} deterministic");
        assert_eq!(a.retcode(), RetCode::Success);
    }
}
