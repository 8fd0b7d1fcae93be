//! Automatic differentiation: forward-mode dual numbers and the Jacobians built from them.

mod dual;
mod jacobian;

pub use dual::Dual;
pub use jacobian::{jacobian_fd, ForwardJacobian};
