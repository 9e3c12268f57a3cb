//! Container images of `hls-swarm` and the test origin, built without Nix, buildah or docker.
//!
//! # Theory of operation
//!
//! **Same closure as the MicroVM** ([`spec`]). An image's file set is a
//! [`microvm::image::Plan`]: each program is copied from the host with every shared library its
//! own dynamic loader resolves, at the path the loader found it (symlinks on the way kept), and
//! programs with debug sections go through `strip --strip-debug` — exactly what the MicroVM's
//! initramfs holds. The container adds its own `/etc` (root, nobody and one non-root user, files-
//! then-DNS name service), the CA bundle and curl for the healthcheck. The two images and their
//! configuration (user, entrypoint, environment, ports, healthcheck, labels) are data here and
//! follow the flake's `nix/containers.nix`: the same names, uids and variables.
//!
//! **Archive** ([`archive`]). One layer tar and a Docker image config, packed as an uncompressed
//! docker-archive (`manifest.json`, `<config sha256>.json`, `<layer sha256>/layer.tar`), which
//! `podman load` and `docker load` read directly. Docker's config format, not OCI's, because only
//! it has a `Healthcheck` (podman keeps it from a docker-archive). Entries are sorted, owned by
//! root, stamped with one fixed time, and the config carries no build time, so the same inputs
//! give the same bytes and the same image id.
//!
//! **Podman** ([`podman`]). A thin runner: global flags (a private storage root for tests), the
//! `CONTAINERS_CONF` file ([`podman::conf`]: runc when installed, default ulimits no higher than
//! this process's own hard limits, which a container may not exceed without `CAP_SYS_RESOURCE`),
//! `load`, `run`, `rm`, `rmi`, each failure carrying podman's own message.
//!
//! [`cli`] is the `hls-containers` binary (`build`, `podman-conf`, `run-origin`, `stop-origin`).

pub mod archive;
pub mod cli;
mod error;
pub mod podman;
pub mod spec;

pub use error::Error;
