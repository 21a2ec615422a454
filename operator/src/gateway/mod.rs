//! Tenant gateway policy: what a TenantPolicy becomes in Kong. Pure: no client.
//!
//! ```text
//! annotation   the `konghq.com/plugins` value of a target, merged with the names users put there
//! ```

pub mod annotation;
