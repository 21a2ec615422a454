//! Throughput of the KEDA cron oracle: `Schedule::next`, and the floor of a ScaledObject with 50 cron
//! triggers, each over every minute of a year in Europe/Berlin (both DST changes included).
//!
//! `cargo bench -p freshplan-operator --bench oracle`

use std::hint::black_box;
use std::time::{Duration, Instant};

use freshplan_operator::oracle::{CronTrigger, ScaledObjectModel, Schedule, Zone};
use jiff::Timestamp;
use jiff::tz::TimeZone;

const ZONE: &str = "Europe/Berlin";

fn year_of_minutes() -> impl Iterator<Item = Timestamp> {
    let from = "2027-01-01T00:00:00+01:00".parse::<Timestamp>().expect("valid instant").as_second();
    (0..525_600i64).map(move |m| Timestamp::from_second(from + 60 * m).expect("in range"))
}

/// Triggers of the shapes a seasonal calendar compiles to: month-edge pieces of date ranges, daily
/// hours inside a range, weekday rules, pre-warm minutes, Feb 29. Deterministic.
fn fifty_triggers(zone: &Zone) -> Vec<CronTrigger> {
    let mut seed = 0x5eed_u64;
    let mut rand = move |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    let mut triggers = Vec::with_capacity(50);
    while triggers.len() < 50 {
        let month = rand(12) + 1;
        let day = rand(27) + 1;
        let hour = rand(22);
        let minute = rand(4) * 15;
        let (start, end) = match triggers.len() % 5 {
            0 => (format!("{minute} {hour} {day} {month} *"), format!("0 0 {} {month} *", day + 1)),
            1 => (format!("{minute} {hour} * {month} *"), format!("{minute} {} * {month} *", hour + 2)),
            2 => (format!("{minute} {hour} * * 1-5"), format!("0 {} * * 1-5", hour + 1)),
            3 => (
                format!("45 {hour} {day}-{} {month} *", day + 1),
                format!("0 {} {day}-{} {month} *", hour + 1, day + 1),
            ),
            _ => ("0 6 29 2 *".to_owned(), "0 20 29 2 *".to_owned()),
        };
        let desired = (rand(20) + 2) as i64;
        triggers.push(CronTrigger::in_zone(&start, &end, zone, desired).expect("valid trigger"));
    }
    triggers
}

fn report(what: &str, evaluations: u64, elapsed: Duration) {
    let per_second = evaluations as f64 / elapsed.as_secs_f64();
    let nanos = elapsed.as_nanos() as f64 / evaluations as f64;
    println!(
        "{what:<52} {evaluations:>11} in {:>7.2} s  {per_second:>13.0} /s  {nanos:>8.1} ns each",
        elapsed.as_secs_f64()
    );
}

fn main() {
    let tz = TimeZone::get(ZONE).expect("bundled zone");
    let zone = Zone::new(tz.clone());
    let specs = ["*/15 * * * *", "0 2 * * *", "30 6 * 12 1-5", "0 8 1 3 *", "0 0 29 2 *", "0 0 30 2 *"];
    let mut total = 0u64;
    let mut total_time = Duration::ZERO;
    for spec in specs {
        let schedule = Schedule::parse(spec).expect("valid spec");
        let started = Instant::now();
        let mut n = 0u64;
        for at in year_of_minutes() {
            black_box(schedule.next_in(black_box(at), &zone));
            n += 1;
        }
        let elapsed = started.elapsed();
        report(&format!("next_in({spec:?}), a year of minutes"), n, elapsed);
        total += n;
        total_time += elapsed;
    }
    report("next_in, all specs", total, total_time);

    // The same on a bare TimeZone: offsets come from the tz database on each call.
    let schedule = Schedule::parse("0 8 1 3 *").expect("valid spec");
    let started = Instant::now();
    let mut n = 0u64;
    for at in year_of_minutes() {
        black_box(schedule.next(black_box(at), &tz));
        n += 1;
    }
    report("next(\"0 8 1 3 *\") on a TimeZone, a year of minutes", n, started.elapsed());

    let started = Instant::now();
    for _ in 0..100 {
        black_box(CronTrigger::new("0 8 * * *", "0 18 * * *", ZONE, 3).expect("valid trigger"));
    }
    report("CronTrigger::new (parse, build the zone table)", 100, started.elapsed());
    let started = Instant::now();
    let triggers = fifty_triggers(&zone);
    report("CronTrigger::in_zone (parse, shared zone)", 50, started.elapsed());

    let scaled_object = ScaledObjectModel::new(2, triggers);
    let started = Instant::now();
    let mut n = 0u64;
    let mut replica_minutes = 0i64;
    for at in year_of_minutes() {
        replica_minutes += black_box(scaled_object.floor(black_box(at)));
        n += 1;
    }
    let elapsed = started.elapsed();
    report("floor, 50 triggers, a year of minutes", n, elapsed);
    report("  = next calls (2 per trigger)", n * 100, elapsed);
    println!("(mean floor {:.2} replicas)", replica_minutes as f64 / n as f64);
}
