//! The integration tests, one binary: each test binary links the library and compiles its
//! own copy of every generic path its models use (a solver per model type, the gradient
//! stack per model type), so one binary builds the shared ones once. The tests that count
//! allocations with their own global allocator (`tape`, `nn_alloc`) stay separate binaries.

mod behaviour;
mod common;
mod convergence;
mod ensemble;
mod errors;
mod events;
mod fitting;
mod gradients;
mod implicit;
mod mass;
mod nn;
mod optim;
mod references;
mod shadowing;
mod stiff;
mod stiff_test_set;
mod surrogate;
