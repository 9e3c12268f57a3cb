//! The lab network: host bridge, TAP device and network namespace for the origin MicroVM.
//!
//! Not built yet; the work is tracked as the "Network and MicroVM" issue. This crate exists so
//! the workspace layout matches the product map. It exports nothing.
