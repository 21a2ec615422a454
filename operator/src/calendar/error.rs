//! What cannot make a valid calendar. The messages speak of the values as the user wrote them; the
//! caller adds where they are (the field path of the resource).

use jiff::civil::Date;

/// One error type for the whole calendar area: every constructor that can refuse returns it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("\"{value}\" is not a month and day: expected MM-DD, such as 09-19")]
    MonthDay { value: String },
    #[error("\"{value}\" is not a time of day: expected HH:MM from 00:00 to 24:00, such as 23:30")]
    TimeOfDay { value: String },
    #[error("daily hours cannot start at 24:00; start at 00:00 instead")]
    HoursStartAtEndOfDay,
    #[error("\"{value}\" is not a pre-warm lead time: expected a duration such as 90m, 2h or 1h30m")]
    PreWarmFormat { value: String },
    #[error("pre-warm lead time {value} is not whole minutes")]
    PreWarmNotWholeMinutes { value: String },
    #[error("pre-warm lead time {value} is negative; it is how long before a window to scale up")]
    PreWarmNegative { value: String },
    #[error("pre-warm lead time {value} is longer than the most allowed, {max}")]
    PreWarmTooLong { value: String, max: String },
    #[error("the dates run backwards: {to} is before {from}")]
    DatesReversed { from: Date, to: Date },
    #[error("the Easter offsets run backwards: {to} is before {from}")]
    EasterReversed { from: i16, to: i16 },
    #[error("Easter offset {offset} is more than {max} days from Easter Sunday")]
    EasterOffsetTooFar { offset: i64, max: i16 },
    #[error(
        "\"{value}\" is not a German state: expected its ISO 3166-2 code without \"DE-\", such as BY or NW"
    )]
    UnknownState { value: String },
    #[error("\"{value}\" is not a time zone of the IANA database, such as Europe/Berlin")]
    UnknownTimeZone { value: String },
    #[error("the name \"{name}\" must be 1 to 63 characters of a-z, 0-9 and -")]
    Name { name: String },
    #[error("the name \"{name}\" is used by more than one {kind}")]
    DuplicateName { kind: &'static str, name: String },
    #[error("minReplicas {min} is above maxReplicas {max}")]
    ReplicasReversed { min: u32, max: u32 },
    #[error("maxReplicas must be at least 1")]
    ZeroMaxReplicas,
}
