//! Tenant gateway policy: what a TenantPolicy becomes in Kong. Pure: no client.
//!
//! ```text
//! annotation   the `konghq.com/plugins` value of a target, merged with the names users put there
//! headers      the pre-function Lua that answers 428 for writes without Idempotency-Key / If-Match
//! ```

pub mod annotation;
pub mod headers;
