//! What `calendar preview` shows: the floors of a calendar over a span, per territory and
//! component. Pure: the caller reads and writes the files.
//!
//! ```text
//! text   the timeline as text: the floor at the start, then every change with what is in force
//! svg    the same steps as an SVG plot, the windows and dark periods as labelled bands
//! ```

use std::collections::BTreeSet;

use crate::calendar::Calendar;

mod svg;
mod text;

pub use svg::{PlotError, svg};
pub use text::text;

/// The territories a calendar names; `fallback` when every window and dark period covers all.
pub fn territories(calendars: &[Calendar], fallback: &str) -> Vec<String> {
    let named: BTreeSet<String> = calendars
        .iter()
        .flat_map(|c| {
            let windows = c.windows.iter().filter_map(|w| w.territories.as_ref());
            let darks = c.darks.iter().filter_map(|d| d.territories.as_ref());
            windows.chain(darks).flatten().cloned().collect::<Vec<_>>()
        })
        .collect();
    if named.is_empty() { vec![fallback.to_owned()] } else { named.into_iter().collect() }
}
