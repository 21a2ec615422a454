//! The CEL rules agree with the plain meaning of their messages for all inputs, not just the
//! examples: exhaustively where the inputs are a few flags, by property tests elsewhere. Dates are
//! compared as strings by the rules, so the property that matters most is that string order is
//! date order for every date the schema admits.

use jiff::civil::Date;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::cel_failures;

fn calendar(windows: Value, dark_periods: Value) -> Value {
    json!({
        "apiVersion": "freshplan.io/v1alpha1",
        "kind": "SeasonalWindow",
        "metadata": {"name": "calendar", "namespace": "crm"},
        "spec": {"timezone": "Europe/Berlin", "windows": windows, "darkPeriods": dark_periods},
    })
}

/// The messages of the rules `object` fails.
fn failing(kind: &str, object: &Value) -> Vec<String> {
    cel_failures(kind, object)
        .into_iter()
        .map(|f| f.split_once(": ").map_or(f.clone(), |(_, m)| m.to_owned()))
        .collect()
}

/// A day-rule field and a valid value for it.
type DayRule = (&'static str, fn() -> Value);

const DAY_RULES: [DayRule; 4] = [
    ("yearly", || json!({"from": "12-20", "to": "01-06"})),
    ("dates", || json!({"from": "2026-09-19", "to": "2026-10-04"})),
    ("easter", || json!({"from": -2, "to": 1})),
    ("holidays", || json!({"state": "BY"})),
];

#[test]
fn windows_need_exactly_one_day_rule_and_dark_periods_at_most_one() {
    for mask in 0u8..16 {
        let mut window = json!({"name": "w", "floors": {"query": 2}});
        let mut dark = json!({"name": "d", "floors": {"query": 1}});
        for (bit, (field, rule)) in DAY_RULES.iter().enumerate() {
            if mask & (1 << bit) != 0 {
                dark[*field] = rule();
                if *field != "holidays" {
                    window[*field] = rule();
                }
            }
        }
        let set = mask.count_ones();
        let window_rules = (mask & 0b0111).count_ones();
        let failures = failing("SeasonalWindow", &calendar(json!([window]), json!([dark])));
        let expect_window = window_rules != 1;
        let expect_dark = set > 1;
        assert_eq!(
            failures.contains(&"a window needs exactly one of yearly, dates, easter".to_owned()),
            expect_window,
            "mask {mask:04b}: {failures:?}"
        );
        assert_eq!(
            failures
                .contains(&"a dark period takes at most one of yearly, dates, easter, holidays".to_owned()),
            expect_dark,
            "mask {mask:04b}: {failures:?}"
        );
        assert_eq!(failures.len(), usize::from(expect_window) + usize::from(expect_dark), "{failures:?}");
    }
}

#[test]
fn components_must_be_a_subset_of_the_floors_set() {
    const NAMES: [&str; 3] = ["query", "command", "relay"];
    for floors_mask in 1u8..8 {
        for components_mask in 0u8..8 {
            let floors: serde_json::Map<_, _> = (0..3)
                .filter(|b| floors_mask & (1 << b) != 0)
                .map(|b| (NAMES[b].to_owned(), json!(1)))
                .collect();
            let components: Vec<_> =
                (0..3).filter(|b| components_mask & (1 << b) != 0).map(|b| NAMES[b]).collect();
            let mut window =
                json!({"name": "w", "yearly": {"from": "01-01", "to": "01-31"}, "floors": floors});
            // An empty mask stands for "components omitted"; an empty list is refused by minItems.
            if components_mask != 0 {
                window["components"] = json!(components);
            }
            let failures = failing("SeasonalWindow", &calendar(json!([window]), json!([])));
            let subset = components_mask & !floors_mask == 0;
            assert_eq!(
                failures.is_empty(),
                subset,
                "floors {floors_mask:03b} components {components_mask:03b}: {failures:?}"
            );
        }
    }
}

fn date(days_since_2000: i32) -> Date {
    Date::new(2000, 1, 1).unwrap().checked_add(jiff::Span::new().days(days_since_2000)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// String order of the zero-padded dates is date order, so the rule means what it says.
    #[test]
    fn dates_to_before_from_is_refused_exactly_when_it_is_earlier(from in 0i32..40_000, to in 0i32..40_000) {
        let (from, to) = (date(from), date(to));
        let window = json!({"name": "w", "dates": {"from": from.to_string(), "to": to.to_string()}, "floors": {"query": 1}});
        let failures = failing("SeasonalWindow", &calendar(json!([window]), json!([])));
        let expected: Vec<String> =
            if to < from { vec!["dates.to must not be before dates.from".into()] } else { vec![] };
        prop_assert_eq!(failures, expected, "{} .. {}", from, to);
    }

    #[test]
    fn easter_ranges_must_not_run_backwards(from in -365i32..=365, to in -365i32..=365) {
        let window = json!({"name": "w", "easter": {"from": from, "to": to}, "floors": {"query": 1}});
        let failures = failing("SeasonalWindow", &calendar(json!([window]), json!([])));
        prop_assert_eq!(failures.is_empty(), from <= to, "{:?}", failures);
    }

    #[test]
    fn names_are_refused_exactly_when_one_repeats(names in prop::collection::vec("[abc]", 0..6)) {
        let windows: Vec<_> = names
            .iter()
            .map(|n| json!({"name": n, "yearly": {"from": "01-01", "to": "01-02"}, "floors": {"query": 1}}))
            .collect();
        let darks: Vec<_> = names.iter().map(|n| json!({"name": n, "floors": {"query": 1}})).collect();
        let failures = failing("SeasonalWindow", &calendar(json!(windows), json!(darks)));
        let unique = names.iter().collect::<std::collections::BTreeSet<_>>().len() == names.len();
        let expected: Vec<String> = if unique {
            vec![]
        } else {
            vec!["dark period names must be unique".into(), "window names must be unique".into()]
        };
        let mut failures = failures;
        failures.sort();
        prop_assert_eq!(failures, expected, "{:?}", names);
    }

    #[test]
    fn baselines_are_refused_exactly_when_min_exceeds_max(min in 0i32..50, max in 1i32..50) {
        let profile = json!({
            "apiVersion": "freshplan.io/v1alpha1",
            "kind": "ScalingProfile",
            "metadata": {"name": "crm", "namespace": "crm"},
            "spec": {
                "selector": {},
                "components": {"relay": {"minReplicas": min, "maxReplicas": max}},
            },
        });
        let failures = failing("ScalingProfile", &profile);
        prop_assert_eq!(failures.is_empty(), min <= max, "{:?}", failures);
    }
}
