//! What the run measured: the engine-neutral events viewers report, the player model, latency
//! histograms, the one fold that owns every aggregate, the per-second history, and the
//! origin's own figures. Nothing here knows which engine produced an event.

pub mod energy;
pub mod events;
pub(crate) mod exchanges;
pub mod fold;
pub mod generator;
pub mod history;
pub mod latency;
pub mod origin;
pub mod player;
pub mod ramp;
pub mod results;
pub mod shard;
pub mod snapshot;
pub mod streams;
pub mod trail;
pub mod windows;
