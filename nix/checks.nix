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

  # Integration tests start the real origin (ffmpeg + nginx on loopback) and the real swarm.
  # testlab's nix_flake tests need Nix itself and run outside the sandbox (`make test`).
  workspace-tests = cargoCheck "tests" (old: {
    doCheck = true;
    nativeCheckInputs = built.originTools;
    cargoTestFlags = [ "--workspace" ];
    checkFlags = [ "--skip" "nix_flake" ];
    preCheck = ''
      export HOME=$TMPDIR
    '';
  });

  swarm-vs-origin = import ./tests/swarm-vs-origin.nix { inherit pkgs lab self; };
}
