//! The NixOS modules, the origin MicroVM and the stand-ins' strictness, evaluated with the real
//! `lib.evalModules` (see `nix/offline-stub/nixpkgs/nixos.nix`).

use super::{have_nix, origin_profiles, Scratch, SYSTEMS};

/// `nixos { modules = [ <modules> ]; }` for x86_64-linux, checked, then `result` applied to it.
fn system(modules: &str, result: &str) -> String {
    format!(
        r#"let s = nixos {{ modules = [ {{ nixpkgs.hostPlatform = "x86_64-linux"; }} {modules} ]; }};
           in builtins.seq s.lab.checked ({result})"#
    )
}

#[testkit::test]
fn nix_flake_nixos_modules_evaluate_with_the_real_module_system() -> testkit::Outcome {
    have_nix()?;
    let scratch = Scratch::new()?;
    let eval = |expr: &str| scratch.eval_expr(expr).unwrap_or_else(|e| panic!("{expr}\nfailed:\n{e}"));

    // The origin service, for every profile hls-origin has.
    for profile in origin_profiles() {
        let line = eval(&system(
            &format!(
                r#"flake.nixosModules.origin {{ services.hls-origin = {{ enable = true; profile = "{profile}";
                     openFirewall = true; extraArgs = [ "--source" "replay" ]; }}; }}"#
            ),
            r#"s.config.systemd.services.hls-origin.serviceConfig.ExecStart + " | "
               + toString s.config.networking.firewall.allowedTCPPorts"#,
        ));
        assert!(line.contains(&format!("/bin/hls-origin serve --profile {profile} ")), "{line}");
        assert!(line.contains(" --source replay |"), "{line}");
        assert!(line.ends_with(" | 17080 9100 9113"), "{line}");
    }

    // The host network, with every option set.
    let net = eval(&system(
        r#"flake.nixosModules.network { networking.hls-lab = { enable = true; tapUser = "alice";
             nat = { enable = true; externalInterface = "eth0"; }; }; }"#,
        r#"builtins.toJSON s.config.systemd.network.netdevs."41-hlstap0".tapConfig"#,
    ));
    assert_eq!(net, r#"{"MultiQueue":true,"User":"alice"}"#);

    // The origin MicroVM, both network forms, on both systems: building the runner's
    // derivation forces the whole evaluation and microvm.nix's assertions.
    for system in SYSTEMS {
        for pkg in ["test-origin-vm", "test-origin-vm-tap"] {
            let drv = scratch.eval(&format!("packages.{system}.{pkg}"), "d: d.drvPath");
            assert!(drv.ends_with(".drv"), "{pkg}: {drv}");
        }
    }
    Ok(())
}

/// A check that cannot fail proves nothing: each kind of mistake the stand-ins exist to catch,
/// made on purpose, must fail evaluation with a message that names it.
#[testkit::test]
fn nix_flake_offline_checks_fail_on_each_kind_of_mistake() -> testkit::Outcome {
    have_nix()?;
    let scratch = Scratch::new()?;
    let mistakes = [
        (
            "an unknown option",
            system(r#"flake.nixosModules.origin { services.hls-origin.enabel = true; }"#, "true"),
            "services.hls-origin.enabel' does not exist",
        ),
        (
            "a type error",
            system(
                r#"flake.nixosModules.origin { services.hls-origin = { enable = true; port = "80"; }; }"#,
                "true",
            ),
            "services.hls-origin.port' is not of type",
        ),
        (
            "an unknown option of a NixOS option the modules touch",
            system(r#"{ networking.hostname = "x"; }"#, "true"),
            "networking.hostname' does not exist",
        ),
        (
            "an unknown microvm.nix option",
            system(r#"flake.nixosModules.origin microvm.nixosModules.microvm { microvm.vcpus = 2; }"#, "true"),
            "microvm.vcpus' does not exist",
        ),
        (
            "a failed microvm.nix assertion",
            system(
                r#"microvm.nixosModules.microvm { microvm.interfaces = [ { type = "tap"; id = "hlstap0"; mac = "02:00:00:00:00:01"; } ];
                     microvm.forwardPorts = [ { host.port = 1; guest.port = 1; } ]; }"#,
                "true",
            ),
            "forwardPorts` works only with qemu and one network interface",
        ),
        (
            "a misspelled buildRustPackage argument",
            r#"(pkgs.rustPlatform.buildRustPackage { pname = "x"; version = "1"; inherit src;
                 cargoLock.lockFile = src + "/Cargo.lock"; cargoBuildFlag = [ ]; }).drvPath"#
                .to_owned(),
            "buildRustPackage: unknown argument(s) cargoBuildFlag",
        ),
        (
            "a misspelled buildLayeredImage argument",
            r#"(pkgs.dockerTools.buildLayeredImage { name = "x"; contentz = [ ]; }).drvPath"#.to_owned(),
            "buildLayeredImage: unknown argument(s) contentz",
        ),
        (
            "a misspelled runNixOSTest argument",
            r#"(pkgs.testers.runNixOSTest { name = "x"; nodes = { }; testScript = ""; globalTimout = 1; }).drvPath"#
                .to_owned(),
            "runNixOSTest: unknown argument(s) globalTimout",
        ),
    ];
    for (what, expr, expected) in mistakes {
        match scratch.eval_expr(&expr) {
            Ok(v) => panic!("{what} evaluated ({v}) instead of failing:\n{expr}"),
            Err(e) => {
                assert!(e.contains(expected), "{what}: expected an error containing {expected:?}, got:\n{e}")
            }
        }
    }
    Ok(())
}
