//! Parsing helpers for comma-separated numeric arguments.

/// Parse "a,b,c" into numbers, naming the flag in the error.
pub fn list(flag: &str, s: &str) -> Result<Vec<f64>, String> {
    s.split(',')
        .map(|x| x.trim())
        .filter(|x| !x.is_empty())
        .map(|x| x.parse::<f64>().map_err(|_| format!("{flag}: '{x}' is not a number")))
        .collect()
}

/// Parse "t0,t1".
pub fn span(flag: &str, s: &str) -> Result<(f64, f64), String> {
    match list(flag, s)?.as_slice() {
        [a, b] => Ok((*a, *b)),
        v => Err(format!("{flag} needs two numbers T0,T1, got {}", v.len())),
    }
}
