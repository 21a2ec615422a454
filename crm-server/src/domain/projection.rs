//! The hot projection's mapping, in one place: which projection column comes from which field or
//! customer column, as an SQL expression. Both the incremental update (in the writing
//! transaction, touching only the columns of the fields written) and the full recompute (rebuild,
//! drift check) are generated from this table, so they cannot disagree about the mapping; what
//! the property test compares is whether every write reaches the projection.

/// A projection column fed by a hot field. `expr` reads the field's `jsonb` value from `{v}`;
/// a removed field (`{v}` NULL or JSON null) gives NULL.
#[derive(Debug, Clone, Copy)]
pub struct HotColumn {
    pub field: &'static str,
    pub column: &'static str,
    pub expr: &'static str,
}

pub const HOT_COLUMNS: &[HotColumn] = &[
    HotColumn { field: "roi_potential", column: "roi_bucket", expr: "({v} ->> 'bucket')" },
    HotColumn { field: "roi_potential", column: "roi_value", expr: "({v} ->> 'value')::numeric(12, 2)" },
    HotColumn { field: "decision_makers", column: "decision_maker_count", expr: "({v} ->> 'count')::int" },
    HotColumn {
        field: "decision_makers",
        column: "has_exec_alignment",
        expr: "({v} ->> 'has_exec_alignment')::boolean",
    },
    HotColumn {
        field: "seasonal_menu_cycle",
        column: "season_start",
        expr: "({v} ->> 'season_start')::date",
    },
    HotColumn { field: "seasonal_menu_cycle", column: "season_end", expr: "({v} ->> 'season_end')::date" },
    HotColumn {
        field: "current_supplier_contracts",
        column: "renewal_date",
        expr: "({v} ->> 'renewal_date')::date",
    },
    HotColumn {
        field: "current_supplier_contracts",
        column: "exclusivity",
        expr: "({v} ->> 'exclusivity')::boolean",
    },
];

/// Projection columns copied from the customer row (`c`), so that a search is one index scan and
/// the projection's access policy needs no lookup of the customer.
pub const CUSTOMER_COLUMNS: &[(&str, &str)] = &[
    ("territory", "c.territory"),
    ("name_key", "lower(c.name)"),
    ("owner_subject", "c.owner_subject"),
    ("chain_id", "crm_chain(c.parent_account_id, c.id, c.is_chain)"),
];

/// Projection columns from the customer's newest sample (`s`): the one with the latest
/// `last_event_at`, then the greatest id. A sample's status change updates them in its own
/// transaction when it is (or becomes) the newest (`crate::db::samples`); the recompute reads
/// them from here.
pub const SAMPLE_COLUMNS: &[(&str, &str)] = &[
    ("sample_status", "s.status"),
    ("sample_last_event_at", "s.last_event_at"),
    ("latest_sample_id", "s.id"),
];

/// The hot fields that feed columns, each once, in table order.
pub fn fields() -> Vec<&'static str> {
    let mut fields: Vec<&'static str> = HOT_COLUMNS.iter().map(|c| c.field).collect();
    fields.dedup();
    fields
}

/// Every column the recompute produces (besides `customer_id`), in order.
pub fn columns() -> Vec<&'static str> {
    CUSTOMER_COLUMNS
        .iter()
        .map(|(column, _)| *column)
        .chain(HOT_COLUMNS.iter().map(|c| c.column))
        .chain(SAMPLE_COLUMNS.iter().map(|(column, _)| *column))
        .collect()
}

/// `SET` assignments for the hot fields among `written`, each reading its new value from
/// `value_of(field)` (an SQL expression of type jsonb); `None` when no hot field was written, so
/// that the projection is not touched at all.
pub fn incremental_assignments(written: &[&str], value_of: impl Fn(&str) -> String) -> Option<String> {
    let assignments: Vec<String> = HOT_COLUMNS
        .iter()
        .filter(|c| written.contains(&c.field))
        .map(|c| format!("{} = {}", c.column, c.expr.replace("{v}", &value_of(c.field))))
        .collect();
    (!assignments.is_empty()).then(|| assignments.join(", "))
}

/// A `SELECT customer_id, <columns()>, source_changed_at` recomputing projection rows from the
/// source tables for the customers `c` matching `filter` (an SQL condition). `source_changed_at`
/// is the newest change of any source of the row.
pub fn recompute_select(filter: &str) -> String {
    let mut select: Vec<String> = vec!["c.id AS customer_id".into()];
    select.extend(CUSTOMER_COLUMNS.iter().map(|(column, expr)| format!("{expr} AS {column}")));
    select.extend(
        HOT_COLUMNS
            .iter()
            .map(|c| format!("{} AS {}", c.expr.replace("{v}", &format!("f_{}.value", c.field)), c.column)),
    );
    select.extend(SAMPLE_COLUMNS.iter().map(|(column, expr)| format!("{expr} AS {column}")));
    let fields = fields();
    let changed: Vec<String> = fields.iter().map(|f| format!("f_{f}.updated_at")).collect();
    select.push(format!("greatest(c.updated_at, s.updated_at, {}) AS source_changed_at", changed.join(", ")));
    let mut joins: String = fields
        .iter()
        .map(|f| {
            format!("\n LEFT JOIN field_values f_{f} ON f_{f}.customer_id = c.id AND f_{f}.field_key = '{f}'")
        })
        .collect();
    joins.push_str(
        "\n LEFT JOIN LATERAL (SELECT id, status, last_event_at, updated_at FROM sample_request
                               WHERE customer_id = c.id ORDER BY last_event_at DESC, id DESC LIMIT 1) s ON true",
    );
    format!("SELECT {} FROM customer c{joins} WHERE {filter}", select.join(", "))
}

/// The condition "projection row `p` differs from recomputed row `r`".
pub fn differs(p: &str, r: &str) -> String {
    let columns = columns();
    let side = |alias: &str| columns.iter().map(|c| format!("{alias}.{c}")).collect::<Vec<_>>().join(", ");
    format!("({}) IS DISTINCT FROM ({})", side(p), side(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_columns_of_written_hot_fields_are_assigned() {
        let set = incremental_assignments(&["roi_potential", "menu_notes"], |f| format!("v_{f}")).unwrap();
        assert_eq!(
            set,
            "roi_bucket = (v_roi_potential ->> 'bucket'), roi_value = (v_roi_potential ->> 'value')::numeric(12, 2)"
        );
        assert_eq!(incremental_assignments(&["menu_notes"], |f| f.to_owned()), None);
    }

    #[test]
    fn every_hot_field_feeds_its_columns_once() {
        assert_eq!(
            fields(),
            ["roi_potential", "decision_makers", "seasonal_menu_cycle", "current_supplier_contracts"]
        );
        let mut columns = columns();
        let count = columns.len();
        columns.sort();
        columns.dedup();
        assert_eq!(columns.len(), count, "a column is mapped twice");
    }

    #[test]
    fn the_recompute_joins_each_hot_field_once() {
        let sql = recompute_select("c.id = $1");
        assert_eq!(sql.matches("LEFT JOIN field_values").count(), fields().len());
        assert!(sql.ends_with("WHERE c.id = $1"), "{sql}");
        assert!(sql.contains("(f_roi_potential.value ->> 'bucket') AS roi_bucket"), "{sql}");
    }
}
