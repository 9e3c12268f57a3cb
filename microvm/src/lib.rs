//! The origin MicroVM: a kernel + initramfs image assembled from the host's own binaries, and
//! a qemu launcher that runs it with KVM when KVM really works and TCG otherwise.
//!
//! # Theory of operation
//!
//! **Image** ([`image`]). `hls-origin`, ffmpeg, nginx and the two Prometheus exporters are
//! copied from the host with every shared library their dynamic loader resolves ([`ldd`],
//! [`elf`]), busybox for the init, the virtio/ACPI kernel modules with their dependencies
//! ([`kmod`]), the init script and a minimal `/etc` ([`guest`]). The archive is cpio newc
//! written here ([`cpio`]), uncompressed: under TCG the guest decompresses slowly, so the kernel
//! is also extracted from its bzImage ([`kernel`], [`decompress`]). Images are cached under a
//! key over every input's identity; an unchanged host rebuilds nothing.
//!
//! **Accelerator** ([`kvm`]). KVM only with a `vmx`/`svm` CPU flag, a read-write `/dev/kvm` and
//! a probe guest that reaches user space under KVM within a bound; TCG otherwise, with the
//! reason printed. The verdict is cached per host boot.
//!
//! **Launcher** ([`vm`], [`config`], [`control`], [`qemu`], [`qmp`], [`rundir`]). qemu runs daemonised with its pid,
//! start time and addresses in a run directory; `start` returns once the playlist is served
//! (checked over HTTP, from inside the TAP's network namespace when there is one, [`http`],
//! [`netns`]); `stop` presses the ACPI power button through QMP — the guest's init stops
//! `hls-origin` and powers off — and kills qemu after a grace period, only after checking the
//! pid is still that qemu. The serial console goes to a unix socket and a log file, never to a
//! TCP port; the image has no login, no password and no key.
//!
//! [`cli`] is `hls-lab` (`microvm …` here, `network …` from the `network` crate, and
//! `load-test`, [`loadtest`], which aims `hls-swarm` at whichever origin is up).

pub mod cli;
pub mod config;
pub mod control;
pub mod cpio;
pub mod decompress;
pub mod elf;
mod error;
pub mod guest;
pub mod http;
pub mod image;
pub mod kernel;
pub mod kmod;
pub mod kvm;
pub mod ldd;
pub mod loadtest;
pub mod netns;
pub mod observe;
pub mod qemu;
pub mod qmp;
pub mod rundir;
pub mod vm;
