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

#[cfg(test)]
mod tests {
    #[test]
    fn lists_and_spans() {
        assert_eq!(super::list("--u0", "1, 2.5,-3e2").unwrap(), vec![1.0, 2.5, -300.0]);
        assert!(super::list("--u0", "1,x").unwrap_err().contains("'x'"));
        assert_eq!(super::span("--tspan", "0,1e5").unwrap(), (0.0, 1e5));
        assert!(super::span("--tspan", "0").is_err());
    }
}
