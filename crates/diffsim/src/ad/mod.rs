//! Automatic differentiation: forward-mode dual numbers, the Jacobians built from them, and
//! vector-Jacobian products by a chosen method.

mod dual;
mod jacobian;
mod vjp;

pub use dual::Dual;
pub use jacobian::{jacobian_fd, ForwardJacobian};
pub use vjp::{Vjp, VjpMethod};
