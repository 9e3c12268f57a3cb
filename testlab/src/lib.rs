//! The lab's end-to-end harness: each scenario file boots a real origin, scrapes its
//! exporters, runs the real swarm against it, and checks the outcome.
//!
//! # Theory of operation
//!
//! A scenario (`testlab/scenarios/NAME.toml`, [`scenario`]) is data, parsed with unknown keys
//! refused and validated before anything starts. [`runner::run`] then, on a tokio runtime of
//! its own:
//!
//! 1. builds the place the origin runs in: nothing for `process` (loopback, free ports), two
//!    namespaces joined by a veth and a bridge for `netns` ([`labnet`], with the optional
//!    impairment), or `hls-lab network setup` + `hls-lab microvm start` for `microvm`;
//! 2. starts `hls-origin serve` as a child ([`origin`]) and waits for its `ready URL` line;
//! 3. scrapes the node and nginx exporters before, during (every second) and after the run
//!    ([`exporters`]); starts a real Prometheus scraping the swarm if asked ([`prometheus`]);
//! 4. runs `hls-swarm` to completion ([`swarm`]) with a JSON report, while a task sends the
//!    scenario's faults to the origin's status listener at their times ([`faults`]);
//! 5. stops the origin (which flushes nginx's access log), and judges: the exit code, the lab
//!    checks against the access log, the exporters and the origin's CPU ([`checks`]), the
//!    PromQL checks, and the snapshot of the normalized result ([`normalize`], [`snapshot`]);
//! 6. stops whatever is left and looks for leftovers ([`leftovers`]): every process it started
//!    carries a marker in its environment, inherited by their children, so anything still
//!    alive with it, and any of the run's namespaces still there, fails the scenario.
//!
//! Every failure is collected rather than the first one ending the run, so one run says
//! everything that is wrong. A host that lacks what a scenario needs (root, qemu, Prometheus,
//! netem for a delay) makes it *skipped with the reason*, never passed. The result, the
//! swarm's report and every log stay in `target/<profile>/testlab-runs/NAME/`.
//!
//! `tests/scenarios.rs` turns each file into a libtest-mimic trial.

pub mod checks;
pub mod dashboards;
pub mod env;
pub mod exporters;
pub mod faults;
pub mod http;
pub mod labnet;
pub mod leftovers;
pub mod normalize;
pub mod origin;
pub mod prometheus;
pub mod rapl;
pub mod runner;
pub mod scenario;
pub mod snapshot;
pub mod swarm;

pub use env::Env;
pub use runner::{run, Outcome};
pub use scenario::{Scenario, Tier};
