//! `SeasonalWindow` (`sw`): the calendar SREs edit. Windows raise replica floors (Oktoberfest,
//! Christmas, asparagus season); dark periods lower them (nights, public holidays).
//!
//! ```yaml
//! spec:
//!   timezone: Europe/Berlin
//!   windows:
//!     - name: oktoberfest
//!       yearly: {from: "09-19", to: "10-04"}
//!       hours: {from: "10:00", to: "23:30"}
//!       preWarm: 2h
//!       territories: [BY]
//!       floors: {query: 8, command: 4}
//!   darkPeriods:
//!     - name: nights
//!       hours: {from: "00:00", to: "06:00"}
//!       floors: {query: 1, command: 1, relay: 1}
//! ```

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use super::schedule::{DailyHours, DateRange, DateRule, EasterRange, Floors, Holidays, YearlyRange};
use super::validation::{
    DURATION, MAX_COMPONENTS, MAX_DARK_PERIODS, MAX_TERRITORIES, MAX_WINDOWS, NAME, NAME_MAX, TERRITORY,
    TERRITORY_MAX, TIMEZONE, TIMEZONE_MAX,
};
use crate::component::Component;

/// A calendar of seasonal windows and dark periods in one time zone.
#[derive(CustomResource, Debug, Clone, PartialEq, Serialize, Deserialize, KubeSchema)]
// Every printer column repeats `type_ = "string"`, which clippy takes for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "freshplan.io",
    version = "v1alpha1",
    kind = "SeasonalWindow",
    namespaced,
    status = "SeasonalWindowStatus",
    shortname = "sw",
    category = "freshplan",
    derive = "PartialEq",
    doc = "A calendar of seasonal windows that raise replica floors and dark periods that lower them.",
    printcolumn(name = "Timezone", type_ = "string", json_path = ".spec.timezone"),
    printcolumn(
        name = "Active",
        type_ = "string",
        description = "The windows in force now",
        json_path = ".status.activeWindows"
    ),
    printcolumn(
        name = "Next",
        type_ = "string",
        description = "When the set of active windows and dark periods next changes",
        json_path = ".status.nextTransition"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeasonalWindowSpec {
    /// The IANA time zone all dates and hours are read in, such as `Europe/Berlin`.
    #[schemars(pattern(TIMEZONE), length(max = TIMEZONE_MAX))]
    pub timezone: String,

    /// Windows that raise floors. Where several are active, each floor is the highest they ask for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_WINDOWS))]
    #[x_kube(validation = Rule::new("self.all(w, self.exists_one(x, x.name == w.name))")
        .message("window names must be unique"))]
    pub windows: Vec<Window>,

    /// Periods that lower floors: while one is active, each floor it covers is capped at its value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = MAX_DARK_PERIODS))]
    #[x_kube(validation = Rule::new("self.all(d, self.exists_one(x, x.name == d.name))")
        .message("dark period names must be unique"))]
    pub dark_periods: Vec<DarkPeriod>,
}

/// A recurring or one-off period with raised replica floors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("(has(self.yearly) ? 1 : 0) + (has(self.dates) ? 1 : 0) + (has(self.easter) ? 1 : 0) == 1")
        .message("a window needs exactly one of yearly, dates, easter"),
    validation = Rule::new(COMPONENTS_IN_FLOORS).message("components may only name components that floors sets")
)]
pub struct Window {
    /// Unique in the calendar; shown in status and in generated trigger names.
    #[schemars(pattern(NAME), length(max = NAME_MAX))]
    pub name: String,

    /// The same days every year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yearly: Option<YearlyRange>,

    /// One-off dates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dates: Option<DateRange>,

    /// Days relative to Easter Sunday.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub easter: Option<EasterRange>,

    /// Daily hours within those days; omitted: whole days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<DailyHours>,

    /// Raise the floors this long before each occurrence starts, so pods are ready when load
    /// arrives: `90m`, `2h`, `1h30m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(DURATION), length(max = 10))]
    #[x_kube(validation = Rule::new("duration(self) <= duration('168h')").message("preWarm must be at most 168h (a week)"))]
    pub pre_warm: Option<String>,

    /// Territories covered (`freshplan.io/territory`); omitted: every territory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_TERRITORIES), inner(pattern(TERRITORY), length(max = TERRITORY_MAX)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub territories: Option<Vec<String>>,

    /// Components covered; omitted: every component `floors` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_COMPONENTS))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub components: Option<Vec<Component>>,

    /// The floors this window asks for.
    pub floors: Floors,
}

/// A period with lowered replica floors: nights, public holidays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("(has(self.yearly) ? 1 : 0) + (has(self.dates) ? 1 : 0) + (has(self.easter) ? 1 : 0) + (has(self.holidays) ? 1 : 0) <= 1")
        .message("a dark period takes at most one of yearly, dates, easter, holidays"),
    validation = Rule::new(COMPONENTS_IN_FLOORS).message("components may only name components that floors sets")
)]
pub struct DarkPeriod {
    /// Unique among the calendar's dark periods; shown in status.
    #[schemars(pattern(NAME), length(max = NAME_MAX))]
    pub name: String,

    /// The same days every year.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yearly: Option<YearlyRange>,

    /// One-off dates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dates: Option<DateRange>,

    /// Days relative to Easter Sunday.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub easter: Option<EasterRange>,

    /// German public holidays, whole days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holidays: Option<Holidays>,

    /// Daily hours within those days (every day when no day rule is given); omitted: whole days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<DailyHours>,

    /// Territories covered; omitted: every territory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_TERRITORIES), inner(pattern(TERRITORY), length(max = TERRITORY_MAX)))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub territories: Option<Vec<String>>,

    /// Components covered; omitted: every component `floors` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = MAX_COMPONENTS))]
    #[x_kube(merge_strategy = ListMerge::Set)]
    pub components: Option<Vec<Component>>,

    /// The caps this dark period sets.
    pub floors: Floors,
}

/// The CEL rule shared by windows and dark periods: `components`, when given, only names components
/// `floors` sets (a covered component without a floor would do nothing, which is surely a typo).
const COMPONENTS_IN_FLOORS: &str = "!has(self.components) || self.components.all(c, c == 'query' ? has(self.floors.query) : c == 'command' ? has(self.floors.command) : has(self.floors.relay))";

impl Window {
    /// The day rules set on this window; a valid window has exactly one.
    pub fn date_rules(&self) -> Vec<DateRule<'_>> {
        let mut rules = Vec::with_capacity(1);
        rules.extend(self.yearly.as_ref().map(DateRule::Yearly));
        rules.extend(self.dates.as_ref().map(DateRule::Dates));
        rules.extend(self.easter.as_ref().map(DateRule::Easter));
        rules
    }

    /// The components this window raises: `components` when given, else every one `floors` names.
    pub fn covered_components(&self) -> Vec<Component> {
        covered(self.components.as_deref(), &self.floors)
    }
}

impl DarkPeriod {
    /// The day rules set on this dark period; a valid one has at most one (none: every day).
    pub fn date_rules(&self) -> Vec<DateRule<'_>> {
        let mut rules = Vec::with_capacity(1);
        rules.extend(self.yearly.as_ref().map(DateRule::Yearly));
        rules.extend(self.dates.as_ref().map(DateRule::Dates));
        rules.extend(self.easter.as_ref().map(DateRule::Easter));
        rules.extend(self.holidays.as_ref().map(DateRule::Holidays));
        rules
    }

    /// The components this dark period caps: `components` when given, else every one `floors` names.
    pub fn covered_components(&self) -> Vec<Component> {
        covered(self.components.as_deref(), &self.floors)
    }
}

fn covered(components: Option<&[Component]>, floors: &Floors) -> Vec<Component> {
    match components {
        Some(listed) => Component::ALL.into_iter().filter(|c| listed.contains(c)).collect(),
        None => floors.iter().map(|(component, _)| component).collect(),
    }
}

/// What the controller last observed of the calendar.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeasonalWindowStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// Names of the windows in force now (pre-warm included).
    #[serde(default)]
    pub active_windows: Vec<String>,

    /// Names of the dark periods in force now.
    #[serde(default)]
    pub active_dark_periods: Vec<String>,

    /// When the set of active windows and dark periods next changes (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_transition: Option<Time>,

    /// Conditions of the calendar (such as whether it is valid), one per type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(components: Option<Vec<Component>>) -> Window {
        Window {
            name: "wiesn".into(),
            yearly: Some(YearlyRange { from: "09-19".into(), to: "10-04".into() }),
            dates: None,
            easter: None,
            hours: None,
            pre_warm: None,
            territories: None,
            components,
            floors: Floors { query: Some(8), command: Some(4), relay: None },
        }
    }

    #[test]
    fn a_window_covers_its_listed_components_or_else_those_with_floors() {
        assert_eq!(window(None).covered_components(), [Component::Query, Component::Command]);
        let listed = window(Some(vec![Component::Command, Component::Query]));
        assert_eq!(listed.covered_components(), [Component::Query, Component::Command], "in Component order");
    }

    #[test]
    fn date_rules_lists_each_rule_that_is_set() {
        let mut both = window(None);
        assert_eq!(both.date_rules().iter().map(|r| r.field()).collect::<Vec<_>>(), ["yearly"]);
        both.easter = Some(EasterRange { from: -2, to: 1 });
        assert_eq!(both.date_rules().iter().map(|r| r.field()).collect::<Vec<_>>(), ["yearly", "easter"]);

        let nights = DarkPeriod {
            name: "nights".into(),
            yearly: None,
            dates: None,
            easter: None,
            holidays: None,
            hours: Some(DailyHours { from: "00:00".into(), to: "06:00".into() }),
            territories: None,
            components: None,
            floors: Floors { query: Some(1), command: None, relay: Some(1) },
        };
        assert!(nights.date_rules().is_empty(), "no day rule: every day");
        assert_eq!(nights.covered_components(), [Component::Query, Component::Relay]);
    }
}
