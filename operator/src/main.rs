//! `freshplan-operator`: reconciles TenantPolicy, ScalingProfile and SeasonalWindow resources into
//! Kong plugins, KEDA ScaledObjects and HorizontalPodAutoscalers (see `../shared/DESIGN.md`).
//!
//! This is the workspace's place for the operator; its resources, renderers, calendar CLI and
//! controllers arrive with the seasonal-scaling, gateway-policy and operator-runtime work. Until
//! then the binary only identifies itself.

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "freshplan-operator",
    version,
    about = "FreshPlan Kubernetes operator (resources and controllers not built yet)"
)]
struct Cli {}

fn main() {
    let _ = Cli::parse();
    eprintln!("freshplan-operator {}: no commands yet; see --help", env!("CARGO_PKG_VERSION"));
    std::process::exit(2);
}
