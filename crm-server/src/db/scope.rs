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

    /// `BEGIN` and the `set_config` calls, sent as one simple query (one round trip). Values go
    /// into the text as literals, so each is made safe here: the subject is hex-encoded, and
    /// territories and chains can only be codes and UUIDs.
    fn begin_sql(&self) -> String {
        let subject = self.user.as_deref().unwrap_or("");
        let hex: String = subject.bytes().map(|b| format!("{b:02x}")).collect();
        let list = |items: Vec<String>| format!("{{{}}}", items.join(","));
        let territories = |ts: &[String]| list(ts.iter().filter(|t| is_territory(t)).cloned().collect());
        format!(
            "BEGIN; SELECT set_config('crm.user', convert_from(decode('{hex}', 'hex'), 'UTF8'), true), \
             set_config('crm.admin', '{}', true), set_config('crm.platform', '{}', true), \
             set_config('crm.lead_territories', '{}', true), set_config('crm.rep_territories', '{}', true), \
             set_config('crm.chains', '{}', true)",
            if self.admin { "on" } else { "off" },
            if self.platform { "on" } else { "off" },
            territories(&self.lead_territories),
            territories(&self.rep_territories),
            list(self.chains.iter().map(Uuid::to_string).collect()),
        )
    }
}

/// A transaction running under `scope`.
pub async fn begin(pool: &PgPool, scope: &Scope) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    pool.begin_with(sqlx::AssertSqlSafe(scope.begin_sql())).await
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
            sql.starts_with(
                "BEGIN; SELECT set_config('crm.user', convert_from(decode('6f2768617261', 'hex')"
            ),
            "{sql}"
        );
        assert!(sql.contains("set_config('crm.lead_territories', '{BY,NRW}', true)"), "{sql}");
        assert!(
            sql.contains("set_config('crm.admin', 'off', true), set_config('crm.platform', 'on', true)"),
            "{sql}"
        );
        assert!(sql.contains("set_config('crm.rep_territories', '{}', true)"), "{sql}");
        assert!(sql.contains("'{00000000-0000-0000-0000-000000000000}'"), "{sql}");
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
