//! `freshplan-operator`: reconciles TenantPolicy, ScalingProfile and SeasonalWindow resources into
//! Kong plugins, KEDA ScaledObjects and HorizontalPodAutoscalers (see `../shared/DESIGN.md`).
//!
//! The library (`lib.rs`) holds the resources and the pure logic; this binary is its command line
//! (`cli.rs`).

mod cli;

use std::process::ExitCode;

use clap::Parser;

/// jemalloc: see the workspace's Cargo.toml for the measurements behind it.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
