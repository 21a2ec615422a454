//! The caller's scope, set at the start of every request's transaction; the row-level security
//! policies of the territory-isolation migration read it. Without a scope nothing is visible.

use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::customer::is_territory;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub user: Option<String>,
    pub admin: bool,
    /// The platform role: reads the settings registry and its events (the settings migration's
    /// policies); grants nothing on customer data.
    pub platform: bool,
    pub lead_territories: Vec<String>,
    pub rep_territories: Vec<String>,
    pub chains: Vec<Uuid>,
}

impl Scope {
    /// The server's own background work (projection checks): everything.
    pub fn system() -> Scope {
        Scope { user: Some("system:crm-server".into()), admin: true, ..Scope::default() }
    }

    /// SHA-256 of what the scope grants, whoever holds it: two tokens with the same roles,
    /// territories and chains have the same fingerprint, whatever their order in the token.
    pub fn fingerprint(&self) -> [u8; 32] {
        let sorted = |items: Vec<String>| {
            let mut items = items;
            items.sort();
            items.dedup();
            items.join(",")
        };
        let text = format!(
            "admin={};platform={};lead={};rep={};chains={}",
            self.admin,
            self.platform,
            sorted(self.lead_territories.clone()),
            sorted(self.rep_territories.clone()),
            sorted(self.chains.iter().map(Uuid::to_string).collect()),
        );
        let mut out = [0u8; 32];
        out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()).as_ref());
        out
    }

    /// The `set_config` calls and then `BEGIN`, sent as one simple query (one round trip).
    ///
    /// The order matters. PostgreSQL runs the statements before an explicit `BEGIN` in a query
    /// string as an implicit transaction and folds them into the block `BEGIN` opens, so the
    /// transaction-local settings hold for the whole transaction; and if setting the scope fails,
    /// the implicit transaction is rolled back and `BEGIN` never runs, leaving the connection idle.
    /// With `BEGIN` first, such a failure left the connection inside an aborted transaction that
    /// sqlx did not know of, and it went back to the pool failing every later statement.
    ///
    /// Values go into the text as literals, so each is made safe here: the subject is
    /// hex-encoded, and territories and chains can only be codes and UUIDs.
    fn begin_sql(&self) -> String {
        let subject = self.user.as_deref().unwrap_or("");
        let hex: String = subject.bytes().map(|b| format!("{b:02x}")).collect();
        let list = |items: Vec<String>| format!("{{{}}}", items.join(","));
        let territories = |ts: &[String]| list(ts.iter().filter(|t| is_territory(t)).cloned().collect());
        format!(
            "SELECT set_config('crm.user', convert_from(decode('{hex}', 'hex'), 'UTF8'), true), \
             set_config('crm.admin', '{}', true), set_config('crm.platform', '{}', true), \
             set_config('crm.lead_territories', '{}', true), set_config('crm.rep_territories', '{}', true), \
             set_config('crm.chains', '{}', true); BEGIN",
            if self.admin { "on" } else { "off" },
            if self.platform { "on" } else { "off" },
            territories(&self.lead_territories),
            territories(&self.rep_territories),
            list(self.chains.iter().map(Uuid::to_string).collect()),
        )
    }
}

/// A transaction running under `scope`.
///
/// A pooled connection never goes back to the pool inside a transaction sqlx does not know of:
/// a failure to set the scope leaves the connection idle (see [`Scope::begin_sql`]), and the start
/// runs as a task of its own, so a request cancelled while it waits (its timeout, a client gone)
/// cannot cut it between sending `BEGIN` and sqlx counting the transaction as open. The task
/// finishes the start, and the transaction it made, no longer wanted, is rolled back before the
/// connection is used again.
pub async fn begin(pool: &PgPool, scope: &Scope) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let pool = pool.clone();
    let sql = scope.begin_sql();
    tokio::spawn(async move { pool.begin_with(sqlx::AssertSqlSafe(sql)).await })
        .await
        .unwrap_or(Err(sqlx::Error::WorkerCrashed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_begin_statement_carries_every_part_of_the_scope() {
        let scope = Scope {
            user: Some("o'hara".into()),
            admin: false,
            platform: true,
            lead_territories: vec!["BY".into(), "NRW".into()],
            rep_territories: vec![],
            chains: vec![Uuid::nil()],
        };
        let sql = scope.begin_sql();
        assert!(
            sql.starts_with("SELECT set_config('crm.user', convert_from(decode('6f2768617261', 'hex')"),
            "{sql}"
        );
        assert!(sql.ends_with("; BEGIN"), "the scope is set before BEGIN: {sql}");
        assert!(sql.contains("set_config('crm.lead_territories', '{BY,NRW}', true)"), "{sql}");
        assert!(
            sql.contains("set_config('crm.admin', 'off', true), set_config('crm.platform', 'on', true)"),
            "{sql}"
        );
        assert!(sql.contains("set_config('crm.rep_territories', '{}', true)"), "{sql}");
        assert!(sql.contains("'{00000000-0000-0000-0000-000000000000}'"), "{sql}");
    }

    #[test]
    fn the_fingerprint_changes_with_every_grant_and_not_with_order_or_holder() {
        let base = Scope {
            user: Some("a".into()),
            rep_territories: vec!["BY".into(), "BE".into()],
            chains: vec![Uuid::nil()],
            ..Scope::default()
        };
        let same =
            Scope { user: Some("b".into()), rep_territories: vec!["BE".into(), "BY".into()], ..base.clone() };
        assert_eq!(base.fingerprint(), same.fingerprint());
        let others = [
            Scope { admin: true, ..base.clone() },
            Scope { platform: true, ..base.clone() },
            Scope { rep_territories: vec!["BY".into()], ..base.clone() },
            Scope { lead_territories: base.rep_territories.clone(), rep_territories: vec![], ..base.clone() },
            Scope { chains: vec![], ..base.clone() },
        ];
        for other in others {
            assert_ne!(base.fingerprint(), other.fingerprint(), "{other:?}");
        }
    }

    proptest! {
        /// Whatever the subject and territories, nothing but the fixed text and hex digits reaches
        /// the statement: no quote, no semicolon can be smuggled in.
        #[test]
        fn no_value_can_break_out_of_its_literal(subject in "\\PC{0,40}", territory in "\\PC{0,5}") {
            let scope = Scope { user: Some(subject), rep_territories: vec![territory], ..Scope::default() };
            let sql = scope.begin_sql();
            prop_assert_eq!(sql.matches('\'').count(), 28, "{}", sql);
            prop_assert_eq!(sql.matches(';').count(), 1, "{}", sql);
        }
    }
}
