//! The lab's end-to-end harness: boots an origin, scrapes its exporters and runs load scenarios
//! with the real swarm.
//!
//! Not built yet; the work is tracked as the "Testlab" issue. This crate exists so the
//! workspace layout matches the product map. It exports nothing.
