//! The image built from this host's real binaries: layout, libraries resolvable inside the
//! archive, modules, no credentials, and the cache. No VM is started.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use microvm::{cpio, image, kmod, ldd};

use crate::common;

/// Follows symlinks inside the archive (relative and absolute) to the entry a path names.
fn resolve<'a>(map: &HashMap<&str, &'a cpio::Entry<'a>>, path: &str) -> Option<&'a cpio::Entry<'a>> {
    let found = cpio::resolve_links(path, |p| map.get(p).map(|e| e.link_target().map(str::to_owned)))?;
    map.get(found.as_str()).copied()
}

#[testkit::test]
fn image_from_host_binaries_has_everything_and_no_credentials() -> testkit::Outcome {
    common::vm_facilities()?;
    let cache = tempfile::tempdir().unwrap();
    let inputs = image::Inputs::discover(&common::origin_overrides()).unwrap();
    let img = image::build(&inputs, cache.path()).unwrap();
    assert!(!img.cached);
    assert!(img.initramfs.starts_with(cache.path().join(&img.key)));
    let bytes = std::fs::read(&img.initramfs).unwrap();
    assert_eq!(bytes.len() as u64, img.initramfs_bytes);
    let entries = cpio::read(&bytes).unwrap();
    let map: HashMap<&str, &cpio::Entry> = entries.iter().map(|e| (e.name.as_str(), e)).collect();

    // Programs at the paths the init uses, executable.
    for p in [
        "init",
        "usr/bin/hls-origin",
        "usr/bin/ffmpeg",
        "usr/sbin/nginx",
        "usr/bin/prometheus-node-exporter",
        "usr/bin/prometheus-nginx-exporter",
        "opt/busybox/busybox",
    ] {
        let e = resolve(&map, p).unwrap_or_else(|| panic!("{p} missing"));
        assert!(e.is_file() && e.mode & 0o111 != 0, "{p} not an executable file");
    }
    assert_eq!(resolve(&map, "opt/busybox/bin/sh").unwrap().name, "opt/busybox/busybox");
    assert!(std::str::from_utf8(map["init"].data).unwrap().starts_with("#!/opt/busybox/bin/sh\n"));

    // Every library each program's loader resolves on the host resolves inside the archive too.
    for prog in [&inputs.ffmpeg, &inputs.nginx, &inputs.node_exporter, &inputs.nginx_exporter, &inputs.origin]
    {
        for lib in ldd::needed(prog).unwrap() {
            let e = resolve(&map, &lib.to_string_lossy())
                .unwrap_or_else(|| panic!("{} (for {}) missing", lib.display(), prog.display()));
            assert!(e.is_file(), "{}", lib.display());
            assert!(e.data.starts_with(b"\x7fELF"), "{} is not ELF", lib.display());
        }
    }

    // Modules, checked against the host's own modules.dep: every wanted module that is not
    // built in is listed, nothing else is listed but their dependencies, each dependency
    // comes before the module needing it, and each file is a plain ELF object.
    let list = std::str::from_utf8(map["etc/hls-lab/modules"].data).unwrap();
    let names: Vec<&str> =
        list.lines().map(|l| l.strip_suffix(".ko").unwrap_or_else(|| panic!("{l}"))).collect();
    assert!(names.contains(&"virtio_net") && names.contains(&"virtio_pci"), "{names:?}");
    let dep = kmod::parse_dep(&std::fs::read_to_string(inputs.modules.join("modules.dep")).unwrap());
    let builtin = kmod::parse_builtin(
        &std::fs::read_to_string(inputs.modules.join("modules.builtin")).unwrap_or_default(),
    );
    let deps_of = |n: &str| -> Vec<String> {
        dep.get(n)
            .unwrap_or_else(|| panic!("{n} not in modules.dep"))
            .deps
            .iter()
            .map(|d| kmod::name_of(d))
            .collect()
    };
    let mut allowed = std::collections::HashSet::new();
    for w in kmod::WANTED.iter().filter(|w| !builtin.contains(**w)) {
        assert!(names.contains(w), "wanted module {w} is not listed: {names:?}");
        allowed.insert((*w).to_owned());
        allowed.extend(deps_of(w));
    }
    for (i, n) in names.iter().enumerate() {
        assert!(allowed.contains(*n), "{n} is neither wanted nor a dependency of a wanted module");
        for d in deps_of(n) {
            let at = names.iter().position(|x| *x == d);
            assert!(at.is_some_and(|at| at < i), "{d} must be listed before {n}: {names:?}");
        }
        assert_eq!(names.iter().filter(|x| *x == n).count(), 1, "{n} listed twice");
        let e = map[format!("usr/lib/hls-lab/modules/{n}.ko").as_str()];
        assert!(e.data.starts_with(b"\x7fELF"), "{n} not a plain ELF module");
    }

    // ACPI power button handler.
    let power = map["etc/acpi/PWRF/00000080"];
    assert!(power.mode & 0o111 != 0);
    assert!(std::str::from_utf8(power.data).unwrap().contains("kill -TERM 1"));

    // No credentials: no shadow file, no password hashes, no keys, no login programs or their
    // config. Every account's shell is busybox's nologin.
    let passwd = std::str::from_utf8(map["etc/passwd"].data).unwrap();
    assert!(passwd.lines().any(|l| l.starts_with("root:")), "{passwd}");
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        assert_eq!(f.len(), 7, "{line}");
        assert_eq!(f[1], "x", "{line}");
        assert!(f[6].ends_with("/nologin"), "{line}");
        let shell = resolve(&map, f[6]).unwrap_or_else(|| panic!("{line}: its shell is not in the image"));
        assert_eq!(shell.name, "opt/busybox/busybox", "{line}");
    }
    let group = std::str::from_utf8(map["etc/group"].data).unwrap();
    assert!(group.lines().all(|l| l.split(':').nth(1) == Some("x")), "{group}");
    for e in &entries {
        let n = e.name.as_str();
        assert!(
            !(n.ends_with("shadow")
                || n.contains(".ssh")
                || n.ends_with("authorized_keys")
                || n.contains("ssh_host_")),
            "{n} in the image"
        );
        assert!(!n.starts_with("etc/inittab") && !n.contains("getty"), "{n} in the image");
        // Private keys are PEM text (libraries carry the marker as a string: skip ELF files).
        if e.is_file() && !e.data.starts_with(b"\x7fELF") {
            assert!(!e.data.windows(12).any(|w| w == b"PRIVATE KEY-"), "{n} holds a private key");
        }
    }
    // busybox-static offers these applets; none is linked in the image.
    for applet in ["login", "sulogin", "su", "passwd", "mkpasswd", "chpasswd", "adduser", "telnetd"] {
        let p = format!("opt/busybox/bin/{applet}");
        assert!(!map.contains_key(p.as_str()), "{p} in the image");
    }

    // Kernel: the extracted vmlinux is ELF, the bzImage copy is the host's.
    let vmlinux = img.kernel.vmlinux.as_ref().expect("Debian's xz kernel is extracted");
    let mut head = [0u8; 4];
    use std::io::Read;
    std::fs::File::open(vmlinux).unwrap().read_exact(&mut head).unwrap();
    assert_eq!(&head, b"\x7fELF");
    assert_eq!(
        std::fs::metadata(&img.kernel.bzimage).unwrap().len(),
        std::fs::metadata(&inputs.kernel).unwrap().len()
    );

    // Unchanged inputs: cached, same key, the initramfs not written again (how long the
    // cache check takes is in `make bench-microvm`'s image table).
    let written = std::fs::metadata(&img.initramfs).unwrap();
    let again = image::build(&inputs, cache.path()).unwrap();
    assert!(again.cached);
    assert_eq!(again.key, img.key);
    let reread = std::fs::metadata(&again.initramfs).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (reread.ino(), reread.mtime(), reread.mtime_nsec()),
        (written.ino(), written.mtime(), written.mtime_nsec()),
        "a cached image is reused, not rewritten"
    );

    // The CLI reports the same image as cached, with path and size.
    let mut cmd = Command::new(common::hls_lab());
    cmd.args(["microvm", "build", "--cache-dir"]).arg(cache.path()).arg("--origin-bin").arg(&inputs.origin);
    let out = common::run(&mut cmd, Duration::from_secs(60));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("image: {} (cached", img.dir.display())), "{text}");
    assert!(text.contains(&format!("({} bytes)", img.initramfs_bytes)), "{text}");
    Ok(())
}

#[testkit::test]
fn missing_kernel_is_a_clear_input_error() {
    let mut cmd = Command::new(common::hls_lab());
    cmd.args(["microvm", "build", "--kernel", "/nonexistent/vmlinuz-0.0"]);
    let out = common::run(&mut cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read kernel /nonexistent/vmlinuz-0.0"), "{err}");
}

#[testkit::test]
fn taken_host_port_is_refused_by_qemu_and_nothing_is_left() -> testkit::Outcome {
    common::vm_facilities()?;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let free = common::free_ports(2);
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("vm-t-port");
    let mut cmd = Command::new(common::hls_lab());
    cmd.args(["microvm", "start", "--name", "t-port", "--accel", "tcg", "--run-dir"])
        .arg(&run_dir)
        .arg("--cache-dir")
        .arg(common::test_cache())
        .arg("--origin-bin")
        .arg(common::sibling("hls-origin"))
        .arg("--host-ports")
        .arg(format!("{port},{},{}", free[0].get(), free[1].get()));
    let out = common::run(&mut cmd, Duration::from_secs(120));
    assert_eq!(out.status.code(), Some(4));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("qemu refused to start"), "{err}");
    assert!(err.contains(&port.to_string()), "qemu's message names the port: {err}");
    common::assert_nothing_left_but_logs("t-port", &run_dir);
    Ok(())
}
