//! From the command line to a finished run: the CLI and its validated configuration, the
//! start schedule, preflight, `--check`, the one look at the stream before the load, and the
//! orchestrator that starts and stops everything; the shell completions and man pages made
//! from the CLI.

pub mod check;
pub mod cli;
pub mod compare;
pub mod config;
pub mod examine;
pub mod fleet;
pub mod manual;
pub mod merge;
pub mod orchestrator;
pub mod outputs;
pub mod plan;
pub mod preflight;
pub mod signals;
pub mod streams;
