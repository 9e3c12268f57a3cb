//! What the run shows and leaves: the live dashboard, `/metrics`, the status line and the
//! end-of-run summary, `--assert` thresholds, the JSON, HTML and CSV reports and the event log
//! written as the run goes (`eventlog`); earlier runs' reports read back (`--baseline`) and
//! compared (`hls-swarm compare`).

pub mod baseline;
pub mod comparison;
pub mod eventlog;
pub mod metrics;
pub mod outcome;
pub mod report;
pub mod shape;
pub mod summary;
pub mod thresholds;
pub mod tui;
