//! `diffsim`: the command-line face of the diffsim library.
//!
//! Bad arguments end with a non-zero exit and a one-line message, never a panic trace.

/// `println!` that ignores a closed stdout (e.g. piped into `head`) instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod demo;
mod fit_cmd;
mod grad_cmd;
mod models_cmd;
mod parse;
mod plot;
mod shadow_cmd;
mod solve_cmd;
mod surrogate_cmd;
mod train_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "diffsim", version, about = "Differentiable simulation: fast ODE solves with gradients")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the model zoo: name, states, parameters and defaults.
    Models,
    /// Solve a zoo model and print the solution (or JSON with --json).
    Solve(Box<solve_cmd::SolveArgs>),
    /// The loss of a solve and its gradient with respect to p and u0.
    Grad(Box<grad_cmd::GradArgs>),
    /// Estimate a zoo model's parameters from measurements in a CSV file.
    Fit(Box<fit_cmd::FitArgs>),
    /// The derivative of a chaotic model's long-time average by shadowing.
    Shadow(Box<shadow_cmd::ShadowArgs>),
    /// Train and test a continuous-time echo state network surrogate of a stiff model.
    Surrogate(Box<surrogate_cmd::SurrogateArgs>),
    /// A short tour (the default when no command is given).
    /// Train an example universal differential equation (spiral, lv-ude).
    Train(Box<train_cmd::TrainArgs>),
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("invalid arguments").trim_start_matches("error: ");
            eprintln!("diffsim: {first} (see diffsim --help)");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command.unwrap_or(Command::Demo(demo::DemoArgs::default())) {
        Command::Models => models_cmd::run(),
        Command::Solve(a) => solve_cmd::run(&a),
        Command::Grad(a) => grad_cmd::run(&a),
        Command::Fit(a) => fit_cmd::run(&a),
        Command::Shadow(a) => shadow_cmd::run(&a),
        Command::Surrogate(a) => surrogate_cmd::run(&a),
        Command::Train(a) => train_cmd::run(&a),
        Command::Demo(a) => demo::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("diffsim: {e}");
            ExitCode::from(1)
        }
    }
}
