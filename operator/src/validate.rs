//! Resources as written -> the validated values the calendar and the renderers take, or every
//! reason they cannot be, each with the field path it is about.
//!
//! The CRD's OpenAPI and CEL rules catch most mistakes at `kubectl apply`; what they cannot (time
//! zones, dates that do not exist, a calendar a profile names that is missing) is caught here,
//! the same way for the controller's status conditions and for `calendar validate`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jiff::civil::Date;
use k8s_openapi::api::apps::v1::Deployment;

use crate::calendar::{
    Baseline, Calendar, CalendarError, DarkDays, DarkPeriod, DateRange, Days, EasterRange, Hours, MonthDay,
    PreWarm, Replicas, TimeOfDay, Window, time_zone,
};
use crate::component::{COMPONENT_LABEL, Component, TERRITORY_LABEL};
use crate::crd::scaling_profile::ScalingProfileSpec;
use crate::crd::schedule::{DailyHours, Floors};
use crate::crd::seasonal_window::{self, SeasonalWindowSpec};
use crate::render::workload::{Autoscaling, Metric, Workload};

/// One reason a resource is not valid, at `path` (`spec.windows[2].hours.to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects the reasons while a resource is read, so that one pass reports all of them.
#[derive(Default)]
struct Found(Vec<Invalid>);

impl Found {
    fn check<T>(&mut self, path: impl fmt::Display, result: Result<T, CalendarError>) -> Option<T> {
        result.map_err(|e| self.0.push(Invalid { path: path.to_string(), message: e.to_string() })).ok()
    }

    fn push(&mut self, path: impl fmt::Display, message: impl Into<String>) {
        self.0.push(Invalid { path: path.to_string(), message: message.into() });
    }

    fn finish<T>(self, value: Option<T>) -> Result<T, Vec<Invalid>> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(self.0),
        }
    }
}

/// A SeasonalWindow's spec as a calendar.
pub fn calendar(spec: &SeasonalWindowSpec) -> Result<Calendar, Vec<Invalid>> {
    let mut found = Found::default();
    let timezone = found.check("spec.timezone", time_zone(&spec.timezone));
    let windows: Vec<Option<Window>> = spec
        .windows
        .iter()
        .enumerate()
        .map(|(i, w)| window(&mut found, &format!("spec.windows[{i}]"), w))
        .collect();
    let darks: Vec<Option<DarkPeriod>> = spec
        .dark_periods
        .iter()
        .enumerate()
        .map(|(i, d)| dark_period(&mut found, &format!("spec.darkPeriods[{i}]"), d))
        .collect();
    let calendar = match (timezone, windows.into_iter().collect(), darks.into_iter().collect()) {
        (Some(tz), Some(windows), Some(darks)) => found.check("spec", Calendar::new(tz, windows, darks)),
        _ => None,
    };
    found.finish(calendar)
}

fn window(found: &mut Found, path: &str, w: &seasonal_window::Window) -> Option<Window> {
    let days = match (&w.yearly, &w.dates, &w.easter) {
        (Some(yearly), None, None) => yearly_days(found, &format!("{path}.yearly"), &yearly.from, &yearly.to),
        (None, Some(dates), None) => date_days(found, &format!("{path}.dates"), &dates.from, &dates.to),
        (None, None, Some(easter)) => found
            .check(format!("{path}.easter"), EasterRange::new(easter.from.into(), easter.to.into()))
            .map(Days::Easter),
        _ => {
            found.push(path, "a window needs exactly one of yearly, dates, easter");
            None
        }
    };
    let hours = hours(found, &format!("{path}.hours"), w.hours.as_ref());
    let pre_warm = match &w.pre_warm {
        Some(text) => found.check(format!("{path}.preWarm"), text.parse::<PreWarm>()),
        None => found.check(format!("{path}.preWarm"), PreWarm::from_minutes(0)),
    };
    let floors = floors(found, &format!("{path}.floors"), &w.floors);
    Some(Window {
        name: w.name.clone(),
        days: days?,
        hours: hours?,
        pre_warm: pre_warm?,
        territories: w.territories.as_ref().map(|t| t.iter().cloned().collect()),
        components: w.components.as_ref().map(|c| c.iter().copied().collect::<BTreeSet<Component>>()),
        floors: floors?,
    })
}

fn dark_period(found: &mut Found, path: &str, d: &seasonal_window::DarkPeriod) -> Option<DarkPeriod> {
    let days = match (&d.yearly, &d.dates, &d.easter, &d.holidays) {
        (None, None, None, None) => Some(DarkDays::Every),
        (Some(yearly), None, None, None) => {
            yearly_days(found, &format!("{path}.yearly"), &yearly.from, &yearly.to).map(DarkDays::Days)
        }
        (None, Some(dates), None, None) => {
            date_days(found, &format!("{path}.dates"), &dates.from, &dates.to).map(DarkDays::Days)
        }
        (None, None, Some(easter), None) => found
            .check(format!("{path}.easter"), EasterRange::new(easter.from.into(), easter.to.into()))
            .map(|range| DarkDays::Days(Days::Easter(range))),
        (None, None, None, Some(holidays)) => Some(DarkDays::Holidays(holidays.state)),
        _ => {
            found.push(path, "a dark period takes at most one of yearly, dates, easter, holidays");
            None
        }
    };
    let hours = hours(found, &format!("{path}.hours"), d.hours.as_ref());
    let floors = floors(found, &format!("{path}.floors"), &d.floors);
    Some(DarkPeriod {
        name: d.name.clone(),
        days: days?,
        hours: hours?,
        territories: d.territories.as_ref().map(|t| t.iter().cloned().collect()),
        components: d.components.as_ref().map(|c| c.iter().copied().collect::<BTreeSet<Component>>()),
        floors: floors?,
    })
}

fn yearly_days(found: &mut Found, path: &str, from: &str, to: &str) -> Option<Days> {
    let from = found.check(format!("{path}.from"), from.parse::<MonthDay>());
    let to = found.check(format!("{path}.to"), to.parse::<MonthDay>());
    Some(Days::Yearly { from: from?, to: to? })
}

fn date_days(found: &mut Found, path: &str, from: &str, to: &str) -> Option<Days> {
    let mut date = |field: &str, text: &str| match text.parse::<Date>() {
        Ok(date) => Some(date),
        Err(_) => {
            found.push(
                format!("{path}.{field}"),
                format!("\"{text}\" is not a date that exists (YYYY-MM-DD)"),
            );
            None
        }
    };
    let (from, to) = (date("from", from), date("to", to));
    found.check(path, DateRange::new(from?, to?)).map(Days::Dates)
}

/// `Some(None)`: no hours (whole days); `None`: invalid.
fn hours(found: &mut Found, path: &str, hours: Option<&DailyHours>) -> Option<Option<Hours>> {
    let Some(hours) = hours else { return Some(None) };
    let from = found.check(format!("{path}.from"), hours.from.parse::<TimeOfDay>());
    let to = found.check(format!("{path}.to"), hours.to.parse::<TimeOfDay>());
    found.check(path, Hours::new(from?, to?)).map(Some)
}

fn floors(found: &mut Found, path: &str, floors: &Floors) -> Option<BTreeMap<Component, u32>> {
    let mut out = BTreeMap::new();
    for (component, floor) in floors.iter() {
        match u32::try_from(floor) {
            Ok(floor) => {
                out.insert(component, floor);
            }
            Err(_) => {
                found.push(format!("{path}.{component}"), format!("a floor of {floor} replicas is below 0"))
            }
        }
    }
    if floors.iter().next().is_none() {
        found.push(path, "floors must set at least one of query, command, relay");
    }
    Some(out)
}

/// A ScalingProfile's baselines.
pub fn baseline(spec: &ScalingProfileSpec) -> Result<Baseline, Vec<Invalid>> {
    let mut found = Found::default();
    let mut components = BTreeMap::new();
    for (component, range) in spec.components.iter() {
        let path = format!("spec.components.{component}");
        let (min, max) = (u32::try_from(range.min_replicas), u32::try_from(range.max_replicas));
        match (min, max) {
            (Ok(min), Ok(max)) => {
                if let Some(replicas) = found.check(&path, Replicas::new(min, max)) {
                    components.insert(component, replicas);
                }
            }
            _ => found.push(&path, "replica counts cannot be negative"),
        }
    }
    if components.is_empty() && found.0.is_empty() {
        found.push("spec.components", "no component has a baseline, so nothing is scaled");
    }
    found.finish(Some(Baseline { components }))
}

/// The profile's metrics and scale-down stabilisation, with `component`'s maximum.
pub fn autoscaling(spec: &ScalingProfileSpec, replicas: Replicas) -> Autoscaling {
    let metrics = spec
        .metrics
        .iter()
        .filter_map(|metric| match (&metric.cpu, &metric.prometheus) {
            (Some(cpu), _) => {
                Some(Metric::Cpu { average_utilization: cpu.average_utilization.max(1) as u32 })
            }
            (None, Some(p)) => Some(Metric::Prometheus {
                server_address: p.server_address.clone(),
                query: p.query.clone(),
                threshold: p.threshold.clone(),
            }),
            (None, None) => None,
        })
        .collect();
    Autoscaling {
        max_replicas: replicas.max(),
        metrics,
        scale_down_stabilization_seconds: spec
            .scale_down
            .as_ref()
            .map(|s| s.stabilization_seconds.max(0) as u32),
    }
}

/// A selected Deployment, placed by its labels; the reason when it cannot be scaled.
pub fn workload(deployment: &Deployment) -> Result<Workload, Invalid> {
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let path = format!("Deployment {name}");
    let labels = deployment.metadata.labels.clone().unwrap_or_default();
    let territory = labels
        .get(TERRITORY_LABEL)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Invalid { path: path.clone(), message: format!("has no {TERRITORY_LABEL} label") })?;
    let component = labels
        .get(COMPONENT_LABEL)
        .ok_or_else(|| Invalid { path: path.clone(), message: format!("has no {COMPONENT_LABEL} label") })?;
    let component = Component::from_label(component).ok_or_else(|| Invalid {
        path: path.clone(),
        message: format!("{COMPONENT_LABEL}={component} is not one of query, command, relay"),
    })?;
    Ok(Workload {
        name,
        namespace: deployment.metadata.namespace.clone().unwrap_or_default(),
        territory: territory.clone(),
        component,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> SeasonalWindowSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn a_calendar_as_written_becomes_the_calendar() {
        let calendar = calendar(&spec(
            r#"
timezone: Europe/Berlin
windows:
  - name: oktoberfest
    yearly: {from: "09-19", to: "10-04"}
    hours: {from: "10:00", to: "23:30"}
    preWarm: 1h30m
    territories: [BY]
    floors: {query: 8, command: 4}
darkPeriods:
  - name: nights
    hours: {from: "00:00", to: "06:00"}
    floors: {query: 1}
  - name: holidays-by
    holidays: {state: BY}
    floors: {command: 1}
"#,
        ))
        .unwrap();
        assert_eq!(calendar.timezone.iana_name(), Some("Europe/Berlin"));
        let window = &calendar.windows[0];
        assert_eq!(window.pre_warm.minutes(), 90);
        assert_eq!(window.floor_for("BY", Component::Query), Some(8));
        assert_eq!(window.floor_for("NW", Component::Query), None);
        assert_eq!(window.floor_for("BY", Component::Relay), None);
        assert!(matches!(window.days, Days::Yearly { .. }));
        assert_eq!(calendar.darks[0].days, DarkDays::Every);
        assert_eq!(calendar.darks[1].days, DarkDays::Holidays(Some(crate::calendar::State::By)));
    }

    #[test]
    fn every_mistake_is_reported_with_its_path() {
        let errors = calendar(&spec(
            r#"
timezone: Europe/Munich
windows:
  - name: one
    dates: {from: "2027-02-29", to: "2027-03-05"}
    floors: {query: 2}
  - name: two
    yearly: {from: "12-20", to: "01-06"}
    hours: {from: "24:00", to: "06:00"}
    floors: {query: -1}
"#,
        ))
        .unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.timezone",
                "spec.windows[0].dates.from",
                "spec.windows[1].hours",
                "spec.windows[1].floors.query"
            ],
            "{errors:#?}"
        );
        assert!(errors[0].message.contains("Europe/Munich"), "{}", errors[0]);
        assert!(errors[1].message.contains("2027-02-29"), "{}", errors[1]);
    }

    #[test]
    fn a_deployment_is_placed_by_its_labels() {
        let deployment = |labels: &[(&str, &str)]| Deployment {
            metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                name: Some("crm-query-by".into()),
                namespace: Some("crm".into()),
                labels: Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
                ..Default::default()
            },
            ..Default::default()
        };
        let placed = workload(&deployment(&[(TERRITORY_LABEL, "BY"), (COMPONENT_LABEL, "query")])).unwrap();
        assert_eq!((placed.territory.as_str(), placed.component), ("BY", Component::Query));
        let wrong =
            workload(&deployment(&[(TERRITORY_LABEL, "BY"), (COMPONENT_LABEL, "worker")])).unwrap_err();
        assert!(wrong.message.contains("worker"), "{wrong}");
        assert!(workload(&deployment(&[(COMPONENT_LABEL, "query")])).is_err());
    }
}
