//! Fast `f32`/`f64` kernels with a caller-owned workspace: forward (single and batch),
//! vector-Jacobian products (backward), the input Jacobian and the input JVP.
//!
//! The workspace is built once ([`Mlp::workspace`]); afterwards no call allocates. The
//! forward pass stores, per layer, the activations `a_l` and the activation derivatives
//! `sigma'(z_l)`, which is all the backward pass needs:
//!
//! ```text
//! delta_L = y_bar * sigma'(z_L)
//! W_bar_l += delta_l^T a_{l-1},   b_bar_l += sum_batch delta_l
//! delta_{l-1} = (delta_l W_l) * sigma'(z_{l-1}),   x_bar += delta_1 W_1
//! ```

use super::fused::{self, Kept};
use super::simd::{wide, Kernel};
use super::{Float, Mlp};
use crate::error::{DiffsimError, Result};

/// Scratch space for the float kernels of one [`Mlp`] shape and up to `max_batch` inputs.
///
/// Holds the stored forward pass between [`Mlp::forward_batch`] and
/// [`Mlp::backward_batch`]; a later forward (or [`Mlp::jacobian_input`],
/// [`Mlp::jvp_input`]) overwrites it.
#[derive(Clone, Debug)]
pub struct MlpWorkspace<F> {
    sizes: Vec<usize>,
    max_batch: usize,
    /// Batch size of the stored forward pass (`None` before the first forward).
    stored: Option<usize>,
    x: Vec<F>,
    /// Activations of every layer, layer `l` at `max_batch * (sum of earlier widths)`.
    a: Vec<F>,
    /// `sigma'(z)`, laid out like `a`.
    da: Vec<F>,
    layer_offsets: Vec<usize>,
    delta: [Vec<F>; 2],
    tangent: [Vec<F>; 2],
}

impl<F: Float> MlpWorkspace<F> {
    /// A workspace for `mlp` and batches of up to `max_batch` inputs.
    pub fn new(mlp: &Mlp, max_batch: usize) -> Self {
        let sizes = mlp.sizes().to_vec();
        let widest = sizes.iter().copied().max().unwrap_or(0);
        let mut layer_offsets = Vec::with_capacity(sizes.len() - 1);
        let mut total = 0;
        for &w in &sizes[1..] {
            layer_offsets.push(total);
            total += max_batch * w;
        }
        let zeros = |n: usize| vec![F::zero(); n];
        MlpWorkspace {
            max_batch,
            stored: None,
            x: zeros(max_batch * sizes[0]),
            a: zeros(total),
            da: zeros(total),
            layer_offsets,
            delta: [zeros(max_batch * widest), zeros(max_batch * widest)],
            tangent: [zeros(widest * sizes[0]), zeros(widest * sizes[0])],
            sizes,
        }
    }

    /// The largest batch this workspace holds.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// Batch size of the stored forward pass, if any.
    pub fn stored_batch(&self) -> Option<usize> {
        self.stored
    }

    /// The stored activations of layer `l` (`[batch][width_l]`), empty before a forward.
    pub fn activations(&self, l: usize) -> &[F] {
        match (self.stored, self.layer_offsets.get(l)) {
            (Some(b), Some(&o)) => &self.a[o..o + b * self.sizes[l + 1]],
            _ => &[],
        }
    }
}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected != got {
        return Err(DiffsimError::SizeMismatch { what, expected, got });
    }
    Ok(())
}

impl Mlp {
    /// A workspace for the float kernels with room for `max_batch` inputs
    /// (same as [`MlpWorkspace::new`]).
    pub fn workspace<F: Float>(&self, max_batch: usize) -> MlpWorkspace<F> {
        MlpWorkspace::new(self, max_batch)
    }

    fn check_ws<F>(&self, ws: &MlpWorkspace<F>, batch: usize) -> Result<()> {
        if ws.sizes != self.sizes() {
            return Err(DiffsimError::InvalidOption {
                name: "workspace",
                why: format!(
                    "it was built for a network of sizes {:?}, not {:?}; create one with mlp.workspace(batch)",
                    ws.sizes,
                    self.sizes()
                ),
            });
        }
        if batch > ws.max_batch {
            return Err(DiffsimError::InvalidOption {
                name: "workspace",
                why: format!(
                    "batch {batch} exceeds its capacity {}; create it with mlp.workspace({batch})",
                    ws.max_batch
                ),
            });
        }
        Ok(())
    }

    /// Forward pass for one input, storing what [`Mlp::backward_ws`] needs.
    pub fn forward_ws<F: Float>(&self, params: &[F], x: &[F], y: &mut [F], ws: &mut MlpWorkspace<F>) -> Result<()> {
        check_len("network input", self.n_inputs(), x.len())?;
        self.forward_batch(params, x, y, ws)
    }

    /// Forward pass for a batch: `x` is `[batch][n_in]` row-major, `y` is `[batch][n_out]`;
    /// the batch size is `x.len() / n_in`. Stores what [`Mlp::backward_batch`] needs.
    pub fn forward_batch<F: Float>(&self, params: &[F], x: &[F], y: &mut [F], ws: &mut MlpWorkspace<F>) -> Result<()> {
        let (n_in, n_out) = (self.n_inputs(), self.n_outputs());
        let batch = x.len() / n_in;
        check_len("network parameters", self.n_params(), params.len())?;
        check_len("batched network input (batch * n_inputs)", batch * n_in, x.len())?;
        check_len("batched network output (batch * n_outputs)", batch * n_out, y.len())?;
        self.check_ws(ws, batch)?;
        self.forward_store(params, x, batch, ws);
        let last = *ws.layer_offsets.last().expect("an Mlp has at least one layer");
        y.copy_from_slice(&ws.a[last..last + batch * n_out]);
        Ok(())
    }

    /// The checked-free core of the forward pass: fills the workspace for `batch` inputs.
    #[inline]
    pub(crate) fn forward_store<F: Float>(&self, params: &[F], x: &[F], batch: usize, ws: &mut MlpWorkspace<F>) {
        wide(ForwardStore { mlp: self, params, x, batch, ws })
    }

    #[inline(always)]
    fn forward_store_body<F: Float>(&self, params: &[F], x: &[F], batch: usize, ws: &mut MlpWorkspace<F>) {
        ws.x[..batch * self.n_inputs()].copy_from_slice(x);
        for (l, layer) in self.layers().iter().enumerate() {
            let off = ws.layer_offsets[l];
            let (before, rest) = ws.a.split_at_mut(off);
            let input = if l == 0 { &ws.x[..] } else { &before[ws.layer_offsets[l - 1]..] };
            layer.forward_batch(params, input, rest, &mut ws.da[off..], batch);
        }
        ws.stored = Some(batch);
    }

    /// Vector-Jacobian product for the single input of the last [`Mlp::forward_ws`]:
    /// ACCUMULATES `x_bar += (dy/dx)^T y_bar` and `p_bar += (dy/dp)^T y_bar` (pass `None`
    /// for a gradient you do not need). Accumulation lets an adjoint sum over stages.
    pub fn backward_ws<F: Float>(
        &self,
        params: &[F],
        ybar: &[F],
        xbar: Option<&mut [F]>,
        pbar: Option<&mut [F]>,
        ws: &mut MlpWorkspace<F>,
    ) -> Result<()> {
        if ws.stored != Some(1) {
            return Err(DiffsimError::InvalidOption {
                name: "workspace",
                why: format!("backward_ws needs a single-input forward_ws first (stored batch: {:?})", ws.stored),
            });
        }
        self.backward_batch(params, ybar, xbar, pbar, ws)
    }

    /// Batched vector-Jacobian product for the batch of the last [`Mlp::forward_batch`]:
    /// `ybar` and `xbar` are `[batch][n]` row-major; `p_bar` accumulates the sum over the
    /// batch. Accumulates (`+=`) like [`Mlp::backward_ws`].
    pub fn backward_batch<F: Float>(
        &self,
        params: &[F],
        ybar: &[F],
        xbar: Option<&mut [F]>,
        pbar: Option<&mut [F]>,
        ws: &mut MlpWorkspace<F>,
    ) -> Result<()> {
        let Some(batch) = ws.stored else {
            return Err(DiffsimError::InvalidOption {
                name: "workspace",
                why: "no stored forward pass; call forward_ws or forward_batch first".into(),
            });
        };
        self.check_ws(ws, batch)?;
        check_len("network parameters", self.n_params(), params.len())?;
        check_len("output adjoint (batch * n_outputs)", batch * self.n_outputs(), ybar.len())?;
        if let Some(xb) = xbar.as_deref() {
            check_len("input adjoint (batch * n_inputs)", batch * self.n_inputs(), xb.len())?;
        }
        if let Some(pb) = pbar.as_deref() {
            check_len("parameter adjoint", self.n_params(), pb.len())?;
        }
        wide(Backward { mlp: self, params, ybar, xbar, pbar, ws, batch });
        Ok(())
    }

    /// The checked-free core of the backward pass for the stored batch `batch`.
    #[inline(always)]
    fn backward_body<F: Float>(
        &self,
        params: &[F],
        ybar: &[F],
        xbar: Option<&mut [F]>,
        pbar: Option<&mut [F]>,
        ws: &mut MlpWorkspace<F>,
        batch: usize,
    ) {
        let stored = Stored { x: &ws.x, a: &ws.a, da: &ws.da, offsets: &ws.layer_offsets };
        self.backward_from(params, stored, ybar, xbar, pbar, &mut ws.delta, batch);
    }

    /// The backward pass from a stored forward pass `stored` (in a workspace or a record),
    /// with `delta` as scratch.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn backward_from<F: Float>(
        &self,
        params: &[F],
        stored: Stored<'_, F>,
        ybar: &[F],
        mut xbar: Option<&mut [F]>,
        mut pbar: Option<&mut [F]>,
        delta: &mut [Vec<F>; 2],
        batch: usize,
    ) {
        let Stored { x, a, da, offsets } = stored;
        if batch == 1 && self.fused_width().is_some() {
            if let (Some(xbar), Some(pbar)) = (xbar.as_deref_mut(), pbar.as_deref_mut()) {
                let (a1, da1, da2) = (&a[offsets[0]..], &da[offsets[0]..], &da[offsets[1]..]);
                fused::backward(self, params, Kept { x, a1, da1, da2 }, ybar, xbar, fused::ParamGrad::Now(pbar));
                return;
            }
        }
        let layers = self.layers();
        let last = layers.len() - 1;
        let [cur, prev] = delta;
        {
            let n = batch * self.n_outputs();
            let off = offsets[last];
            for ((d, &yb), &s) in cur[..n].iter_mut().zip(ybar).zip(&da[off..off + n]) {
                *d = yb * s;
            }
        }
        for l in (0..=last).rev() {
            let layer = &layers[l];
            if l == 0 {
                layer.backward_batch(params, x, cur, xbar.as_deref_mut(), pbar.as_deref_mut(), batch);
                break;
            }
            let n = batch * layer.n_in;
            let off = offsets[l - 1];
            prev[..n].fill(F::zero());
            layer.backward_batch(params, &a[off..], cur, Some(&mut prev[..n]), pbar.as_deref_mut(), batch);
            for (d, &s) in prev[..n].iter_mut().zip(&da[off..off + n]) {
                *d *= s;
            }
            std::mem::swap(cur, prev);
        }
    }

    /// Length of a forward record of one input ([`Mlp::forward_record`]): the input, then
    /// every layer's activations, then their derivatives.
    pub(crate) fn record_len(&self) -> usize {
        let widths: usize = self.sizes()[1..].iter().sum();
        self.n_inputs() + 2 * widths
    }

    /// Forward pass for one input that writes `y` and keeps in `record` (of
    /// [`Mlp::record_len`]) what [`Mlp::backward_record`] needs, so that a later VJP at the
    /// same input skips its forward pass.
    pub(crate) fn forward_record(&self, params: &[f64], x: &[f64], y: &mut [f64], record: &mut [f64]) {
        wide(ForwardRecord { mlp: self, params, x, y, record });
    }

    /// [`Mlp::backward_ws`] from a record of [`Mlp::forward_record`] instead of the stored
    /// forward pass (`ws` gives scratch only; it must be a workspace of batch 1).
    pub(crate) fn backward_record(
        &self,
        params: &[f64],
        record: &[f64],
        ybar: &[f64],
        xbar: Option<&mut [f64]>,
        pbar: Option<&mut [f64]>,
        ws: &mut MlpWorkspace<f64>,
    ) {
        wide(BackwardRecord { mlp: self, params, record, ybar, xbar, pbar, ws });
    }

    /// [`Mlp::backward_record`] for the networks of the one-pass kernels
    /// ([`Mlp::fused_width`]), which need no workspace: returns false (doing nothing) for
    /// other shapes. `xbar` and `pbar` accumulate.
    #[must_use]
    pub(crate) fn backward_record_fused(
        &self,
        params: &[f64],
        record: &[f64],
        ybar: &[f64],
        xbar: &mut [f64],
        pbar: &mut [f64],
    ) -> bool {
        if self.fused_width().is_none() {
            return false;
        }
        wide(BackwardFused { mlp: self, params, record, ybar, xbar, grad: fused::ParamGrad::Now(pbar) });
        true
    }

    /// [`Mlp::backward_record_fused`] that leaves the parameter gradient pending in
    /// `pending` (see `fused::ParamGrad::Pending`) for [`Mlp::flush_pending`]; `xbar` is
    /// accumulated at once. `false` (and nothing done) for networks without the fused pass.
    pub(crate) fn backward_record_pending(
        &self,
        params: &[f64],
        record: &[f64],
        ybar: &[f64],
        xbar: &mut [f64],
        pending: &mut Vec<f64>,
    ) -> bool {
        if self.fused_width().is_none() {
            return false;
        }
        wide(BackwardFused { mlp: self, params, record, ybar, xbar, grad: fused::ParamGrad::Pending(pending) });
        true
    }

    /// Add the parameter gradients [`Mlp::backward_record_pending`] left in `pending` to
    /// `pbar` (bit for bit what [`Mlp::backward_record_fused`] would have added), and clear it.
    pub(crate) fn flush_pending(&self, pending: &mut Vec<f64>, pbar: &mut [f64]) {
        if self.fused_width().is_some() && !pending.is_empty() {
            wide(FlushPending { mlp: self, pending, pbar });
        }
        pending.clear();
    }

    /// [`Mlp::vjp`] without the size checks, for callers that built `ws` from this network
    /// and checked the lengths once (the UDE model's VJP): forward and backward in one pass
    /// through the wide-vector dispatch.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn vjp_unchecked(
        &self,
        params: &[f64],
        x: &[f64],
        y: &mut [f64],
        ybar: &[f64],
        xbar: Option<&mut [f64]>,
        pbar: Option<&mut [f64]>,
        ws: &mut MlpWorkspace<f64>,
    ) {
        wide(Vjp1 { mlp: self, params, x, y, ybar, xbar, pbar, ws });
    }
}

/// A stored forward pass: the input, activations and derivatives, per-layer offsets.
#[derive(Clone, Copy)]
struct Stored<'a, F> {
    x: &'a [F],
    a: &'a [F],
    da: &'a [F],
    offsets: &'a [usize],
}

/// Split a record into its input, activations and derivatives.
#[inline(always)]
fn split_record<F>(record: &[F], n_in: usize) -> (&[F], &[F], &[F]) {
    let (x, rest) = record.split_at(n_in);
    let (a, da) = rest.split_at(rest.len() / 2);
    (x, a, da)
}

struct ForwardRecord<'a> {
    mlp: &'a Mlp,
    params: &'a [f64],
    x: &'a [f64],
    y: &'a mut [f64],
    record: &'a mut [f64],
}

impl Kernel for ForwardRecord<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let ForwardRecord { mlp, params, x, y, record } = self;
        let n_in = mlp.n_inputs();
        let (xr, rest) = record.split_at_mut(n_in);
        xr.copy_from_slice(x);
        let (a, da) = rest.split_at_mut(rest.len() / 2);
        // Layer l's activations start at the sum of the earlier widths (the batch-1 layout
        // of a workspace, which `backward_record` reads with the workspace's offsets).
        let (mut prev, mut off) = (0, 0);
        for (l, layer) in mlp.layers().iter().enumerate() {
            let (before, out) = a.split_at_mut(off);
            let input: &[f64] = if l == 0 { xr } else { &before[prev..] };
            layer.forward_batch(params, input, out, &mut da[off..], 1);
            prev = off;
            off += layer.n_out;
        }
        y.copy_from_slice(&a[prev..prev + mlp.n_outputs()]);
    }
}

struct BackwardRecord<'a> {
    mlp: &'a Mlp,
    params: &'a [f64],
    record: &'a [f64],
    ybar: &'a [f64],
    xbar: Option<&'a mut [f64]>,
    pbar: Option<&'a mut [f64]>,
    ws: &'a mut MlpWorkspace<f64>,
}

impl Kernel for BackwardRecord<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let BackwardRecord { mlp, params, record, ybar, xbar, pbar, ws } = self;
        let (x, a, da) = split_record(record, mlp.n_inputs());
        let stored = Stored { x, a, da, offsets: &ws.layer_offsets };
        mlp.backward_from(params, stored, ybar, xbar, pbar, &mut ws.delta, 1);
    }
}

struct BackwardFused<'a> {
    mlp: &'a Mlp,
    params: &'a [f64],
    record: &'a [f64],
    ybar: &'a [f64],
    xbar: &'a mut [f64],
    grad: fused::ParamGrad<'a, f64>,
}

impl Kernel for BackwardFused<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let BackwardFused { mlp, params, record, ybar, xbar, grad } = self;
        let (x, a, da) = split_record(record, mlp.n_inputs());
        let h = mlp.layers()[0].n_out;
        let kept = Kept { x, a1: &a[..h], da1: &da[..h], da2: &da[h..] };
        fused::backward(mlp, params, kept, ybar, xbar, grad);
    }
}

struct FlushPending<'a> {
    mlp: &'a Mlp,
    pending: &'a [f64],
    pbar: &'a mut [f64],
}

impl Kernel for FlushPending<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        fused::flush_pending(self.mlp, self.pending, self.pbar);
    }
}

struct ForwardStore<'a, F> {
    mlp: &'a Mlp,
    params: &'a [F],
    x: &'a [F],
    batch: usize,
    ws: &'a mut MlpWorkspace<F>,
}

impl<F: Float> Kernel for ForwardStore<'_, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.mlp.forward_store_body(self.params, self.x, self.batch, self.ws)
    }
}

struct Backward<'a, F> {
    mlp: &'a Mlp,
    params: &'a [F],
    ybar: &'a [F],
    xbar: Option<&'a mut [F]>,
    pbar: Option<&'a mut [F]>,
    ws: &'a mut MlpWorkspace<F>,
    batch: usize,
}

impl<F: Float> Kernel for Backward<'_, F> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        self.mlp.backward_body(self.params, self.ybar, self.xbar, self.pbar, self.ws, self.batch)
    }
}

struct Vjp1<'a> {
    mlp: &'a Mlp,
    params: &'a [f64],
    x: &'a [f64],
    y: &'a mut [f64],
    ybar: &'a [f64],
    xbar: Option<&'a mut [f64]>,
    pbar: Option<&'a mut [f64]>,
    ws: &'a mut MlpWorkspace<f64>,
}

impl Kernel for Vjp1<'_> {
    type Output = ();
    #[inline(always)]
    fn run(self) {
        let Vjp1 { mlp, params, x, y, ybar, xbar, pbar, ws } = self;
        mlp.forward_store_body(params, x, 1, ws);
        let last = *ws.layer_offsets.last().expect("an Mlp has at least one layer");
        y.copy_from_slice(&ws.a[last..last + mlp.n_outputs()]);
        mlp.backward_body(params, ybar, xbar, pbar, ws, 1);
    }
}

impl Mlp {
    /// Forward then backward for one input: accumulates `x_bar` and `p_bar` as
    /// [`Mlp::backward_ws`] and writes `y`.
    #[allow(clippy::too_many_arguments)]
    pub fn vjp<F: Float>(
        &self,
        params: &[F],
        x: &[F],
        y: &mut [F],
        ybar: &[F],
        xbar: Option<&mut [F]>,
        pbar: Option<&mut [F]>,
        ws: &mut MlpWorkspace<F>,
    ) -> Result<()> {
        self.forward_ws(params, x, y, ws)?;
        self.backward_ws(params, ybar, xbar, pbar, ws)
    }

    /// The input Jacobian `jac[i * n_in + j] = d y_i / d x_j` (row-major `n_out x n_in`),
    /// by pushing the identity forward through the layers. Overwrites the stored forward.
    pub fn jacobian_input<F: Float>(
        &self,
        params: &[F],
        x: &[F],
        jac: &mut [F],
        ws: &mut MlpWorkspace<F>,
    ) -> Result<()> {
        let n_in = self.n_inputs();
        check_len("input Jacobian (n_outputs * n_inputs)", self.n_outputs() * n_in, jac.len())?;
        self.check_ws(ws, 1)?;
        let t0 = &mut ws.tangent[0][..n_in * n_in];
        t0.fill(F::zero());
        for j in 0..n_in {
            t0[j * n_in + j] = F::one();
        }
        self.push_tangents(params, x, jac, n_in, ws)
    }

    /// Jacobian-vector product with respect to the input: writes `y = f(x)` and
    /// `jv = (dy/dx) v`. Overwrites the stored forward.
    pub fn jvp_input<F: Float>(
        &self,
        params: &[F],
        x: &[F],
        v: &[F],
        y: &mut [F],
        jv: &mut [F],
        ws: &mut MlpWorkspace<F>,
    ) -> Result<()> {
        check_len("input tangent", self.n_inputs(), v.len())?;
        check_len("output tangent", self.n_outputs(), jv.len())?;
        self.check_ws(ws, 1)?;
        check_len("network output", self.n_outputs(), y.len())?;
        ws.tangent[0][..v.len()].copy_from_slice(v);
        self.push_tangents(params, x, jv, 1, ws)?;
        let off = *ws.layer_offsets.last().expect("an Mlp has at least one layer");
        y.copy_from_slice(&ws.a[off..off + self.n_outputs()]);
        Ok(())
    }

    /// Forward for one input, then push the `k` tangent columns in `ws.tangent[0]`
    /// (`[n_in][k]`) through the layers into `out` (`[n_out][k]`).
    fn push_tangents<F: Float>(
        &self,
        params: &[F],
        x: &[F],
        out: &mut [F],
        k: usize,
        ws: &mut MlpWorkspace<F>,
    ) -> Result<()> {
        check_len("network parameters", self.n_params(), params.len())?;
        check_len("network input", self.n_inputs(), x.len())?;
        self.forward_store(params, x, 1, ws);
        let layers = self.layers();
        let [t_in, t_out] = &mut ws.tangent;
        for (l, layer) in layers.iter().enumerate() {
            let da = &ws.da[ws.layer_offsets[l]..];
            if l + 1 == layers.len() {
                layer.tangent(params, da, t_in, out, k);
            } else {
                layer.tangent(params, da, t_in, t_out, k);
                std::mem::swap(t_in, t_out);
            }
        }
        Ok(())
    }
}
