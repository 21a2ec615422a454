//! Tenant gateway policy: what a TenantPolicy becomes in Kong. Pure: no client.
//!
//! ```text
//! TenantPolicy --admit--> Policy --overlay(settings)--> Policy --gateway()--> Gateway --kic::render--> objects
//!                                                                                    \--deck::render--> decK file
//! ```
//!
//! ```text
//! policy       an admitted TenantPolicy, and the names, labels and owner of what it generates
//! settings     the CRM's effective settings and how they overlay a policy
//! plugins      what a policy asks of Kong: its consumer and plugins, one model for KIC and decK
//! headers      the pre-function Lua that refuses requests without the headers a policy requires
//! kic          the model as Kong Ingress Controller objects
//! deck         the model as a decK declarative file
//! annotation   the `konghq.com/plugins` value of a target, merged with the names users put there
//! ```

pub mod annotation;
pub mod deck;
pub mod headers;
pub mod kic;
pub mod plugins;
pub mod policy;
pub mod settings;

#[cfg(test)]
mod tests;
