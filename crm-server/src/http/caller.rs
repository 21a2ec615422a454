//! Who is calling: the verified bearer token's identity, the scope it grants, and how events and
//! audit entries record it.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sqlx::{Postgres, Transaction};

use crate::auth::{AuthError, Identity, UserRole};
use crate::db::scope::{self, Scope};
use crate::error::Error;
use crate::http::correlation::CorrelationId;
use crate::outbox::{Actor, ActorKind, Origin};
use crate::state::AppState;

/// An authenticated caller. Every route but health, readiness and metrics takes one, so a
/// request without a valid token never reaches a handler.
#[derive(Debug, Clone)]
pub struct Caller {
    pub origin: Origin,
    pub identity: Identity,
    pub scope: Scope,
}

impl Caller {
    /// The actor as one string for audit rows: `user:u_42`.
    pub fn audit_name(&self) -> String {
        format!("{}:{}", self.origin.actor.kind.as_str(), self.origin.actor.id)
    }

    pub fn correlation_id(&self) -> Option<&str> {
        self.origin.correlation_id.as_deref()
    }

    pub fn has(&self, role: UserRole) -> bool {
        self.identity.has(role)
    }

    /// 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[UserRole], action: &str) -> Result<(), Error> {
        if roles.iter().any(|r| self.has(*r)) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(Error::Forbidden(format!("{action} needs the role {}", names.join(" or "))))
        }
    }

    /// A transaction under the caller's scope: the database shows and lets change only rows
    /// inside it.
    pub async fn begin(&self, state: &AppState) -> Result<Transaction<'static, Postgres>, Error> {
        Ok(scope::begin(&state.db, &self.scope).await?)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let value = parts.headers.get(AUTHORIZATION).ok_or(Error::Unauthorized(AuthError::Missing))?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or(Error::Unauthorized(AuthError::Malformed("not a Bearer authorization")))?;
        let identity = state.verifier.verify(token).await.map_err(Error::Unauthorized)?;
        tracing::Span::current().record("subject", identity.subject.as_str());
        let correlation_id = parts.extensions.get::<CorrelationId>().map(|c| c.as_str().to_owned());
        let actor = Actor { kind: ActorKind::User, id: identity.subject.clone() };
        let scope = identity.scope();
        Ok(Caller { origin: Origin { actor, correlation_id }, identity, scope })
    }
}
