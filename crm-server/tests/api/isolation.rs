//! Territory isolation: through the HTTP API, no user ever sees or changes a row outside their
//! scope and always sees every row inside it; checked against an independent model of the rules
//! over random users and data. And the database itself shows nothing without a scope.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use crm_server::auth::{Identity, UserRole};
use crm_server::db::{customers, scope};
use crm_server::domain::customer::{CoveragePolicy, CustomerInput};
use crm_server::testing::TestApp;
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

const TERRITORIES: [&str; 3] = ["BY", "NRW", "BER"];
const REPS: [&str; 3] = ["rep-a", "rep-b", "rep-c"];

#[derive(Debug, Clone)]
struct Customer {
    id: Uuid,
    territory: &'static str,
    owner: Option<&'static str>,
    is_chain: bool,
    parent: Option<Uuid>,
    coverage: CoveragePolicy,
}

impl Customer {
    fn chain(&self) -> Option<Uuid> {
        self.parent.or(self.is_chain.then_some(self.id))
    }
}

#[derive(Debug, Clone)]
struct User {
    subject: &'static str,
    roles: BTreeSet<UserRole>,
    territories: Vec<&'static str>,
    /// Indexes into the world's chains.
    chains: Vec<usize>,
}

#[derive(Debug, Clone)]
struct World {
    /// (territory, owner, coverage) of each chain.
    chains: Vec<(&'static str, Option<&'static str>, CoveragePolicy)>,
    /// (territory, owner, chain index) of each other customer.
    customers: Vec<(&'static str, Option<&'static str>, Option<usize>)>,
    users: Vec<User>,
}

fn territory() -> impl Strategy<Value = &'static str> {
    prop::sample::select(TERRITORIES.to_vec())
}

fn owner() -> impl Strategy<Value = Option<&'static str>> {
    proptest::option::of(prop::sample::select(REPS.to_vec()))
}

fn world() -> impl Strategy<Value = World> {
    let chain =
        (territory(), owner(), prop::sample::select(vec![CoveragePolicy::Own, CoveragePolicy::ChainShared]));
    prop::collection::vec(chain, 0..3).prop_flat_map(|chains| {
        let n = chains.len();
        let customer = (territory(), owner(), proptest::option::of(0..n.max(1)))
            .prop_map(move |(t, o, c)| (t, o, if n == 0 { None } else { c }));
        let user = (
            prop::sample::select(vec!["rep-a", "rep-b", "rep-c", "lead", "manager"]),
            prop::sample::subsequence(
                vec![
                    UserRole::SalesRep,
                    UserRole::TeamLead,
                    UserRole::ChainManager,
                    UserRole::Admin,
                    UserRole::Platform,
                ],
                1..=2,
            ),
            prop::sample::subsequence(TERRITORIES.to_vec(), 0..=2),
            prop::sample::subsequence((0..n).collect::<Vec<_>>(), 0..=n),
        )
            .prop_map(|(subject, roles, territories, chains)| User {
                subject,
                roles: roles.into_iter().collect(),
                territories,
                chains,
            });
        (Just(chains), prop::collection::vec(customer, 1..9), prop::collection::vec(user, 1..4))
            .prop_map(|(chains, customers, users)| World { chains, customers, users })
    })
}

/// The rules, written again from the issue's words, independently of the SQL policies.
struct Model<'a> {
    customers: &'a [Customer],
    user: &'a User,
    chain_ids: Vec<Uuid>,
}

impl Model<'_> {
    fn has(&self, role: UserRole) -> bool {
        self.user.roles.contains(&role)
    }

    fn in_territories(&self, role: UserRole, c: &Customer) -> bool {
        self.has(role) && self.user.territories.contains(&c.territory)
    }

    fn manages(&self, c: &Customer) -> bool {
        self.has(UserRole::ChainManager)
            && c.chain().is_some_and(|chain| self.user.chains.iter().any(|i| self.chain_ids[*i] == chain))
    }

    /// Chains in which the user, as a rep, owns a customer in their territories.
    fn rep_chains(&self, shared_only: bool) -> Vec<Uuid> {
        self.customers
            .iter()
            .filter(|c| c.owner == Some(self.user.subject) && self.in_territories(UserRole::SalesRep, c))
            .filter_map(Customer::chain)
            .filter(|chain| {
                !shared_only
                    || self
                        .customers
                        .iter()
                        .any(|c| c.id == *chain && c.coverage == CoveragePolicy::ChainShared)
            })
            .collect()
    }

    fn reads(&self, c: &Customer) -> bool {
        self.has(UserRole::Admin)
            || self.in_territories(UserRole::TeamLead, c)
            || self.manages(c)
            || (self.in_territories(UserRole::SalesRep, c)
                && (c.owner.is_none()
                    || c.owner == Some(self.user.subject)
                    || c.chain().is_some_and(|chain| self.rep_chains(false).contains(&chain))))
    }

    /// Whether a role of the user may write `menu_notes` at all (the field catalog names the roles;
    /// the platform role is none of them and is refused by role, whatever the customer).
    fn writes_fields(&self) -> bool {
        [UserRole::SalesRep, UserRole::TeamLead, UserRole::ChainManager, UserRole::Admin]
            .iter()
            .any(|r| self.has(*r))
    }

    fn writes(&self, c: &Customer) -> bool {
        self.has(UserRole::Admin)
            || self.in_territories(UserRole::TeamLead, c)
            || self.manages(c)
            || (self.in_territories(UserRole::SalesRep, c)
                && (c.owner == Some(self.user.subject)
                    || c.chain().is_some_and(|chain| self.rep_chains(true).contains(&chain))))
    }
}

async fn insert(app: &TestApp, c: &Customer) {
    let mut input: CustomerInput = serde_json::from_value(
        json!({"name": format!("Kunde {}", c.id), "segment": "RESTAURANT", "territory": c.territory}),
    )
    .unwrap();
    input.is_chain = c.is_chain;
    input.parent_account_id = c.parent;
    input.owner_subject = c.owner.map(str::to_owned);
    input.coverage_policy = c.coverage;
    let mut conn = app.db.pool.acquire().await.unwrap();
    customers::insert(&mut conn, c.id, &input.validate().unwrap()).await.unwrap();
}

async fn build(app: &TestApp, world: &World) -> Vec<Customer> {
    sqlx::query("TRUNCATE customer CASCADE").execute(&app.db.pool).await.unwrap();
    let mut all = Vec::new();
    for (territory, owner, coverage) in &world.chains {
        let c = Customer {
            id: Uuid::now_v7(),
            territory,
            owner: *owner,
            is_chain: true,
            parent: None,
            coverage: *coverage,
        };
        insert(app, &c).await;
        all.push(c);
    }
    let chain_ids: Vec<Uuid> = all.iter().map(|c| c.id).collect();
    for (territory, owner, chain) in &world.customers {
        let parent = chain.map(|i| chain_ids[i]);
        let c = Customer {
            id: Uuid::now_v7(),
            territory,
            owner: *owner,
            is_chain: false,
            parent,
            coverage: CoveragePolicy::Own,
        };
        insert(app, &c).await;
        all.push(c);
    }
    all
}

#[test]
fn no_user_sees_or_changes_a_row_outside_their_scope_and_everyone_sees_all_inside() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let app = runtime.block_on(TestApp::spawn());
    let config = ProptestConfig { cases: 24, failure_persistence: None, ..ProptestConfig::default() };
    proptest!(config, |(world in world())| {
        runtime.block_on(async {
            let customers = build(&app, &world).await;
            let chain_ids: Vec<Uuid> = customers.iter().filter(|c| c.is_chain).map(|c| c.id).collect();
            for user in &world.users {
                let model = Model { customers: &customers, user, chain_ids: chain_ids.clone() };
                let roles: Vec<UserRole> = user.roles.iter().copied().collect();
                let chains: Vec<Uuid> = user.chains.iter().map(|i| chain_ids[*i]).collect();
                let token = app.token(user.subject, &roles, &user.territories, &chains);
                let auth = format!("Bearer {token}");
                let headers = [("authorization", auth.as_str())];

                let listed = app.send(Method::GET, "/customers?limit=500", &headers, "").await.json();
                let seen: BTreeSet<String> =
                    listed["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect();
                let expected: BTreeSet<String> =
                    customers.iter().filter(|c| model.reads(c)).map(|c| c.id.to_string()).collect();
                assert_eq!(seen, expected, "{user:?} lists the wrong customers of {customers:#?}");

                for c in &customers {
                    let read = app.send(Method::GET, &format!("/customers/{}", c.id), &headers, "").await.status;
                    let fields = app.send(Method::GET, &format!("/customers/{}/fields", c.id), &headers, "").await.status;
                    let expected = if model.reads(c) { StatusCode::OK } else { StatusCode::NOT_FOUND };
                    assert_eq!((read, fields), (expected, expected), "{user:?} reading {c:?}");

                    let write = app
                        .send(
                            Method::PATCH,
                            &format!("/customers/{}/fields", c.id),
                            &[("authorization", auth.as_str()), ("content-type", "application/json"), ("if-match", "*")],
                            r#"{"menu_notes": "Besuch geplant"}"#,
                        )
                        .await
                        .status;
                    let expected = match (model.reads(c), model.writes(c)) {
                        _ if !model.writes_fields() => StatusCode::FORBIDDEN,
                        (_, true) => StatusCode::OK,
                        (true, false) => StatusCode::FORBIDDEN,
                        (false, false) => StatusCode::NOT_FOUND,
                    };
                    assert_eq!(write, expected, "{user:?} writing {c:?} of {customers:#?}");
                }
                database_alone_enforces(&app, &model, &customers).await;
            }
        });
    });
}

/// The same rules hold in the database without the server's own checks: under the user's scope,
/// on the app login, every customer-owned table admits exactly the rows of customers the model
/// says the user may write, and shows exactly those they may read.
async fn database_alone_enforces(app: &TestApp, model: &Model<'_>, customers: &[Customer]) {
    let identity = Identity {
        subject: model.user.subject.to_owned(),
        roles: model.user.roles.clone(),
        territories: model.user.territories.iter().map(|t| t.to_string()).collect(),
        chains: model.user.chains.iter().map(|i| model.chain_ids[*i]).collect(),
        expires_at: None,
    };
    let pool = sqlx::PgPool::connect(&app.db.app_url).await.unwrap();
    let mut tx = scope::begin(&pool, &identity.scope()).await.unwrap();
    let readable: BTreeSet<Uuid> = sqlx::query_scalar("SELECT id FROM customer")
        .fetch_all(&mut *tx)
        .await
        .unwrap()
        .into_iter()
        .collect();
    let expected: BTreeSet<Uuid> = customers.iter().filter(|c| model.reads(c)).map(|c| c.id).collect();
    assert_eq!(readable, expected, "{:?} reads the wrong customers in the database", model.user);
    // A contact of no account yet (anyone in scope may add one), to give roles to.
    let contact = Uuid::now_v7();
    sqlx::query("INSERT INTO contact (id, first_name, last_name) VALUES ($1, 'Anna', 'Huber')")
        .bind(contact)
        .execute(&mut *tx)
        .await
        .unwrap();
    let inserts = [
        "INSERT INTO field_values (customer_id, field_key, value, updated_by) VALUES ($1, 'kitchen_profile', '{}', 't')",
        "INSERT INTO field_value_history (customer_id, field_key, new_value, actor) VALUES ($1, 'kitchen_profile', '{}', 't')",
        "INSERT INTO contact_roles (account_id, contact_id, role) VALUES ($1, $2, 'BUYER')",
    ];
    for c in customers {
        for insert in inserts {
            sqlx::query("SAVEPOINT attempt").execute(&mut *tx).await.unwrap();
            let mut query = sqlx::query(insert).bind(c.id);
            if insert.contains("$2") {
                query = query.bind(contact);
            }
            let admitted = query.execute(&mut *tx).await;
            sqlx::query("ROLLBACK TO SAVEPOINT attempt").execute(&mut *tx).await.unwrap();
            if let Err(e) = &admitted {
                assert!(e.to_string().contains("row-level security"), "{insert}: {e}");
            }
            assert_eq!(admitted.is_ok(), model.writes(c), "{:?}: {insert} for {c:?}", model.user);
        }
    }
    tx.rollback().await.unwrap();
    pool.close().await;
}

/// Row-level security is the database's, not the server's WHERE clauses: the app login with no
/// scope set sees no row at all, while the owner sees them all.
#[tokio::test]
async fn without_a_scope_the_database_shows_nothing() {
    let app = TestApp::spawn().await;
    for n in 0..3 {
        let res = app
            .send_json(
                Method::POST,
                "/customers",
                &json!({"name": format!("K{n}"), "segment": "HOTEL", "territory": "BY"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
        let id = res.json()["id"].as_str().unwrap().to_owned();
        let res = app
            .send_json_with(
                Method::PATCH,
                &format!("/customers/{id}/fields"),
                &[("if-match", "*")],
                &json!({"menu_notes": "x"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK);
    }
    let mut app_login = <sqlx::PgConnection as sqlx::Connection>::connect(&app.db.app_url).await.unwrap();
    for table in ["customer", "cm_customer_hot_proj", "field_values", "field_value_history", "event_outbox"] {
        let owner: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&app.db.pool)
            .await
            .unwrap();
        let unscoped: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
            .fetch_one(&mut app_login)
            .await
            .unwrap();
        assert!(owner >= 3, "{table}: {owner}");
        assert_eq!(unscoped, 0, "{table} shows rows without a scope");
    }
    let write = sqlx::query("UPDATE customer SET name = 'taken over'").execute(&mut app_login).await.unwrap();
    assert_eq!(write.rows_affected(), 0);
}

#[tokio::test]
async fn a_sales_rep_may_not_reassign_share_or_write_contract_fields() {
    let app = TestApp::spawn().await;
    let rep = format!("Bearer {}", app.token("rep-a", &[UserRole::SalesRep], &["BY"], &[]));
    let res = app
        .send(
            Method::POST,
            "/customers",
            &[("authorization", &rep), ("content-type", "application/json")],
            r#"{"name": "Wirtshaus", "segment": "RESTAURANT", "territory": "BY"}"#,
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.text());
    let created = res.json();
    assert_eq!(created["ownerSubject"], "rep-a", "a rep's new customer is theirs");
    let id = created["id"].as_str().unwrap();

    let patch = |body: &'static str| {
        let rep = rep.clone();
        let path = format!("/customers/{id}");
        let app = &app;
        async move {
            app.send(
                Method::PATCH,
                &path,
                &[("authorization", &rep), ("content-type", "application/json"), ("if-match", "*")],
                body,
            )
            .await
        }
    };
    patch(r#"{"ownerSubject": "rep-b"}"#).await.problem(StatusCode::FORBIDDEN);
    patch(r#"{"coveragePolicy": "CHAIN_SHARED"}"#).await.problem(StatusCode::FORBIDDEN);
    let res = patch(r#"{"name": "Wirtshaus am Markt"}"#).await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.text());

    let contract = app
        .send(
            Method::PATCH,
            &format!("/customers/{id}/fields"),
            &[("authorization", &rep), ("content-type", "application/json"), ("if-match", "*")],
            r#"{"current_supplier_contracts": {"renewal_date": "2027-01-01", "exclusivity": true}}"#,
        )
        .await;
    let problem = contract.problem(StatusCode::FORBIDDEN);
    assert!(problem["detail"].as_str().unwrap().contains("current_supplier_contracts"), "{problem}");

    // A rep cannot create a customer outside their territories.
    let res = app
        .send(
            Method::POST,
            "/customers",
            &[("authorization", &rep), ("content-type", "application/json")],
            r#"{"name": "Kölsche Stube", "segment": "RESTAURANT", "territory": "NRW"}"#,
        )
        .await;
    res.problem(StatusCode::FORBIDDEN);

    for path in ["/admin/log-level", "/projection/staleness"] {
        app.send(Method::GET, path, &[("authorization", &rep)], "").await.problem(StatusCode::FORBIDDEN);
    }
}

/// Every table the app login can read holds row-level security, but for the read-only catalogs
/// and the bookkeeping of checks, the relay and consumers (counts, positions, ids; no customer
/// data): a table a later migration adds without policies fails here.
#[tokio::test]
async fn every_table_the_server_reads_has_row_level_security() {
    let db = crm_server::testing::TestDb::new().await;
    let unprotected: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = 'public' AND c.relkind = 'r' AND NOT c.relrowsecurity
            AND has_table_privilege('crm_app', c.oid, 'SELECT')
          ORDER BY 1",
    )
    .fetch_all(&db.pool)
    .await
    .unwrap();
    assert_eq!(
        unprotected,
        [
            "_sqlx_migrations",
            "consumer_checkpoint",
            "consumer_dead_letter",
            "field_catalog",
            "outbox_log",
            "outbox_pending",
            "outbox_relay",
            "product",
            "projection_check",
            "sample_kit",
            "sample_kit_item"
        ]
    );
}
