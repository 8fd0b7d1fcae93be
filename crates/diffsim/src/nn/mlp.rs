//! The multilayer perceptron: construction, shape, and the generic (any [`Scalar`]) forward
//! pass used inside a model's right-hand side.

use super::simd::{wide, Kernel};
use super::{Activation, Dense, Float, MAX_WIDTH};
use crate::error::{DiffsimError, Result};
use crate::scalar::Scalar;
use std::mem::MaybeUninit;

/// A multilayer perceptron `y = L_k(... L_2(L_1(x)))` with dense layers
/// `L(x) = sigma(W x + b)`.
///
/// All parameters live in one flat vector: for each layer in order, `W` row-major
/// `[out][in]`, then `b` (see [`Dense::weights`], [`Dense::biases`]). The network holds
/// only its shape; parameters are passed to every call, so the same network serves `f64`,
/// `f32` (the [`Float`] kernels) and AD parameter vectors.
///
/// ```
/// use diffsim::nn::{Activation, Init, Mlp};
/// let net = Mlp::with_hidden(&[2, 16, 2], Activation::Tanh).unwrap();
/// assert_eq!(net.n_params(), 2 * 16 + 16 + 16 * 2 + 2);
/// let p = net.init_params(Init::GlorotUniform, 42, 1.0);
/// let mut y = [0.0; 2];
/// net.forward(&p, &[0.5, -1.0], &mut y);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    sizes: Vec<usize>,
    layers: Vec<Dense>,
    n_params: usize,
    /// Widest hidden layer (0 without hidden layers): sizes the stack scratch.
    max_hidden: usize,
}

impl Mlp {
    /// A network with layer widths `sizes` (input first, output last) and one activation
    /// per layer (`activations.len() == sizes.len() - 1`; the last is usually
    /// [`Activation::Identity`]).
    ///
    /// Errors: fewer than two sizes, a zero width, a hidden width above [`MAX_WIDTH`], a
    /// parameter count that overflows, or the wrong number of activations.
    pub fn new(sizes: &[usize], activations: &[Activation]) -> Result<Mlp> {
        if sizes.len() < 2 {
            return Err(DiffsimError::InvalidOption {
                name: "sizes",
                why: format!(
                    "got {} width(s); give at least the input and output widths, e.g. [2, 50, 2]",
                    sizes.len()
                ),
            });
        }
        if let Some(i) = sizes.iter().position(|&s| s == 0) {
            return Err(DiffsimError::InvalidOption {
                name: "sizes",
                why: format!("width {i} is zero in {sizes:?}; every layer needs at least one unit"),
            });
        }
        if activations.len() != sizes.len() - 1 {
            return Err(DiffsimError::SizeMismatch {
                what: "activations (one per layer, sizes.len() - 1)",
                expected: sizes.len() - 1,
                got: activations.len(),
            });
        }
        let hidden = &sizes[1..sizes.len() - 1];
        if let Some(&w) = hidden.iter().find(|&&w| w > MAX_WIDTH) {
            return Err(DiffsimError::InvalidOption {
                name: "sizes",
                why: format!(
                    "hidden width {w} exceeds MAX_WIDTH = {MAX_WIDTH} (the allocation-free forward pass keeps a \
                     layer on the stack); use narrower layers"
                ),
            });
        }
        let mut layers = Vec::with_capacity(activations.len());
        let mut offset = 0usize;
        for (l, &activation) in activations.iter().enumerate() {
            let (n_in, n_out) = (sizes[l], sizes[l + 1]);
            let count = n_in.checked_mul(n_out).and_then(|w| w.checked_add(n_out)).and_then(|c| c.checked_add(offset));
            let Some(next) = count else {
                return Err(DiffsimError::InvalidOption {
                    name: "sizes",
                    why: format!("{sizes:?} has more parameters than fit in memory"),
                });
            };
            layers.push(Dense { n_in, n_out, activation, offset });
            offset = next;
        }
        Ok(Mlp {
            sizes: sizes.to_vec(),
            layers,
            n_params: offset,
            max_hidden: hidden.iter().copied().max().unwrap_or(0),
        })
    }

    /// A network with the same activation on every hidden layer and an identity output.
    pub fn with_hidden(sizes: &[usize], hidden: Activation) -> Result<Mlp> {
        let n = sizes.len().saturating_sub(1);
        let acts: Vec<Activation> = (0..n).map(|l| if l + 1 == n { Activation::Identity } else { hidden }).collect();
        Mlp::new(sizes, &acts)
    }

    /// Length of the flat parameter vector.
    pub fn n_params(&self) -> usize {
        self.n_params
    }
    /// Input width.
    pub fn n_inputs(&self) -> usize {
        self.sizes[0]
    }
    /// Output width.
    pub fn n_outputs(&self) -> usize {
        self.sizes[self.sizes.len() - 1]
    }
    /// Layer widths, input first.
    pub fn sizes(&self) -> &[usize] {
        &self.sizes
    }
    /// The layers, first to last.
    pub fn layers(&self) -> &[Dense] {
        &self.layers
    }

    /// Check a parameter vector's length (once, e.g. when building a model, so that the
    /// panicking [`Mlp::forward`] cannot fail later).
    pub fn check_params(&self, len: usize) -> Result<()> {
        if len != self.n_params {
            return Err(DiffsimError::SizeMismatch { what: "network parameters", expected: self.n_params, got: len });
        }
        Ok(())
    }

    /// Forward pass on any number type, with the parameters in that type too (so duals or a
    /// tape can differentiate with respect to them). Allocation-free: hidden layers live in
    /// stack buffers of at most [`MAX_WIDTH`] numbers each.
    ///
    /// On plain `f64` this runs the float kernel ([`Mlp::forward_float`]); for `f32`, or with
    /// a backward pass to follow, use [`Mlp::forward_float`] or [`Mlp::forward_ws`].
    ///
    /// # Panics
    /// If `params`, `x` or `y` is shorter than [`Mlp::n_params`], [`Mlp::n_inputs`],
    /// [`Mlp::n_outputs`] (like slice indexing: this runs inside a model's `rhs`; check the
    /// parameter length once with [`Mlp::check_params`]).
    #[inline]
    pub fn forward<T: Scalar>(&self, params: &[T], x: &[T], y: &mut [T]) {
        if self.forward_plain_float::<T, T>(params, x, y) {
            return;
        }
        self.forward_dispatch(params, x, y, |w, x| w * x, |b| b)
    }

    /// Forward pass on any number type with plain `f64` parameters: the common case of
    /// differentiating with respect to the input (state) only. `w * x` becomes
    /// [`Scalar::scale`], which for duals skips the product rule.
    ///
    /// # Panics
    /// As [`Mlp::forward`].
    ///
    /// ```
    /// use diffsim::{ad::Dual, nn::{Activation, Init, Mlp}};
    /// let net = Mlp::with_hidden(&[2, 8, 1], Activation::Tanh).unwrap();
    /// let p = net.init_params(Init::GlorotNormal, 1, 1.0);
    /// let x = [Dual::<2>::variable(0.3, 0), Dual::<2>::variable(-0.2, 1)];
    /// let mut y = [Dual::<2>::default()];
    /// net.forward_const_params(&p, &x, &mut y);
    /// // y[0].d is the gradient of the output with respect to the input.
    /// ```
    #[inline]
    pub fn forward_const_params<T: Scalar>(&self, params: &[f64], x: &[T], y: &mut [T]) {
        if self.forward_plain_float::<f64, T>(params, x, y) {
            return;
        }
        self.forward_dispatch(params, x, y, |w, x: T| x.scale(w), T::from_f64)
    }

    /// When everything is a plain `f64`, run the fast float kernel instead of the generic
    /// code: a model's `rhs` on floats (the forward solve) then costs what the kernels cost.
    /// Returns false for other number types.
    #[inline(always)]
    fn forward_plain_float<P: Scalar, T: Scalar>(&self, params: &[P], x: &[T], y: &mut [T]) -> bool {
        if let (Some(p), Some(x), Some(y)) = (P::as_f64s(params), T::as_f64s(x), T::as_f64s_mut(y)) {
            self.forward_float(p, x, y);
            return true;
        }
        false
    }

    /// Forward pass for one input on `f32` or `f64` ([`Float`]), without a workspace: values
    /// only, nothing kept for a backward pass (for that, [`Mlp::forward_ws`]). This is what
    /// [`Mlp::forward`] runs on plain `f64`, and the single-precision forward pass
    /// (`f32` is not a [`Scalar`], so [`Mlp::forward`] does not take it).
    ///
    /// # Panics
    /// As [`Mlp::forward`].
    ///
    /// ```
    /// use diffsim::nn::{Activation, Init, Mlp};
    /// let net = Mlp::with_hidden(&[2, 16, 1], Activation::Tanh).unwrap();
    /// let p = net.init_params(Init::GlorotUniform, 3, 1.0);
    /// let p32: Vec<f32> = p.iter().map(|&w| w as f32).collect();
    /// let (mut y, mut y32) = ([0.0f64], [0.0f32]);
    /// net.forward(&p, &[0.5, -1.0], &mut y);
    /// net.forward_float(&p32, &[0.5, -1.0], &mut y32);
    /// assert!((y[0] - y32[0] as f64).abs() < 1e-5);
    /// ```
    pub fn forward_float<F: Float>(&self, params: &[F], x: &[F], y: &mut [F]) {
        assert!(
            params.len() >= self.n_params && x.len() >= self.n_inputs() && y.len() >= self.n_outputs(),
            "Mlp::forward: need {} params, {} inputs, {} outputs; got {}, {}, {}",
            self.n_params,
            self.n_inputs(),
            self.n_outputs(),
            params.len(),
            x.len(),
            y.len()
        );
        match self.max_hidden {
            0..=16 => wide(ForwardValues::<F, 16> { mlp: self, params, x, y }),
            17..=64 => wide(ForwardValues::<F, 64> { mlp: self, params, x, y }),
            _ => wide(ForwardValues::<F, MAX_WIDTH> { mlp: self, params, x, y }),
        }
    }

    /// The layers through two stack buffers of `W` floats. The buffers start uninitialised
    /// and each layer initialises only the prefix it writes: zeroing two whole buffers cost
    /// as much as a small network's first layer.
    #[inline(always)]
    fn forward_values_in<F: Float, const W: usize>(&self, params: &[F], x: &[F], y: &mut [F]) {
        let mut bufs = [[MaybeUninit::<F>::uninit(); W]; 2];
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            let [even, odd] = &mut bufs;
            // Layer l writes buffer l % 2 and reads buffer (l - 1) % 2, written by layer l - 1.
            let (src_buf, dst_buf) = if l % 2 == 0 { (odd, even) } else { (even, odd) };
            let src: &[F] = if l == 0 {
                x
            } else {
                // SAFETY: layer l - 1 initialised the first n_out(l - 1) = n_in(l) elements.
                unsafe { std::slice::from_raw_parts(src_buf.as_ptr().cast::<F>(), layer.n_in) }
            };
            if l == last {
                layer.forward_values(params, src, y);
            } else {
                layer.forward_values(params, src, zeroed_prefix(dst_buf, layer.n_out));
            }
        }
    }

    /// Pick the smallest stack buffer that fits: zeroing 2 x 256 duals per call would cost
    /// more than a small network's arithmetic.
    #[inline(always)]
    fn forward_dispatch<T: Scalar, P: Copy>(
        &self,
        params: &[P],
        x: &[T],
        y: &mut [T],
        mul: impl Fn(P, T) -> T + Copy,
        lift: impl Fn(P) -> T + Copy,
    ) {
        assert!(
            params.len() >= self.n_params && x.len() >= self.n_inputs() && y.len() >= self.n_outputs(),
            "Mlp::forward: need {} params, {} inputs, {} outputs; got {}, {}, {}",
            self.n_params,
            self.n_inputs(),
            self.n_outputs(),
            params.len(),
            x.len(),
            y.len()
        );
        match self.max_hidden {
            0..=16 => self.forward_stack::<T, P, 16>(params, x, y, mul, lift),
            17..=64 => self.forward_stack::<T, P, 64>(params, x, y, mul, lift),
            _ => self.forward_stack::<T, P, MAX_WIDTH>(params, x, y, mul, lift),
        }
    }

    #[inline(always)]
    fn forward_stack<T: Scalar, P: Copy, const W: usize>(
        &self,
        params: &[P],
        x: &[T],
        y: &mut [T],
        mul: impl Fn(P, T) -> T + Copy,
        lift: impl Fn(P) -> T + Copy,
    ) {
        let mut even = [T::zero(); W];
        let mut odd = [T::zero(); W];
        let last = self.layers.len() - 1;
        for (l, layer) in self.layers.iter().enumerate() {
            // Layer l reads what layer l - 1 wrote; buffers alternate so they never alias.
            let (src, dst): (&[T], &mut [T]) = match (l == 0, l == last, l % 2 == 0) {
                (true, true, _) => (x, &mut *y),
                (true, false, _) => (x, &mut even),
                (false, true, true) => (&odd, &mut *y),
                (false, true, false) => (&even, &mut *y),
                (false, false, true) => (&odd, &mut even),
                (false, false, false) => (&even, &mut odd),
            };
            layer.forward_generic(params, src, dst, mul, lift);
        }
    }
}

struct ForwardValues<'a, F, const W: usize> {
    mlp: &'a Mlp,
    params: &'a [F],
    x: &'a [F],
    y: &'a mut [F],
}

impl<F: Float, const W: usize> Kernel for ForwardValues<'_, F, W> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.mlp.forward_values_in::<F, W>(self.params, self.x, self.y)
    }
}

/// The first `n` elements of `buf`, set to zero and viewed as initialised floats.
#[inline(always)]
fn zeroed_prefix<F: Float>(buf: &mut [MaybeUninit<F>], n: usize) -> &mut [F] {
    let buf = &mut buf[..n];
    for e in buf.iter_mut() {
        e.write(F::zero());
    }
    // SAFETY: all n elements were initialised just above; MaybeUninit<F> has F's layout.
    unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr().cast::<F>(), n) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Init;

    /// Each stack-buffer size (16, 64, MAX_WIDTH) and an odd/even number of layers gives the
    /// same result as the workspace kernel.
    #[test]
    fn every_scratch_bucket_matches_the_kernel() {
        for sizes in [&[3usize, 16, 2][..], &[3, 17, 17, 2][..], &[3, 64, 65, 9, 2][..], &[2, 200, 2][..], &[4, 3][..]]
        {
            let net = Mlp::with_hidden(sizes, Activation::Tanh).unwrap();
            let p = net.init_params(Init::GlorotUniform, 4, 1.0);
            let x: Vec<f64> = (0..net.n_inputs()).map(|i| 0.3 * i as f64 - 0.4).collect();
            let mut y = vec![0.0; net.n_outputs()];
            net.forward(&p, &x, &mut y);
            let mut ws = net.workspace::<f64>(1);
            let mut y_ref = vec![0.0; net.n_outputs()];
            net.forward_ws(&p, &x, &mut y_ref, &mut ws).unwrap();
            for (a, b) in y.iter().zip(&y_ref) {
                assert!((a - b).abs() < 1e-13, "{sizes:?}: {a} vs {b}");
            }
            assert!(y.iter().any(|&v| v != 0.0));
        }
    }
}
