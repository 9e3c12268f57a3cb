# `nix flake check`: the same gates as `make test` (fmt, clippy -D warnings, the workspace
# tests with real ffmpeg and nginx) plus a NixOS VM test of a real load run.
{ pkgs, lib, lab, self, built }:
let
  inherit (built) workspace src;

  # The workspace derivation with its vendored dependencies, running another cargo command
  # instead of the build. `$out` is an empty marker file.
  cargoCheck = name: extra: workspace.overrideAttrs (old: {
    pname = "hls-swarm-lab-${name}";
    dontCargoInstall = true;
    installPhase = "touch $out";
  } // extra old);

  # hls.js for the ll-hls origin's acceptance test: the version and npm's sha512 that
  # scripts/fetch-hlsjs pins, read from it so the two cannot drift.
  fetchScript = builtins.readFile ../scripts/fetch-hlsjs;
  pinned = name: builtins.head (builtins.match ".*\n${name}=([^\n]*)\n.*" fetchScript);
  hlsjs = pkgs.fetchurl {
    url = "https://registry.npmjs.org/hls.js/-/hls.js-${pinned "version"}.tgz";
    hash = pinned "integrity";
  };
in
{
  fmt = pkgs.runCommand "hls-swarm-lab-fmt" { nativeBuildInputs = [ pkgs.cargo pkgs.rustfmt ]; } ''
    export HOME=$TMPDIR
    cd ${src}
    cargo fmt --all -- --check
    touch $out
  '';

  clippy = cargoCheck "clippy" (old: {
    nativeBuildInputs = old.nativeBuildInputs ++ [ pkgs.clippy ];
    buildPhase = ''
      runHook preBuild
      cargo clippy --workspace --all-targets --offline -- -D warnings
      runHook postBuild
    '';
  });

  # The whole suite, in the build sandbox: no root, no network but loopback, no /dev/kvm, no
  # Nix. What can run there runs: the tools below are on PATH (every test finds its programs
  # on PATH, never at a fixed /usr path), so the origin, swarm, Prometheus, dashboard and
  # report tests run against the real programs. What cannot is skipped, and testkit prints
  # each skip with its reason:
  # - network namespaces, bridges, TAPs, nftables and rootful podman (network/, containers/,
  #   the lab scenarios in a namespace): they need root, which the sandbox never has;
  # - the origin VM (microvm/): it needs a host kernel image, and KVM or minutes of TCG;
  # - testlab's nix_flake tests: they run Nix itself on the flake (`make test` runs them);
  #   they are skipped by name below because Nix in the sandbox would fail, not skip.
  # `make test` on a Debian machine runs all of these; README.md, "What is tested where".
  workspace-tests = cargoCheck "tests" (old: {
    doCheck = true;
    nativeCheckInputs = built.originTools ++ (with pkgs; [
      prometheus # prometheus and promtool: the Prometheus scrape and rule tests
      tmux # the live dashboard, driven in a terminal
      chromium # the HTML report, rendered headless; hls.js plays the ll-hls origin
      stress-ng # the "generator busy" test loads the machine
      zsh # hls-swarm's completion scripts, checked by the shells themselves
      fish
    ]);
    cargoTestFlags = [ "--workspace" ];
    checkFlags = [ "--skip" "nix_flake" ];
    preCheck = ''
      export HOME=$TMPDIR
      mkdir -p $TMPDIR/hlsjs
      tar -xzf ${hlsjs} -C $TMPDIR/hlsjs package/dist/hls.min.js
      export HLS_LAB_HLSJS=$TMPDIR/hlsjs/package/dist/hls.min.js
    '';
  });

  swarm-vs-origin = import ./tests/swarm-vs-origin.nix { inherit pkgs lab self; };
}
