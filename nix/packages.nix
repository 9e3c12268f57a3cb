# The Cargo workspace, built once, and the lab's programs wrapped so that the tools they drive
# (ffmpeg, nginx, the Prometheus exporters, qemu) are on PATH.
{ pkgs }:
let
  inherit (pkgs) lib;
  workspaceToml = lib.importTOML ../Cargo.toml;

  # Only what cargo reads: changing flake.nix, the README or the Makefile does not rebuild.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions ([
      ../Cargo.toml
      ../Cargo.lock
      (lib.fileset.maybeMissing ../rustfmt.toml)
      (lib.fileset.maybeMissing ../clippy.toml)
    ] ++ map (member: ../. + "/${member}") workspaceToml.workspace.members);
  };

  # The viewers only demux; the origin encodes libx264 + AAC from lavfi. The headless build has
  # both and none of the GUI closure.
  ffmpeg = pkgs.ffmpeg-headless;

  # hls-origin runs the exporters under Debian's command names; nixpkgs calls them
  # node_exporter and nginx-prometheus-exporter.
  exporters = pkgs.runCommand "hls-lab-exporters" { } ''
    mkdir -p $out/bin
    ln -s ${pkgs.prometheus-node-exporter}/bin/node_exporter $out/bin/prometheus-node-exporter
    ln -s ${pkgs.prometheus-nginx-exporter}/bin/nginx-prometheus-exporter $out/bin/prometheus-nginx-exporter
  '';

  originTools = [ ffmpeg pkgs.nginx exporters ];
  swarmTools = [ ffmpeg ];
  labTools = originTools ++ [ pkgs.qemu_kvm ];

  workspace = pkgs.rustPlatform.buildRustPackage {
    pname = "hls-swarm-lab";
    inherit (workspaceToml.workspace.package) version;
    inherit src;
    cargoLock.lockFile = ../Cargo.lock;
    # Every binary of every member: hls-swarm, hls-origin, hls-lab, hls-containers.
    cargoBuildFlags = [ "--workspace" "--bins" ];
    # The suite needs ffmpeg and nginx and runs in checks.workspace-tests.
    doCheck = false;
    meta = {
      description = "hls-swarm lab binaries (unwrapped)";
      license = with lib.licenses; [ mit asl20 ];
      platforms = lib.platforms.linux;
    };
  };

  # One wrapped program: `bin/<name>` from the workspace with `tools` first on PATH.
  wrap = name: description: tools:
    pkgs.runCommand name
      {
        nativeBuildInputs = [ pkgs.makeBinaryWrapper ];
        meta = {
          inherit description;
          inherit (workspace.meta) license platforms;
          mainProgram = name;
        };
        passthru = { unwrapped = workspace; inherit tools; };
      } ''
      # Fails here, naming the binary, when the workspace does not build it (yet).
      makeWrapper ${workspace}/bin/${name} $out/bin/${name} \
        --prefix PATH : ${lib.makeBinPath tools}
    '';

  hls-swarm = wrap "hls-swarm" "N simulated HLS viewers (FFmpeg processes) against one stream" swarmTools;
  hls-origin = wrap "hls-origin" "Test HLS origin: live ffmpeg encoder, nginx and Prometheus exporters" originTools;
  # hls-lab: crates network/ and microvm/ (bridge, TAP, netns; VM image and launcher).
  hls-lab = wrap "hls-lab" "Bridge, TAP and origin MicroVM control for the hls-swarm lab" labTools;

  rustTools = with pkgs; [ cargo rustc clippy rustfmt rust-analyzer ];
in
{
  inherit src workspace ffmpeg exporters hls-swarm hls-origin hls-lab rustTools originTools;

  devShell = pkgs.mkShell {
    packages = rustTools ++ lib.unique labTools ++ (with pkgs; [ nixpkgs-fmt curl jq iproute2 ]);
  };
}
