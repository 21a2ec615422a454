//! What the resources become: Kubernetes objects, from validated input; no client.

pub mod cron;
pub mod hpa;
pub mod scaled_object;
pub mod workload;
pub mod zone;

#[cfg(test)]
mod proof;
#[cfg(test)]
mod tests;
