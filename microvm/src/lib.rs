//! The origin MicroVM: image assembly from host binaries and a qemu launcher (KVM or TCG).
//!
//! Not built yet; the work is tracked as the "Network and MicroVM" issue. This crate exists so
//! the workspace layout matches the product map. It exports nothing.
