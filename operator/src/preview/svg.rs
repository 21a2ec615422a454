//! The SVG plot of `calendar preview --svg`: one panel per (territory, component), its floor as a
//! step line over time, the windows and dark periods covering it as shaded bands with their names,
//! and time ticks at local hours, midnights, Mondays or month starts in the calendar's zone, as
//! fine as ten labels allow.
//!
//! Drawn with plotters' SVG backend, which lays out the axes, grid and captions and escapes every
//! text for XML (territories and names come from the user's file). It measures no text (no font
//! feature, the viewer renders it), so band names are placed by an estimate of their width.

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Span, Timestamp, ToSpan, Zoned};
use plotters::coord::Shift;
use plotters::coord::combinators::BindKeyPoints;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::calendar::{Baseline, Calendar, Interval, dark_intervals, timeline, window_intervals};
use crate::component::Component;

/// Why the plot could not be drawn. Drawing into a string does not fail, but plotters' API says
/// it may; this carries its message rather than a panic.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw the plot: {0}")]
pub struct PlotError(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(error: DrawingAreaErrorKind<E>) -> PlotError {
        PlotError(error.to_string())
    }
}

/// The floors of each (territory, component) over `[from, to)` as a standalone SVG document, in
/// the first calendar's zone: one panel per pair with a timeline, headed by a title with `name`
/// (the calendar's), the zone and the span. The bands are the windows and dark periods that cover
/// the pair, the same ones [`text`](fn@super::text) names as why a floor holds.
pub fn svg(
    calendars: &[Calendar],
    baseline: &Baseline,
    territories: &[String],
    components: &[Component],
    from: Timestamp,
    to: Timestamp,
    name: &str,
) -> Result<String, PlotError> {
    let tz = calendars.first().map_or(TimeZone::UTC, |c| c.timezone.clone());
    let mut series = Vec::new();
    for territory in territories {
        for &component in components {
            let steps = timeline(calendars, baseline, territory, component, from, to);
            if steps.is_empty() {
                continue;
            }
            series.push(Series {
                label: format!("{territory} · {component}"),
                colour: line_colour(component),
                steps,
                bands: bands(calendars, territory, component, from, to),
            });
        }
    }
    let zone = tz.iana_name().unwrap_or("UTC");
    let title = format!("{name}: replica floors, {}, {zone}", span_text(&tz, from, to));
    plot(&title, &tz, from, to, &series)
}

/// One panel: a territory's component, its timeline and the bands behind it.
#[derive(Debug, Clone)]
struct Series {
    label: String,
    colour: RGBColor,
    steps: Vec<(Timestamp, u32)>,
    bands: Vec<Band>,
}

/// A window or dark period: where it is active, shaded in `fill`, its name written in `ink`.
#[derive(Debug, Clone)]
struct Band {
    label: String,
    fill: RGBColor,
    ink: RGBColor,
    intervals: Vec<Interval>,
}

const WIDTH: u32 = 1000;
const TITLE_HEIGHT: u32 = 44;
const PANEL_HEIGHT: u32 = 240;
const MARGIN: u32 = 16;
/// Room right of the plot for half of the last tick label, which is centred on the right edge.
const RIGHT_MARGIN: u32 = 48;
/// At most this many time ticks: a date label ("Wed 30 Sep") is about 65 of the plot's 880 pixels
/// wide, so they stay 80 apart.
const MAX_TICKS: usize = 12;
/// Rows of band names at the top of a panel; the headroom above the highest floor keeps them
/// clear of the line.
const LABEL_ROWS: usize = 3;
const LABEL_ROW_HEIGHT: i32 = 14;
const LABEL_SIZE: f64 = 11.0;
/// A generous average width of a sans-serif character, in ems.
const CHAR_WIDTH: f64 = 0.62;
/// Intervals of a band this close together (daily hours, nights), or closer than about a name's
/// width on the plot, carry one name.
const RUN_GAP: SignedDuration = SignedDuration::from_hours(36);
const RUN_GAP_PIXELS: i64 = 120;

const INK: RGBColor = RGBColor(0x1f, 0x29, 0x37);
const MUTED: RGBColor = RGBColor(0x4b, 0x55, 0x63);
/// Window bands: a light hue each, the name in a darker shade of it.
const WINDOW_COLOURS: [(RGBColor, RGBColor); 5] = [
    (RGBColor(0xf5, 0x9e, 0x0b), RGBColor(0x92, 0x40, 0x0e)),
    (RGBColor(0x14, 0xb8, 0xa6), RGBColor(0x11, 0x5e, 0x59)),
    (RGBColor(0xf4, 0x3f, 0x5e), RGBColor(0x9f, 0x12, 0x39)),
    (RGBColor(0x84, 0xcc, 0x16), RGBColor(0x3f, 0x62, 0x12)),
    (RGBColor(0x0e, 0xa5, 0xe9), RGBColor(0x07, 0x59, 0x85)),
];
/// Dark periods in greys, so they read as "lowered", apart from the windows.
const DARK_COLOURS: [(RGBColor, RGBColor); 2] = [
    (RGBColor(0x64, 0x74, 0x8b), RGBColor(0x33, 0x41, 0x55)),
    (RGBColor(0x78, 0x71, 0x6c), RGBColor(0x44, 0x40, 0x3c)),
];

fn line_colour(component: Component) -> RGBColor {
    match component {
        Component::Query => RGBColor(0x1d, 0x4e, 0xd8),
        Component::Command => RGBColor(0x7e, 0x22, 0xce),
        Component::Relay => RGBColor(0xb9, 0x1c, 0x1c),
    }
}

/// A sans-serif font of `px` pixels. plotters' SVG backend writes a font's size divided by 1.24
/// (its ratio of em to line height), so the size given is scaled up by that.
fn font(px: f64) -> FontDesc<'static> {
    ("sans-serif", px * 1.24).into_font()
}

/// The windows and dark periods that cover (territory, component) and are active in the span. A
/// window keeps its colour in every panel: colours go by its place among all the windows.
fn bands(
    calendars: &[Calendar],
    territory: &str,
    component: Component,
    from: Timestamp,
    to: Timestamp,
) -> Vec<Band> {
    let mut bands = Vec::new();
    let (mut windows, mut darks) = (0, 0);
    for calendar in calendars {
        let tz = &calendar.timezone;
        for window in &calendar.windows {
            let (fill, ink) = WINDOW_COLOURS[windows % WINDOW_COLOURS.len()];
            windows += 1;
            if window.floor_for(territory, component).is_some() {
                let intervals = window_intervals(window, tz, from, to);
                bands.push(Band { label: window.name.clone(), fill, ink, intervals });
            }
        }
        for period in &calendar.darks {
            let (fill, ink) = DARK_COLOURS[darks % DARK_COLOURS.len()];
            darks += 1;
            if period.floor_for(territory, component).is_some() {
                let intervals = dark_intervals(period, tz, from, to);
                bands.push(Band { label: format!("dark: {}", period.name), fill, ink, intervals });
            }
        }
    }
    bands.retain(|band| !band.intervals.is_empty());
    bands
}

/// The document: the title, then the panels stacked, or a note when there is nothing to draw.
fn plot(
    title: &str,
    tz: &TimeZone,
    from: Timestamp,
    to: Timestamp,
    series: &[Series],
) -> Result<String, PlotError> {
    let panels = u32::try_from(series.len().max(1)).unwrap_or(u32::MAX);
    let height = TITLE_HEIGHT.saturating_add(PANEL_HEIGHT.saturating_mul(panels));
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (head, body) = root.split_vertically(TITLE_HEIGHT);
        let left = Pos::new(HPos::Left, VPos::Center);
        head.draw_text(title, &font(16.0).color(&INK).pos(left), (MARGIN as i32, TITLE_HEIGHT as i32 / 2))?;
        if series.is_empty() {
            let note = "Nothing to draw: no component with a baseline, or an empty span.";
            body.draw_text(note, &font(14.0).color(&MUTED).pos(left), (MARGIN as i32, 20))?;
        }
        for (panel, series) in body.split_evenly((series.len().max(1), 1)).iter().zip(series) {
            draw_panel(panel, tz, from, to, series)?;
        }
        root.present()?;
    }
    Ok(out)
}

fn draw_panel(
    panel: &DrawingArea<SVGBackend<'_>, Shift>,
    tz: &TimeZone,
    from: Timestamp,
    to: Timestamp,
    series: &Series,
) -> Result<(), PlotError> {
    let end = seconds(from, to).max(1);
    let top = series.steps.iter().map(|&(_, floor)| floor).max().unwrap_or(0);
    // A third of the height above the highest floor, where the band names go.
    let y_max = top.saturating_add(top.div_ceil(2)).saturating_add(1);
    let (step, ticks) = time_ticks(tz, from, to);
    let keys: Vec<i64> = ticks.iter().map(|&at| seconds(from, at)).collect();
    let mut chart = ChartBuilder::on(panel)
        .caption(&series.label, font(14.0).color(&series.colour))
        .margin_left(MARGIN)
        .margin_right(RIGHT_MARGIN)
        .margin_top(4)
        .margin_bottom(8)
        .x_label_area_size(24)
        .y_label_area_size(56)
        .build_cartesian_2d((0..end).with_key_points(keys), 0..y_max)?;
    let tick_label = |x: &i64| {
        let at = from.checked_add(SignedDuration::from_secs(*x)).unwrap_or(from);
        tick_label(tz, step, at)
    };
    chart
        .configure_mesh()
        .x_label_formatter(&tick_label)
        .y_labels(6)
        .y_desc("replicas")
        .label_style(font(11.0).color(&MUTED))
        .axis_desc_style(font(11.0).color(&MUTED))
        .axis_style(MUTED)
        .bold_line_style(INK.mix(0.1))
        .light_line_style(TRANSPARENT)
        .draw()?;

    let clip = |at: Timestamp| seconds(from, at).clamp(0, end);
    for band in &series.bands {
        let fill = band.fill.mix(0.22).filled();
        chart.draw_series(
            band.intervals.iter().map(|i| Rectangle::new([(clip(i.start), 0), (clip(i.end), y_max)], fill)),
        )?;
    }
    // The plot's edges all round; the axes only draw the left and bottom ones.
    chart.draw_series(std::iter::once(Rectangle::new([(0, 0), (end, y_max)], MUTED.mix(0.5))))?;
    let area = chart.plotting_area().strip_coord_spec();
    let width = i32::try_from(area.dim_in_pixel().0).unwrap_or(i32::MAX);
    for (label, ink, at) in band_labels(&series.bands, from, end, width) {
        area.draw_text(&label, &font(LABEL_SIZE).color(&ink), at)?;
    }
    let line = PathElement::new(step_points(&series.steps, from, end), series.colour.stroke_width(2));
    chart.draw_series(std::iter::once(line))?;
    Ok(())
}

/// Whole seconds from `from` to `at`: the x of the plot.
fn seconds(from: Timestamp, at: Timestamp) -> i64 {
    at.as_second() - from.as_second()
}

/// The step line's vertices, `end` being the x of the span's end: from the left edge at the first
/// floor, then at each change a horizontal segment to it and a vertical one to the new floor, and
/// on to the right edge.
fn step_points(steps: &[(Timestamp, u32)], from: Timestamp, end: i64) -> Vec<(i64, u32)> {
    let mut points: Vec<(i64, u32)> = Vec::with_capacity(steps.len() * 2);
    for &(at, floor) in steps {
        let x = seconds(from, at).clamp(0, end);
        if let Some(&(_, before)) = points.last() {
            points.push((x, before));
        }
        points.push((x, floor));
    }
    if let Some(&(_, last)) = points.last() {
        points.push((end, last));
    }
    points
}

/// Where the band names go, in pixels of a plot `width` wide: each run of a band's intervals
/// (gaps under a day and a half or [`RUN_GAP_PIXELS`] are one run, so daily hours or a year's
/// holidays carry one name) gets its name at the run's start, in the first top row where it
/// overlaps no other name. A name without room is left out: the colour still tells the band.
fn band_labels(bands: &[Band], from: Timestamp, end: i64, width: i32) -> Vec<(String, RGBColor, (i32, i32))> {
    let pixel = |x: i64| (x as f64 * f64::from(width) / end as f64).round() as i32;
    let gap = RUN_GAP.as_secs().max(end / i64::from(width.max(1)) * RUN_GAP_PIXELS);
    let mut runs: Vec<(i64, &Band)> = Vec::new();
    for band in bands {
        let mut spans: Vec<(i64, i64)> = band
            .intervals
            .iter()
            .map(|i| (seconds(from, i.start).max(0), seconds(from, i.end).min(end)))
            .collect();
        spans.sort_unstable();
        let mut run_end = None;
        for (start, stop) in spans {
            if run_end.is_none_or(|run_end| start > run_end + gap) {
                runs.push((start, band));
            }
            run_end = Some(run_end.map_or(stop, |run_end: i64| run_end.max(stop)));
        }
    }
    runs.sort_by_key(|&(start, _)| start);

    let mut rows: [Vec<(i32, i32)>; LABEL_ROWS] = Default::default();
    let mut labels = Vec::new();
    for (start, band) in runs {
        let chars = band.label.chars().count() as f64;
        let text_width = (chars * LABEL_SIZE * CHAR_WIDTH).ceil() as i32 + 6;
        let x = pixel(start).min(width - text_width).max(0);
        let free = |row: &Vec<(i32, i32)>| row.iter().all(|&(a, b)| x + text_width <= a || b <= x);
        if let Some(row) = rows.iter().position(free) {
            rows[row].push((x, x + text_width));
            labels.push((band.label.clone(), band.ink, (x + 3, 3 + row as i32 * LABEL_ROW_HEIGHT)));
        }
    }
    labels
}

/// The distance between time ticks, in the calendar's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Hours(i64),
    Days(i64),
    Weeks(i64),
    Months(i64),
}

/// Finest first. Months go up to two thousand years, so any span gets few enough ticks.
const STEPS: [Step; 21] = [
    Step::Hours(1),
    Step::Hours(3),
    Step::Hours(6),
    Step::Hours(12),
    Step::Days(1),
    Step::Days(2),
    Step::Weeks(1),
    Step::Weeks(2),
    Step::Months(1),
    Step::Months(2),
    Step::Months(3),
    Step::Months(6),
    Step::Months(12),
    Step::Months(24),
    Step::Months(60),
    Step::Months(120),
    Step::Months(240),
    Step::Months(600),
    Step::Months(1200),
    Step::Months(6000),
    Step::Months(24000),
];

/// The ticks of `[from, to]`: the finest step that gives at most [`MAX_TICKS`].
fn time_ticks(tz: &TimeZone, from: Timestamp, to: Timestamp) -> (Step, Vec<Timestamp>) {
    STEPS
        .iter()
        .find_map(|&step| local_ticks(tz, from, to, step).map(|ticks| (step, ticks)))
        .unwrap_or((Step::Months(24000), Vec::new()))
}

/// The instants in `[from, to]` where the local clock reads a multiple of `step` (hours from
/// midnight, days from `from`'s date, Mondays, months from year 0); None when there would be more
/// than [`MAX_TICKS`]. A local time the clocks skip is read as jiff's "compatible" instant, and one
/// that lands on the previous tick is left out.
fn local_ticks(tz: &TimeZone, from: Timestamp, to: Timestamp, step: Step) -> Option<Vec<Timestamp>> {
    let first = tz.to_datetime(from).date();
    let mut ticks: Vec<Timestamp> = Vec::new();
    for local in candidates(step, first) {
        let Ok(at) = tz.to_timestamp(local) else { break };
        if at > to {
            break;
        }
        if at >= from && ticks.last().is_none_or(|&last| at > last) {
            if ticks.len() == MAX_TICKS {
                return None;
            }
            ticks.push(at);
        }
    }
    Some(ticks)
}

/// The local times of `step` from the first one on or after `first`'s midnight, until the end of
/// what a date holds.
fn candidates(step: Step, first: Date) -> impl Iterator<Item = DateTime> {
    let (start, every): (Option<Date>, Span) = match step {
        Step::Hours(n) => (Some(first), n.hours()),
        Step::Days(n) => (Some(first), n.days()),
        Step::Weeks(n) => {
            let to_monday = (7 - i64::from(first.weekday().to_monday_zero_offset())) % 7;
            (first.checked_add(to_monday.days()).ok(), n.weeks())
        }
        Step::Months(n) => {
            let month = i64::from(first.year()) * 12 + i64::from(first.month()) - 1;
            let month = month + (n - month.rem_euclid(n)) % n;
            let start = i16::try_from(month.div_euclid(12))
                .ok()
                .and_then(|year| Date::new(year, (month.rem_euclid(12) + 1) as i8, 1).ok());
            (start, n.months())
        }
    };
    let start = start.map(|date| date.to_datetime(Time::midnight()));
    std::iter::successors(start, move |local| local.checked_add(every).ok())
}

/// A tick's label in local time: the time of day between midnights when ticks are hours apart, the
/// date for days and weeks, the month or the year for longer steps.
fn tick_label(tz: &TimeZone, step: Step, at: Timestamp) -> String {
    let local = at.to_zoned(tz.clone());
    let format = match step {
        Step::Hours(_) if local.time() != Time::midnight() => "%H:%M",
        Step::Hours(_) | Step::Days(_) | Step::Weeks(_) => "%a %-d %b",
        Step::Months(n) if n < 12 => "%b %Y",
        Step::Months(_) => "%Y",
    };
    local.strftime(format).to_string()
}

/// The span for the title: the days from first to last when it runs from midnight to midnight (as
/// `calendar preview --from --to` does), else both instants.
fn span_text(tz: &TimeZone, from: Timestamp, to: Timestamp) -> String {
    let (start, end) = (from.to_zoned(tz.clone()), to.to_zoned(tz.clone()));
    let midnight = |at: &Zoned| at.time() == Time::midnight();
    let day = |date: Date| date.strftime("%a %-d %b %Y").to_string();
    if midnight(&start)
        && midnight(&end)
        && let Ok(last) = end.date().yesterday()
    {
        if last == start.date() {
            return day(last);
        }
        if last > start.date() {
            return format!("{} to {}", day(start.date()), day(last));
        }
    }
    let instant = |at: &Zoned| at.strftime("%a %-d %b %Y %H:%M").to_string();
    format!("{} to {}", instant(&start), instant(&end))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::calendar::Replicas;
    use crate::preview::territories;

    const SVG_NS: &str = "http://www.w3.org/2000/svg";

    /// What a reader of the document finds: each step line (the only 2-pixel polylines), each
    /// panel's frame (the only unfilled rectangles) as (left, top, right, bottom), every text
    /// with its position.
    #[derive(Debug)]
    struct Drawn {
        lines: Vec<Vec<(i32, i32)>>,
        frames: Vec<(i32, i32, i32, i32)>,
        texts: Vec<(String, i32, i32)>,
    }

    impl Drawn {
        fn has_text(&self, text: &str) -> bool {
            self.texts.iter().any(|(t, _, _)| t == text)
        }

        /// The index of the panel whose frame holds the point.
        fn panel_of(&self, (x, y): (i32, i32)) -> Option<usize> {
            self.frames.iter().position(|&(l, t, r, b)| (l..=r).contains(&x) && (t..=b).contains(&y))
        }
    }

    /// Parses the document, checks that it is standalone SVG, and reads what it draws.
    fn drawn(svg: &str) -> Drawn {
        let doc = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not XML: {e}\n{svg}"));
        let root = doc.root_element();
        assert_eq!((root.tag_name().namespace(), root.tag_name().name()), (Some(SVG_NS), "svg"));
        let (width, height) = (root.attribute("width").unwrap(), root.attribute("height").unwrap());
        assert_eq!(root.attribute("viewBox"), Some(format!("0 0 {width} {height}").as_str()));
        let number = |node: roxmltree::Node<'_, '_>, name: &str| -> i32 {
            node.attribute(name).unwrap().parse().unwrap()
        };
        let elements = || doc.descendants().filter(|n| n.tag_name().namespace() == Some(SVG_NS));
        let lines = elements()
            .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke-width") == Some("2"))
            .map(|n| {
                let points = n.attribute("points").unwrap().split_whitespace();
                points
                    .map(|p| {
                        let (x, y) = p.split_once(',').unwrap();
                        (x.parse().unwrap(), y.parse().unwrap())
                    })
                    .collect()
            })
            .collect();
        let frames = elements()
            .filter(|n| n.has_tag_name("rect") && n.attribute("fill") == Some("none"))
            .map(|n| {
                let (x, y) = (number(n, "x"), number(n, "y"));
                (x, y, x + number(n, "width"), y + number(n, "height"))
            })
            .collect();
        let texts = elements()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| {
                assert_eq!(n.attribute("font-family"), Some("sans-serif"));
                (n.text().unwrap_or("").trim().to_owned(), number(n, "x"), number(n, "y"))
            })
            .collect();
        Drawn { lines, frames, texts }
    }

    /// The step line must be the timeline: from the left edge at the first floor, each change a
    /// horizontal segment to its x then a vertical one, on to the right edge; x in proportion to
    /// time, higher floors higher, floor 0 on the bottom edge.
    fn assert_line_is(
        steps: &[(Timestamp, u32)],
        from: Timestamp,
        to: Timestamp,
        line: &[(i32, i32)],
        (left, _, right, bottom): (i32, i32, i32, i32),
    ) -> Result<(), TestCaseError> {
        prop_assert_eq!(line.len(), 2 * steps.len(), "{:?}", line);
        prop_assert_eq!(line[0].0, left);
        prop_assert_eq!(line[line.len() - 1].0, right);
        prop_assert_eq!(line[line.len() - 1].1, line[line.len() - 2].1, "horizontal to the right edge");
        let span = seconds(from, to) as f64;
        let mut heights = vec![(steps[0].1, line[0].1)];
        let mut last_x = left;
        for (i, &(at, floor)) in steps.iter().enumerate().skip(1) {
            let (across, up) = (line[2 * i - 1], line[2 * i]);
            prop_assert_eq!(across.1, line[2 * i - 2].1, "change {}: horizontal first", i);
            prop_assert_eq!(up.0, across.0, "change {}: then vertical", i);
            let expected = f64::from(left) + f64::from(right - left) * seconds(from, at) as f64 / span;
            prop_assert!(
                (f64::from(across.0) - expected).abs() <= 1.0,
                "change {i} at x {across:?}, not {expected}"
            );
            prop_assert!(last_x <= across.0 && across.0 <= right, "x of change {} goes back", i);
            last_x = across.0;
            heights.push((floor, up.1));
        }
        for &(floor, y) in &heights {
            if floor == 0 {
                prop_assert_eq!(y, bottom);
            }
            for &(other, other_y) in &heights {
                prop_assert_eq!(
                    floor.cmp(&other),
                    other_y.cmp(&y),
                    "floors {} and {} at {} and {}",
                    floor,
                    other,
                    y,
                    other_y
                );
            }
        }
        Ok(())
    }

    fn berlin(text: &str) -> Timestamp {
        format!("{text}[Europe/Berlin]").parse::<Zoned>().unwrap().timestamp()
    }

    fn calendar(yaml: &str) -> Calendar {
        let spec: crate::crd::SeasonalWindowSpec = serde_saphyr::from_str(yaml).unwrap();
        crate::validate::calendar(&spec).unwrap()
    }

    fn fair() -> Calendar {
        calendar(
            r#"
timezone: Europe/Berlin
windows:
  - name: wiesn
    yearly: {from: "09-19", to: "09-20"}
    hours: {from: "10:00", to: "23:30"}
    territories: [BY]
    floors: {query: 8}
  - name: messe
    dates: {from: "2026-09-20", to: "2026-09-20"}
    territories: [NW]
    floors: {query: 5, command: 3}
darkPeriods:
  - name: nights
    hours: {from: "00:00", to: "06:00"}
    floors: {query: 1}
"#,
        )
    }

    fn baseline(min: u32) -> Baseline {
        let replicas = Replicas::new(min, 20).unwrap();
        [(Component::Query, replicas), (Component::Command, replicas)].into_iter().collect()
    }

    #[test]
    fn each_territory_and_component_gets_a_labelled_panel_with_its_timeline() {
        let calendars = [fair()];
        let (from, to) = (berlin("2026-09-19T00:00"), berlin("2026-09-21T00:00"));
        let names = territories(&calendars, "any");
        let components = [Component::Query, Component::Command];
        let plot = svg(&calendars, &baseline(2), &names, &components, from, to, "fair").unwrap();
        let drawn = drawn(&plot);

        assert!(drawn.has_text("fair: replica floors, Sat 19 Sep 2026 to Sun 20 Sep 2026, Europe/Berlin"));
        let labels = ["BY · query", "BY · command", "NW · query", "NW · command"];
        assert_eq!((drawn.lines.len(), drawn.frames.len()), (4, 4), "{drawn:?}");
        for (panel, label) in labels.iter().enumerate() {
            let found: Vec<_> = drawn.texts.iter().filter(|(t, _, _)| t == label).collect();
            assert_eq!(found.len(), 1, "{label}: {drawn:?}");
            // The label heads its panel: below the one before, above its frame.
            let (_, _, y) = *found[0];
            assert!(y < drawn.frames[panel].1 && (panel == 0 || drawn.frames[panel - 1].3 < y), "{label}");
            let line = &drawn.lines[panel];
            assert!(line.iter().all(|&point| drawn.panel_of(point) == Some(panel)), "{label}: {line:?}");
            let (territory, component) = (&names[panel / 2], components[panel % 2]);
            let steps = timeline(&calendars, &baseline(2), territory, component, from, to);
            assert_line_is(&steps, from, to, line, drawn.frames[panel]).unwrap();
        }
        // The names of what covers each panel, inside that panel only.
        let panels_naming = |name: &str| -> Vec<usize> {
            drawn
                .texts
                .iter()
                .filter(|(t, _, _)| t == name)
                .filter_map(|&(_, x, y)| drawn.panel_of((x, y)))
                .collect()
        };
        assert_eq!(panels_naming("wiesn"), [0]);
        assert_eq!(panels_naming("messe"), [2, 3]);
        assert_eq!(panels_naming("dark: nights"), [0, 2]);
    }

    #[test]
    fn time_ticks_read_as_local_dates_in_the_calendars_zone() {
        let calendars = [fair()];
        let (from, to) = (berlin("2026-09-19T00:00"), berlin("2026-09-22T00:00"));
        let plot =
            svg(&calendars, &baseline(2), &["BY".into()], &[Component::Query], from, to, "fair").unwrap();
        let drawn = drawn(&plot);
        let (left, _, right, bottom) = drawn.frames[0];
        let tick = |label: &str| drawn.texts.iter().find(|(t, _, _)| t == label).map(|&(_, x, y)| (x, y));
        // Berlin's midnight is 22:00 UTC the day before: the tick must read as the local day.
        let (x, y) = tick("Sat 19 Sep").unwrap_or_else(|| panic!("{drawn:?}"));
        assert!(x == left && y > bottom, "{x} {y}");
        assert_eq!(tick("Sun 20 Sep").map(|(x, _)| x), Some(left + (right - left) / 3));
        assert!(tick("12:00").is_some(), "{drawn:?}");
        assert!(!drawn.texts.iter().any(|(t, _, _)| t.starts_with("Fri") || t == "22:00"), "{drawn:?}");
    }

    #[test]
    fn ticks_stay_few_from_a_day_to_years() {
        let tz = time_zone("Europe/Berlin");
        let cases = [
            ("2026-03-29", "2026-03-30", Step::Hours(3), "%H:%M"),
            ("2026-09-17", "2026-10-07", Step::Days(2), "%a %-d %b"),
            ("2026-09-01", "2026-11-01", Step::Weeks(1), "%a %-d %b"),
            ("2026-01-01", "2027-01-01", Step::Months(2), "%b %Y"),
            ("2026-01-01", "2028-01-01", Step::Months(3), "%b %Y"),
            ("2000-01-01", "2100-01-01", Step::Months(120), "%Y"),
        ];
        for (first, end, expected, format) in cases {
            let (from, to) = (berlin(&format!("{first}T00:00")), berlin(&format!("{end}T00:00")));
            let (step, ticks) = time_ticks(&tz, from, to);
            assert_eq!(step, expected, "{first} to {end}");
            assert!((5..=MAX_TICKS).contains(&ticks.len()), "{first} to {end}: {ticks:?}");
            assert!(
                ticks.windows(2).all(|w| w[0] < w[1]) && from <= ticks[0] && ticks[ticks.len() - 1] <= to
            );
            // Every tick is on a local boundary of its step (the 03:00 of the spring-forward day
            // too, two real hours after midnight).
            for at in &ticks {
                let local = at.to_zoned(tz.clone());
                assert_eq!((local.minute(), local.second()), (0, 0), "{local}");
                let label = tick_label(&tz, step, *at);
                if local.time() != Time::midnight() || format == "%b %Y" || format == "%Y" {
                    assert_eq!(label, local.strftime(format).to_string());
                } else {
                    assert_eq!(label, local.strftime("%a %-d %b").to_string());
                }
            }
        }
        // The whole range a timestamp holds: a few ticks, no panic.
        let (_, ticks) = time_ticks(&tz, Timestamp::MIN, Timestamp::MAX);
        assert!(ticks.len() <= MAX_TICKS);
    }

    fn time_zone(name: &str) -> TimeZone {
        crate::calendar::time_zone(name).unwrap()
    }

    #[test]
    fn text_from_the_file_is_escaped() {
        let nasty = r#"<b a="1">&amp;</b>"#;
        let calendars = [fair()];
        let (from, to) = (berlin("2026-09-19T00:00"), berlin("2026-09-20T00:00"));
        let plot =
            svg(&calendars, &baseline(2), &[nasty.to_owned()], &[Component::Query], from, to, nasty).unwrap();
        let drawn = drawn(&plot);
        assert!(drawn.has_text(&format!("{nasty} · query")), "{drawn:?}");
        assert!(drawn.texts.iter().any(|(t, _, _)| t.starts_with(&format!("{nasty}: replica floors"))));
        // Window names are DNS labels; a band name is escaped all the same.
        let band = Band {
            label: nasty.into(),
            fill: WHITE,
            ink: INK,
            intervals: vec![Interval { start: from, end: to }],
        };
        let series = Series { label: "x".into(), colour: INK, steps: vec![(from, 3)], bands: vec![band] };
        let drawn = self::drawn(&plot_of(from, to, series));
        assert!(drawn.has_text(nasty), "{drawn:?}");
    }

    fn plot_of(from: Timestamp, to: Timestamp, series: Series) -> String {
        plot("test", &time_zone("Europe/Berlin"), from, to, &[series]).unwrap()
    }

    #[test]
    fn odd_inputs_draw_without_panicking() {
        let calendars = [fair()];
        let from = berlin("2026-09-19T00:00");
        let day = berlin("2026-09-20T00:00");
        let all = [Component::Query, Component::Command, Component::Relay];
        // No component with a baseline, an empty and a reversed span: a note, no panels.
        for (baseline, to) in
            [(Baseline::default(), day), (baseline(2), from), (baseline(2), from - 1.hour())]
        {
            let drawn = drawn(&svg(&calendars, &baseline, &["BY".into()], &all, from, to, "fair").unwrap());
            assert!(
                drawn.lines.is_empty()
                    && drawn.texts.iter().any(|(t, _, _)| t.starts_with("Nothing to draw"))
            );
        }
        // Floors of 0 only, a single step: a flat line on the bottom edge.
        let zero: Baseline = [(Component::Relay, Replicas::new(0, 1).unwrap())].into_iter().collect();
        let drawn = drawn(&svg(&calendars, &zero, &["BY".into()], &all, from, day, "fair").unwrap());
        let (left, _, right, bottom) = drawn.frames[0];
        assert_eq!(drawn.lines, [vec![(left, bottom), (right, bottom)]]);
        // Very long names, a minute's span.
        let long = "territory-".repeat(300);
        let to = from + 1.minute();
        let steps = timeline(&calendars, &baseline(2), &long, Component::Query, from, to);
        let band = Band {
            label: long.clone(),
            fill: WHITE,
            ink: INK,
            intervals: vec![Interval { start: from, end: to }],
        };
        let series = Series { label: long.clone(), colour: INK, steps: steps.clone(), bands: vec![band] };
        let drawn = self::drawn(&plot_of(from, to, series));
        assert!(drawn.has_text(&long));
        assert_line_is(&steps, from, to, &drawn.lines[0], drawn.frames[0]).unwrap();
    }

    /// Timelines as `timeline` gives them: the floor at `from`, then strictly later changes,
    /// each to a different floor, over a span from an hour to three years.
    fn any_timeline() -> impl Strategy<Value = (Timestamp, Timestamp, Vec<(Timestamp, u32)>)> {
        let from = berlin("2026-03-01T00:00");
        (60i64..3 * 366 * 24 * 60, 0u32..50, prop::collection::vec((0.0f64..1.0, 0u32..50), 0..40)).prop_map(
            move |(minutes, first, changes)| {
                let span = minutes * 60;
                let mut offsets: Vec<(i64, u32)> = changes
                    .into_iter()
                    .map(|(at, floor)| (1 + (at * (span - 1) as f64) as i64, floor))
                    .collect();
                offsets.sort_by_key(|&(at, _)| at);
                offsets.dedup_by_key(|&mut (at, _)| at);
                let mut steps = vec![(from, first)];
                for (at, floor) in offsets {
                    if at < span && steps.last().is_some_and(|&(_, before)| before != floor) {
                        steps.push((from + SignedDuration::from_secs(at), floor));
                    }
                }
                (from, from + SignedDuration::from_secs(span), steps)
            },
        )
    }

    proptest! {
        #[test]
        fn the_line_is_the_timeline((from, to, steps) in any_timeline()) {
            let series = Series { label: "BY · query".into(), colour: INK, steps: steps.clone(), bands: vec![] };
            let drawn = drawn(&plot_of(from, to, series));
            prop_assert_eq!(drawn.lines.len(), 1);
            assert_line_is(&steps, from, to, &drawn.lines[0], drawn.frames[0])?;
        }
    }
}
