//! Automatic differentiation: forward-mode dual numbers and the Jacobians built from them,
//! the reverse-mode tape (record a right-hand side once, replay it with guards), and
//! vector-Jacobian products by a chosen method.

mod dual;
mod jacobian;
mod sparsity;
pub mod tape;
mod vjp;

pub use dual::Dual;
pub use jacobian::{jacobian_fd, ForwardJacobian};
pub use sparsity::{JacobianPattern, SparseForwardJacobian};
pub use tape::{Branching, RhsTape, TapeMode, TapeStats, TapeVar, Unreplayable};
pub use vjp::{Vjp, VjpMethod, AUTO_RERECORD_MAX, AUTO_TAPE_ABOVE};
