//! The building blocks of windows and dark periods: which days (a yearly range, one-off dates, days
//! around Easter, public holidays), which hours, and the replica floors per component.
//!
//! These are the shapes users write. Their meaning (time zones, DST, wrapping ranges) is the
//! calendar's business; here they are only parsed and checked for form.

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validation::{DATE, EASTER_DAYS_MAX, MONTH_DAY, TIME_FROM, TIME_TO};
use crate::component::Component;

/// The same days every year, `MM-DD` to `MM-DD`, both inclusive. A `to` before `from` wraps the year
/// end (`12-20` to `01-06` is Christmas into Epiphany). `02-29` means February 28 in common years.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct YearlyRange {
    /// First day, `MM-DD`.
    #[schemars(pattern(MONTH_DAY), length(max = 5))]
    pub from: String,
    /// Last day, `MM-DD`, inclusive.
    #[schemars(pattern(MONTH_DAY), length(max = 5))]
    pub to: String,
}

/// One-off local dates, `YYYY-MM-DD` to `YYYY-MM-DD`, both inclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.to >= self.from").message("dates.to must not be before dates.from"))]
pub struct DateRange {
    /// First day, `YYYY-MM-DD`.
    #[schemars(pattern(DATE), length(max = 10))]
    pub from: String,
    /// Last day, `YYYY-MM-DD`, inclusive.
    #[schemars(pattern(DATE), length(max = 10))]
    pub to: String,
}

/// Days counted from Easter Sunday (Western, Gregorian), both inclusive: `{from: -2, to: 1}` is
/// Good Friday to Easter Monday. Recurs every year without edits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(deny_unknown_fields)]
#[x_kube(validation = Rule::new("self.from <= self.to").message("easter.from must not be after easter.to"))]
pub struct EasterRange {
    /// First day, in days relative to Easter Sunday (negative: before).
    #[schemars(range(min = -EASTER_DAYS_MAX, max = EASTER_DAYS_MAX))]
    pub from: i32,
    /// Last day, in days relative to Easter Sunday, inclusive.
    #[schemars(range(min = -EASTER_DAYS_MAX, max = EASTER_DAYS_MAX))]
    pub to: i32,
}

/// Daily hours, local time, `HH:MM`. Each day of the range covers `from` to `to`; a `to` at or before
/// `from` ends on the next day (`22:00` to `06:00` is a night). `24:00` as `to` means midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DailyHours {
    /// Start, `HH:MM` (00:00 to 23:59).
    #[schemars(pattern(TIME_FROM), length(max = 5))]
    pub from: String,
    /// End, `HH:MM` (00:00 to 24:00).
    #[schemars(pattern(TIME_TO), length(max = 5))]
    pub to: String,
}

/// German public holidays, whole days: the nationwide ones plus those of `state` when given
/// (`holidays: {}` is nationwide only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Holidays {
    /// The federal state, by its ISO 3166-2 code without the `DE-` prefix (`BY`, `NW`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = not_null)]
    pub state: Option<freshplan_holidays::State>,
}

/// schemars lists `null` among the values of an optional enum; a structural schema must not (an
/// absent field already says "none"), so the optional field is made non-nullable instead.
fn not_null(schema: &mut schemars::Schema) {
    if let Some(serde_json::Value::Array(values)) = schema.get_mut("enum") {
        values.retain(|value| !value.is_null());
    }
    if let Some(serde_json::Value::Array(types)) = schema.get_mut("type") {
        types.retain(|ty| ty != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            schema.insert("type".into(), only);
        }
    }
}

/// Replica floors per component (each `>= 0`); a component left out gets no floor from this entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(deny_unknown_fields)]
#[x_kube(validation = Rule::new("has(self.query) || has(self.command) || has(self.relay)")
    .message("floors must set at least one of query, command, relay"))]
pub struct Floors {
    /// Floor for the query role (reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub query: Option<i32>,
    /// Floor for the command role (writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub command: Option<i32>,
    /// Floor for the relay role (outbox publisher).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub relay: Option<i32>,
}

impl Floors {
    /// The floor this entry sets for `component`, if any.
    pub fn get(&self, component: Component) -> Option<i32> {
        match component {
            Component::Query => self.query,
            Component::Command => self.command,
            Component::Relay => self.relay,
        }
    }

    /// The components this entry sets a floor for, with their floors, in [`Component::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Component, i32)> + '_ {
        Component::ALL.into_iter().filter_map(|c| self.get(c).map(|floor| (c, floor)))
    }
}

/// Which days an entry covers, borrowed from a window or dark period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateRule<'a> {
    Yearly(&'a YearlyRange),
    Dates(&'a DateRange),
    Easter(&'a EasterRange),
    Holidays(&'a Holidays),
}

impl DateRule<'_> {
    /// The field name in YAML, for messages.
    pub fn field(self) -> &'static str {
        match self {
            DateRule::Yearly(_) => "yearly",
            DateRule::Dates(_) => "dates",
            DateRule::Easter(_) => "easter",
            DateRule::Holidays(_) => "holidays",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_written_as_its_short_code() {
        for state in freshplan_holidays::State::ALL {
            let code = serde_json::to_value(state).unwrap();
            assert_eq!(code, state.short_code(), "{state:?}");
            assert_eq!(serde_json::from_value::<freshplan_holidays::State>(code).unwrap(), state);
        }
    }

    #[test]
    fn floors_list_the_components_they_set_in_order() {
        let floors = Floors { query: Some(8), command: None, relay: Some(0) };
        assert_eq!(floors.iter().collect::<Vec<_>>(), [(Component::Query, 8), (Component::Relay, 0)]);
        assert_eq!(floors.get(Component::Command), None);
        assert_eq!(Floors::default().iter().count(), 0);
    }
}
