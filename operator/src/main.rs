//! `freshplan-operator`: reconciles TenantPolicy, ScalingProfile and SeasonalWindow resources into
//! Kong plugins, KEDA ScaledObjects and HorizontalPodAutoscalers (see `../shared/DESIGN.md`).
//!
//! The library (`lib.rs`) holds the resources and the pure logic; this binary is its command line
//! (`cli.rs`).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli.run(&mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("freshplan-operator: {err}");
            ExitCode::FAILURE
        }
    }
}
