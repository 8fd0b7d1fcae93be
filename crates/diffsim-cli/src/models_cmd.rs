//! `diffsim models`.

use diffsim::models::{lookup, NAMES};
use diffsim::Model;

pub fn run() -> Result<(), String> {
    out!("{:<15} {:>6}  {:<28} {:<26} {:<14} description", "name", "states", "parameters (defaults)", "u0", "tspan");
    for name in NAMES {
        let e = lookup(name).map_err(|e| e.to_string())?;
        let params: Vec<String> = e.param_names.iter().zip(&e.p).map(|(n, v)| format!("{n}={v}")).collect();
        let u0 = if e.u0.len() <= 3 { format!("{:?}", e.u0) } else { format!("[{} values]", e.u0.len()) };
        out!(
            "{:<15} {:>6}  {:<28} {:<26} {:<14} {}{}",
            e.name,
            e.model.n_states(),
            params.join(" "),
            u0,
            format!("{}..{}", e.tspan.0, e.tspan.1),
            e.description,
            if name == "brusselator" { " (brusselator-N: N grid points, default 32)" } else { "" }
        );
    }
    Ok(())
}
