//! What the image is built from on this host, read for real: the distribution kernel and its
//! modules, busybox-static, and GNU cpio as an independent reader of our archives. `make test`
//! installs all of them (`scripts/install-deps --test --vm`); elsewhere a missing one is a skip.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use microvm::{cpio, elf, kernel, kmod, ldd};

/// The host's kernel with its modules: the newest `/boot/vmlinuz-*` with modules under
/// `/lib/modules`, else a NixOS system's.
fn host_kernel() -> Result<kernel::Found, testkit::Skip> {
    let found = kernel::find_default(&kernel::Search::host());
    let why = found.as_ref().err().map(ToString::to_string).unwrap_or_default();
    testkit::need::installed(
        "a kernel with its modules",
        found.is_ok(),
        &format!("{why}; scripts/install-deps --vm installs linux-image-amd64"),
    )?;
    Ok(found.unwrap_or_default())
}

#[testkit::test]
fn the_host_kernel_opens_and_names_its_payload() -> testkit::Outcome {
    let found = host_kernel()?;
    let k = kernel::Kernel::open(&found.kernel).unwrap();
    assert_eq!(k.header.release, found.release);
    assert!(k.payload_format().unwrap().is_some(), "{} has a known payload format", found.kernel.display());
    Ok(())
}

#[testkit::test]
fn the_host_modules_resolve_virtio_net_with_its_dependencies() -> testkit::Outcome {
    let dir = host_kernel()?.modules;
    let order = kmod::resolve(&dir, &kmod::WANTED).unwrap();
    let names: Vec<String> = order.iter().map(|f| kmod::name_of(f)).collect();
    let net = names.iter().position(|n| n == "virtio_net").unwrap_or_else(|| panic!("{names:?}"));
    // Each dependency modules.dep lists for virtio_net is loaded, and before it.
    let dep = kmod::parse_dep(&std::fs::read_to_string(dir.join("modules.dep")).unwrap());
    let deps = &dep["virtio_net"].deps;
    assert!(!deps.is_empty(), "virtio_net needs virtio and failover modules on distribution kernels");
    for d in deps {
        let at = names.iter().position(|n| *n == kmod::name_of(d));
        assert!(at.is_some_and(|at| at < net), "{d} must load before virtio_net: {names:?}");
    }
    Ok(())
}

#[testkit::test]
fn static_busybox_needs_no_library_and_is_not_run() -> testkit::Outcome {
    let bb = ["/bin/busybox", "/usr/bin/busybox"].iter().map(Path::new).find(|p| p.exists());
    testkit::need::installed("busybox", bb.is_some(), "scripts/install-deps --vm installs busybox-static")?;
    let bb = bb.unwrap_or(Path::new("/bin/busybox"));
    assert_eq!(elf::inspect(bb).unwrap().interp, None, "{} is static (busybox-static)", bb.display());
    // The loader would crash on a static program: `needed` must answer without running it.
    assert_eq!(ldd::needed(bb).unwrap(), Vec::<std::path::PathBuf>::new());
    Ok(())
}

#[testkit::test]
fn gnu_cpio_lists_what_our_writer_wrote() -> testkit::Outcome {
    let program = testkit::need::program("cpio")?;
    let mut w = cpio::Writer::new(Vec::new());
    w.dir("dev", 0o755).unwrap();
    w.char_dev("dev/console", 0o600, 5, 1).unwrap();
    w.dir("usr", 0o755).unwrap();
    w.dir("usr/bin", 0o755).unwrap();
    w.file("usr/bin/hello", 0o755, b"#!/bin/sh\necho hi\n").unwrap();
    w.file("empty", 0o644, b"").unwrap();
    w.symlink("bin", "usr/bin").unwrap();
    let archive = w.finish().unwrap();
    let list = |verbose: bool| {
        let mut child = Command::new(&program)
            .args(["-t", "--quiet"])
            .args(verbose.then_some("-v"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&archive).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let names = list(false);
    assert_eq!(
        names.lines().collect::<Vec<_>>(),
        ["dev", "dev/console", "usr", "usr/bin", "usr/bin/hello", "empty", "bin"]
    );
    let long = list(true);
    let modes: Vec<&str> = long.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(
        modes,
        ["drwxr-xr-x", "crw-------", "drwxr-xr-x", "drwxr-xr-x", "-rwxr-xr-x", "-rw-r--r--", "lrwxrwxrwx"]
    );
    assert!(long.lines().last().is_some_and(|l| l.ends_with("bin -> usr/bin")), "{long}");
    Ok(())
}

#[testkit::test]
async fn load_test_without_an_origin_says_so() -> testkit::Outcome {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("vm-x");
    let up = microvm::loadtest::find("x", Some(&run_dir)).await.is_some();
    testkit::need::available(!up, "an origin serves on 127.0.0.1:17080 right now")?;
    let mut cmd = Command::new(crate::common::hls_lab());
    cmd.args(["load-test", "--clients", "1", "--name", "x", "--run-dir"]).arg(&run_dir);
    let out = tokio::task::spawn_blocking(move || crate::common::run(&mut cmd, Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no origin is up"));
    Ok(())
}
