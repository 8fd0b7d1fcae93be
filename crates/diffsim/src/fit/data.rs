//! Measured time series: observed quantities at increasing times, with missing values and
//! optional standard deviations, read from CSV.
//!
//! The CSV form: a header row whose first field is `t` (or `time`), then one column per
//! observed quantity; optionally a column `sd_<name>` holding the standard deviation of the
//! column `<name>` point by point. An empty cell, `NaN` or `NA` is a missing value, skipped
//! by every loss. Lines starting with `#` are comments. Rows must be in strictly increasing
//! time.
//!
//! ```text
//! t,x,z,sd_x
//! 0.0,1.00,0.0,0.1
//! 0.5,1.42,,0.1
//! 1.0,2.01,0.3,0.2
//! ```
//!
//! Every problem with a file is a [`DiffsimError::Data`] naming the file, line and column
//! (counted in fields) and the expected form.

use crate::error::{DiffsimError, Result};
use std::path::Path;

/// Observed values at increasing times (row-major, `NaN` where missing), with a standard
/// deviation per value (1 where none was given).
#[derive(Clone, Debug, PartialEq)]
pub struct TimeSeries {
    /// Where the data came from (a file name), for error messages.
    source: String,
    t: Vec<f64>,
    names: Vec<String>,
    values: Vec<f64>,
    sigma: Vec<f64>,
    /// Standard deviations were given (else all are 1).
    has_sigma: bool,
}

/// A data error at `line`, `column` of `path`.
fn data_error(path: &str, line: usize, column: usize, why: impl Into<String>) -> DiffsimError {
    DiffsimError::Data { path: path.to_string(), line, column, why: why.into() }
}

/// A cell: `None` when missing, else its number.
fn parse_cell(cell: &str) -> std::result::Result<Option<f64>, ()> {
    match cell {
        "" | "NA" | "na" | "NaN" | "nan" | "NAN" => Ok(None),
        text => text.parse::<f64>().map(Some).map_err(|_| ()),
    }
}

impl TimeSeries {
    /// From times, column names and values (`t.len() x names.len()`, row-major, `NaN` for
    /// missing) and optional standard deviations of the same shape. Checks what
    /// [`TimeSeries::from_csv_str`] checks; errors name the source `"(memory)"`.
    pub fn new(t: Vec<f64>, names: Vec<String>, values: Vec<f64>, sigma: Option<Vec<f64>>) -> Result<Self> {
        let cols = names.len();
        if values.len() != t.len() * cols {
            return Err(DiffsimError::SizeMismatch { what: "values", got: values.len(), expected: t.len() * cols });
        }
        let has_sigma = sigma.is_some();
        let sigma = sigma.unwrap_or_else(|| vec![1.0; values.len()]);
        if sigma.len() != values.len() {
            return Err(DiffsimError::SizeMismatch { what: "sigma", got: sigma.len(), expected: values.len() });
        }
        let series = Self { source: "(memory)".into(), t, names, values, sigma, has_sigma };
        series.check("(memory)", |row| row + 1)?;
        Ok(series)
    }

    /// Read a CSV file (see the module docs for the form).
    pub fn from_csv_path(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| data_error(&shown, 0, 0, format!("cannot read the file ({e}); check the path")))?;
        Self::from_csv_str(&text, &shown)
    }

    /// Parse CSV text; `source` names it in errors (a file name).
    pub fn from_csv_str(text: &str, source: &str) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(text.as_bytes());
        let mut records = reader.records();
        let header = match records.next() {
            None => {
                return Err(data_error(
                    source,
                    0,
                    0,
                    "the file is empty; expected a header row `t,<name>,...` and one row per time",
                ))
            }
            Some(r) => {
                r.map_err(|e| data_error(source, e.position().map_or(0, |p| p.line() as usize), 0, e.to_string()))?
            }
        };
        let header_line = header.position().map_or(1, |p| p.line() as usize);
        let fields: Vec<String> = header.iter().map(str::to_string).collect();
        if !matches!(fields.first().map(|f| f.to_ascii_lowercase()).as_deref(), Some("t" | "time")) {
            return Err(data_error(
                source,
                header_line,
                1,
                format!(
                    "the first header field is '{}'; it must be `t` (the times), followed by one column per observed quantity",
                    fields.first().map_or("", String::as_str)
                ),
            ));
        }
        let (names, sd_of) = Self::columns(&fields, source, header_line)?;
        let width = fields.len();
        let (mut t, mut values, mut sigma) = (Vec::new(), Vec::new(), Vec::new());
        let mut lines = Vec::new();
        for record in records {
            let record = record
                .map_err(|e| data_error(source, e.position().map_or(0, |p| p.line() as usize), 0, e.to_string()))?;
            let line = record.position().map_or(0, |p| p.line() as usize);
            if record.iter().all(str::is_empty) {
                continue;
            }
            if record.len() != width {
                return Err(data_error(
                    source,
                    line,
                    record.len().min(width) + 1,
                    format!(
                        "{} fields, but the header has {width}; every row needs one field per header column",
                        record.len()
                    ),
                ));
            }
            let mut cells = Vec::with_capacity(width);
            for (column, cell) in record.iter().enumerate() {
                let value = parse_cell(cell).map_err(|()| {
                    data_error(
                        source,
                        line,
                        column + 1,
                        format!("'{cell}' is not a number; write a number, or leave the cell empty (or NaN) for a missing value"),
                    )
                })?;
                cells.push(value);
            }
            let Some(time) = cells[0].filter(|v| v.is_finite()) else {
                return Err(data_error(source, line, 1, "the time is missing or not finite; every row needs a time"));
            };
            t.push(time);
            lines.push(line);
            for (j, _) in names.iter().enumerate() {
                values.push(cells[j + 1].unwrap_or(f64::NAN));
                sigma.push(sd_of[j].and_then(|c| cells[c]).unwrap_or(if sd_of[j].is_some() { f64::NAN } else { 1.0 }));
            }
        }
        if t.is_empty() {
            return Err(data_error(
                source,
                header_line,
                0,
                "no data rows after the header; add one row per measurement time",
            ));
        }
        let series =
            Self { source: source.into(), t, names, values, sigma, has_sigma: sd_of.iter().any(Option::is_some) };
        series.check(source, |row| lines[row])?;
        Ok(series)
    }

    /// The observed columns' names, and for each the field index of its `sd_` column.
    fn columns(fields: &[String], source: &str, line: usize) -> Result<(Vec<String>, Vec<Option<usize>>)> {
        let names: Vec<String> = fields[1..].iter().filter(|f| !f.starts_with("sd_")).cloned().collect();
        if names.is_empty() {
            return Err(data_error(
                source,
                line,
                2,
                "no observed columns; add one column per observed quantity after `t`",
            ));
        }
        for (k, name) in fields.iter().enumerate() {
            if name.is_empty() {
                return Err(data_error(source, line, k + 1, "an empty column name; name every column"));
            }
            if fields[..k].contains(name) {
                return Err(data_error(
                    source,
                    line,
                    k + 1,
                    format!("the column name '{name}' repeats; names must differ"),
                ));
            }
            if let Some(of) = name.strip_prefix("sd_") {
                if !names.iter().any(|n| n == of) {
                    return Err(data_error(
                        source,
                        line,
                        k + 1,
                        format!("'{name}' gives standard deviations of a column '{of}' that is not in the header"),
                    ));
                }
            }
        }
        let sd_of = names.iter().map(|n| fields.iter().position(|f| f.strip_prefix("sd_") == Some(n))).collect();
        Ok((names, sd_of))
    }

    /// Times strictly increasing; standard deviations positive where a value is present.
    /// `line_of` maps a row to the line shown in errors.
    fn check(&self, source: &str, line_of: impl Fn(usize) -> usize) -> Result<()> {
        if let Some(i) = self.t.iter().position(|v| !v.is_finite()) {
            return Err(data_error(source, line_of(i), 1, "the time is not finite"));
        }
        if let Some(i) = (1..self.t.len()).find(|&i| self.t[i] <= self.t[i - 1]) {
            return Err(data_error(
                source,
                line_of(i),
                1,
                format!(
                    "time {} does not come after the previous row's {}; rows must be in strictly increasing time (no repeats)",
                    self.t[i],
                    self.t[i - 1]
                ),
            ));
        }
        let cols = self.names.len();
        for (k, (&v, &s)) in self.values.iter().zip(&self.sigma).enumerate() {
            if v.is_infinite() {
                return Err(data_error(
                    source,
                    line_of(k / cols),
                    k % cols + 2,
                    "an infinite value; use NaN for a missing one",
                ));
            }
            let usable_sd = s > 0.0 && s.is_finite();
            if !v.is_nan() && !usable_sd {
                return Err(data_error(
                    source,
                    line_of(k / cols),
                    0,
                    format!(
                        "the standard deviation of '{}' is {s}; it must be a positive number where a value is given",
                        self.names[k % cols]
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Where the data came from (the file name given when read).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The rows with `t <= until` (the same source, columns and standard deviations).
    pub fn until(&self, until: f64) -> Self {
        self.rows(0..self.t.partition_point(|&t| t <= until))
    }

    /// The rows in `range` (cut to the rows there are; the same source, columns and
    /// standard deviations).
    pub fn rows(&self, range: std::ops::Range<usize>) -> Self {
        let end = range.end.min(self.t.len());
        let start = range.start.min(end);
        let cols = self.names.len();
        Self {
            source: self.source.clone(),
            t: self.t[start..end].to_vec(),
            names: self.names.clone(),
            values: self.values[start * cols..end * cols].to_vec(),
            sigma: self.sigma[start * cols..end * cols].to_vec(),
            has_sigma: self.has_sigma,
        }
    }

    /// The measurement times.
    pub fn t(&self) -> &[f64] {
        &self.t
    }

    /// The observed columns' names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The number of observed columns.
    pub fn n_observed(&self) -> usize {
        self.names.len()
    }

    /// The values at row `i` (`NaN` where missing).
    pub fn row(&self, i: usize) -> &[f64] {
        let c = self.names.len();
        &self.values[i * c..(i + 1) * c]
    }

    /// The standard deviations at row `i`.
    pub fn sigma_row(&self, i: usize) -> &[f64] {
        let c = self.names.len();
        &self.sigma[i * c..(i + 1) * c]
    }

    /// True when standard deviations were given (the residuals are then in units of the
    /// noise, and the parameter uncertainty uses them as they are).
    pub fn has_sigma(&self) -> bool {
        self.has_sigma
    }

    /// The (row, column) of every value present in `rows`, row by row: the order of a fit's
    /// residuals.
    pub fn present(&self, rows: std::ops::Range<usize>) -> Vec<(usize, usize)> {
        rows.flat_map(|i| self.row(i).iter().enumerate().filter(|(_, v)| !v.is_nan()).map(move |(j, _)| (i, j)))
            .collect()
    }

    /// The number of values present (not missing).
    pub fn n_present(&self) -> usize {
        self.values.iter().filter(|v| !v.is_nan()).count()
    }

    /// The series as CSV in the form [`TimeSeries::from_csv_str`] reads (with `sd_`
    /// columns where standard deviations other than 1 were given); numbers round-trip exactly.
    pub fn to_csv(&self) -> String {
        let cols = self.names.len();
        let with_sd: Vec<usize> = if self.has_sigma {
            (0..cols).filter(|&j| (0..self.t.len()).any(|i| self.sigma[i * cols + j] != 1.0)).collect()
        } else {
            Vec::new()
        };
        let mut out = String::from("t");
        for n in &self.names {
            out += &format!(",{n}");
        }
        for &j in &with_sd {
            out += &format!(",sd_{}", self.names[j]);
        }
        out.push('\n');
        let cell = |v: f64| if v.is_nan() { String::new() } else { format!("{v:?}") };
        for i in 0..self.t.len() {
            out += &format!("{:?}", self.t[i]);
            for j in 0..cols {
                out += &format!(",{}", cell(self.values[i * cols + j]));
            }
            for &j in &with_sd {
                out += &format!(",{}", cell(self.sigma[i * cols + j]));
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<TimeSeries> {
        TimeSeries::from_csv_str(text, "data.csv")
    }

    /// The error's line and column, and its message.
    fn where_(text: &str) -> (usize, usize, String) {
        match parse(text).unwrap_err() {
            DiffsimError::Data { path, line, column, why } => {
                assert_eq!(path, "data.csv");
                (line, column, why)
            }
            other => panic!("not a data error: {other}"),
        }
    }

    /// The error's line and column.
    fn at(text: &str) -> (usize, usize) {
        let (line, column, _) = where_(text);
        (line, column)
    }

    #[test]
    fn reads_values_missing_cells_and_standard_deviations() {
        let s = parse("# a comment\nt, x ,z,sd_x\n0,1.5,2,0.1\n0.5,,NaN,0.2\n1,3,4,0.3\n").unwrap();
        assert_eq!(s.t(), &[0.0, 0.5, 1.0]);
        assert_eq!(s.names(), &["x".to_string(), "z".to_string()]);
        assert_eq!(s.row(0), &[1.5, 2.0]);
        assert!(s.row(1).iter().all(|v| v.is_nan()));
        assert_eq!(s.sigma_row(2), &[0.3, 1.0]);
        assert_eq!(s.n_present(), 4);
        // Round trip through the writer (compared as text: NaN is not equal to itself).
        let again = parse(&s.to_csv()).unwrap();
        assert_eq!(again.to_csv(), s.to_csv());
        assert_eq!((again.t(), again.sigma_row(2)), (s.t(), s.sigma_row(2)));
    }

    #[test]
    fn every_bad_file_names_its_line_and_column() {
        assert_eq!(where_("").0, 0);
        assert!(where_("").2.contains("empty"));
        assert_eq!(at("x,y\n1,2\n"), (1, 1));
        assert!(where_("t\n1\n").2.contains("no observed columns"));
        assert!(where_("t,x\n").2.contains("no data rows"));
        // A wrong field count, text for a number, a missing time.
        assert_eq!(at("t,x\n0,1\n1,2,3\n"), (3, 3));
        assert_eq!(at("t,x\n0,1\n1\n"), (3, 2));
        let (line, column, why) = where_("t,x\n0,1\n1,abc\n");
        assert_eq!((line, column), (3, 2));
        assert!(why.contains("'abc' is not a number"), "{why}");
        assert_eq!(at("t,x\n,1\n"), (2, 1));
        // Repeated and decreasing times.
        let (line, column, why) = where_("t,x\n0,1\n1,2\n1,3\n");
        assert_eq!((line, column), (4, 1));
        assert!(why.contains("strictly increasing"), "{why}");
        assert_eq!(at("t,x\n0,1\n2,2\n1,3\n"), (4, 1));
        // Headers: repeats, a stray sd_ column; standard deviations that are not positive.
        assert_eq!(at("t,x,x\n0,1,2\n"), (1, 3));
        assert_eq!(at("t,x,sd_y\n0,1,2\n"), (1, 3));
        assert!(where_("t,x,sd_x\n0,1,0\n").2.contains("positive"));
        assert!(where_("t,x,sd_x\n0,1,\n").2.contains("positive"));
    }

    #[test]
    fn a_missing_file_is_an_error_naming_it() {
        let err = TimeSeries::from_csv_path("/nonexistent/data.csv").unwrap_err();
        assert!(err.to_string().starts_with("/nonexistent/data.csv:0:0: cannot read"), "{err}");
    }
}
