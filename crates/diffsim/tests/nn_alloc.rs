//! The network kernels do not allocate after construction: a counting global allocator
//! watches forward, backward, Jacobian and JVP calls on f64, f32 and duals.

use diffsim::ad::Dual;
use diffsim::nn::{Activation, Init, Mlp};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // Per thread, so the test harness's own threads do not disturb the count.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(|c| c.get())
}

#[test]
fn kernels_do_not_allocate() {
    let net = Mlp::with_hidden(&[4, 32, 32, 4], Activation::Gelu).unwrap();
    let p = net.init_params(Init::GlorotUniform, 1, 1.0);
    let p32: Vec<f32> = p.iter().map(|&v| v as f32).collect();
    let batch = 8;
    let x: Vec<f64> = (0..batch * 4).map(|i| (i as f64 * 0.37).sin()).collect();
    let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
    let mut ws = net.workspace::<f64>(batch);
    let mut ws32 = net.workspace::<f32>(batch);
    let (mut y, mut ybar) = (vec![0.0; batch * 4], vec![1.0; batch * 4]);
    let (mut y32, ybar32) = (vec![0.0f32; batch * 4], vec![1.0f32; batch * 4]);
    let (mut xbar, mut pbar) = (vec![0.0; batch * 4], vec![0.0; net.n_params()]);
    let (mut xbar32, mut pbar32) = (vec![0.0f32; batch * 4], vec![0.0f32; net.n_params()]);
    let mut jac = vec![0.0; 16];
    let mut jv = vec![0.0; 4];
    let xd: Vec<Dual<4>> = (0..4).map(|j| Dual::variable(x[j], j)).collect();
    let pd: Vec<Dual<4>> = p.iter().map(|&v| Dual::constant(v)).collect();
    let mut yd = vec![Dual::<4>::default(); 4];

    let before = allocations();
    for _ in 0..3 {
        net.forward(&p, &x[..4], &mut y[..4]);
        net.forward_const_params(&p, &xd, &mut yd);
        net.forward(&pd, &xd, &mut yd);
        net.forward_ws(&p, &x[..4], &mut y[..4], &mut ws).unwrap();
        net.backward_ws(&p, &ybar[..4], Some(&mut xbar[..4]), Some(&mut pbar), &mut ws).unwrap();
        net.vjp(&p, &x[..4], &mut y[..4], &ybar[..4], None, Some(&mut pbar), &mut ws).unwrap();
        net.forward_batch(&p, &x, &mut y, &mut ws).unwrap();
        net.backward_batch(&p, &ybar, Some(&mut xbar), Some(&mut pbar), &mut ws).unwrap();
        net.jacobian_input(&p, &x[..4], &mut jac, &mut ws).unwrap();
        net.jvp_input(&p, &x[..4], &x[4..8], &mut y[..4], &mut jv, &mut ws).unwrap();
        net.forward_batch(&p32, &x32, &mut y32, &mut ws32).unwrap();
        net.backward_batch(&p32, &ybar32, Some(&mut xbar32), Some(&mut pbar32), &mut ws32).unwrap();
        ybar[0] += 1.0;
    }
    let after = allocations();
    assert_eq!(after - before, 0, "the kernels allocated {} times", after - before);
    // the counter does count: a Vec allocates
    let v = vec![0u8; 16];
    assert_eq!(allocations() - after, 1);
    drop(v);
    assert!(pbar.iter().all(|g| g.is_finite()) && jac.iter().any(|&j| j != 0.0));
}
