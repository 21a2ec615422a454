//! Who is calling, as the events and audit entries of a write record it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::error::Error;
use crate::http::correlation::CorrelationId;
use crate::outbox::{Actor, ActorKind, Origin};

/// The caller of a request. Until tokens are verified, every caller is the anonymous service
/// `unauthenticated`; the identity stage replaces this with the token's subject.
#[derive(Debug, Clone)]
pub struct Caller {
    pub origin: Origin,
}

impl Caller {
    /// The actor as one string for audit rows: `user:u_42`.
    pub fn audit_name(&self) -> String {
        format!("{}:{}", self.origin.actor.kind.as_str(), self.origin.actor.id)
    }

    pub fn correlation_id(&self) -> Option<&str> {
        self.origin.correlation_id.as_deref()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Error> {
        let correlation_id = parts.extensions.get::<CorrelationId>().map(|c| c.as_str().to_owned());
        let actor = Actor { kind: ActorKind::Service, id: "unauthenticated".into() };
        Ok(Caller { origin: Origin { actor, correlation_id } })
    }
}
