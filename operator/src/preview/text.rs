//! The text timeline of `calendar preview`: one block per territory and component, the floor at
//! the start, then every change with the windows and dark periods in force.

use std::fmt::Write as _;

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::calendar::{Baseline, Calendar, active_dark_periods, active_windows, timeline};
use crate::component::Component;

/// The timeline of each (territory, component): the floor at `from`, then every change with the
/// windows and dark periods in force from then on, in the first calendar's zone.
pub fn text(
    calendars: &[Calendar],
    baseline: &Baseline,
    territories: &[String],
    components: &[Component],
    from: Timestamp,
    to: Timestamp,
) -> String {
    let tz = calendars.first().map_or(TimeZone::UTC, |c| c.timezone.clone());
    let zone = tz.iana_name().unwrap_or("UTC").to_owned();
    let mut out = String::new();
    for territory in territories {
        for &component in components {
            let steps = timeline(calendars, baseline, territory, component, from, to);
            if steps.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{territory} {component} ({zone})");
            for (at, floor) in &steps {
                let local = at.to_zoned(tz.clone()).strftime("%a %Y-%m-%d %H:%M").to_string();
                let mut why: Vec<String> = Vec::new();
                // Only what covers this territory and component.
                for calendar in calendars {
                    let covers = |name: &str| {
                        calendar
                            .windows
                            .iter()
                            .any(|w| w.name == name && w.floor_for(territory, component).is_some())
                    };
                    let darkens = |name: &str| {
                        calendar
                            .darks
                            .iter()
                            .any(|d| d.name == name && d.floor_for(territory, component).is_some())
                    };
                    why.extend(
                        active_windows(calendar, *at).into_iter().filter(|w| covers(w)).map(str::to_owned),
                    );
                    why.extend(
                        active_dark_periods(calendar, *at)
                            .into_iter()
                            .filter(|d| darkens(d))
                            .map(|d| format!("dark: {d}")),
                    );
                }
                let why = if why.is_empty() { "baseline".to_owned() } else { why.join(", ") };
                let _ = writeln!(out, "  {local}  {floor:>3}  {why}");
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::Replicas;
    use crate::preview::territories;

    #[test]
    fn the_timeline_names_what_is_in_force() {
        let spec: crate::crd::SeasonalWindowSpec = serde_saphyr::from_str(
            r#"
timezone: Europe/Berlin
windows:
  - name: wiesn
    yearly: {from: "09-19", to: "09-20"}
    hours: {from: "10:00", to: "23:30"}
    territories: [BY]
    floors: {query: 8}
"#,
        )
        .unwrap();
        let calendars = [crate::validate::calendar(&spec).unwrap()];
        let baseline: Baseline = [(Component::Query, Replicas::new(2, 10).unwrap())].into_iter().collect();
        let from = "2026-09-19T00:00:00+02:00[Europe/Berlin]".parse::<jiff::Zoned>().unwrap().timestamp();
        let to = from + jiff::SignedDuration::from_hours(48);
        assert_eq!(territories(&calendars, "ALL"), ["BY"]);
        let printed =
            text(&calendars, &baseline, &["BY".into()], &[Component::Query, Component::Relay], from, to);
        assert_eq!(
            printed,
            "BY query (Europe/Berlin)\n\
             \x20 Sat 2026-09-19 00:00    2  baseline\n\
             \x20 Sat 2026-09-19 10:00    8  wiesn\n\
             \x20 Sat 2026-09-19 23:30    2  baseline\n\
             \x20 Sun 2026-09-20 10:00    8  wiesn\n\
             \x20 Sun 2026-09-20 23:30    2  baseline\n\n"
        );
    }
}
