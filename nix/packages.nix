# The Cargo workspace, built once, and the lab's programs wrapped so that the tools they drive
# (ffmpeg, nginx, the Prometheus exporters, qemu) are on PATH.
{ pkgs }:
let
  inherit (pkgs) lib;
  workspaceToml = lib.importTOML ../Cargo.toml;

  # Only what cargo and the tests read: changing flake.nix, the README or the Makefile does
  # not rebuild. Besides the members, the files outside them that the code reads
  # (`include_str!`, and paths the tests open relative to the workspace), which
  # testlab/tests/nix_flake finds in the source and checks are all here.
  fileset = lib.fileset.unions ([
    ../Cargo.toml
    ../Cargo.lock
    (lib.fileset.maybeMissing ../rustfmt.toml)
    (lib.fileset.maybeMissing ../clippy.toml)
    ../docs/metrics.md
    ../docs/report.schema.json
    # The Kubernetes manifests and the Grafana dashboards (the testlab scenarios name these).
    ../deploy
    ../nix/lab.nix
    ../nix/containers.nix
    ../scripts/install-deps
    ../scripts/fetch-hlsjs
  ] ++ map (member: ../. + "/${member}") workspaceToml.workspace.members);
  src = lib.fileset.toSource { root = ../.; inherit fileset; };

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
  # hls-lab builds the VM image from the host's programs (busybox is the guest's init), runs
  # qemu, and installs the NAT table with nft (`network setup --nat`).
  labTools = originTools ++ [ pkgs.qemu_kvm pkgs.busybox pkgs.nftables ];

  # The guest kernel: NixOS has no /boot/vmlinuz-* or /lib/modules, so hls-lab is given
  # nixpkgs' (the flags --kernel/--modules-dir and these variables still override it).
  guestKernel = pkgs.linuxPackages.kernel;
  labEnv = {
    HLS_LAB_KERNEL = "${guestKernel}/bzImage";
    HLS_LAB_MODULES = "${guestKernel}/lib/modules/${guestKernel.modDirVersion}";
  };

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

  # One wrapped program: `bin/<name>` from the workspace with `tools` first on PATH and `env`
  # as defaults for variables the user has not set; `extra` runs after (shell).
  wrap = name: description: tools: env: extra:
    pkgs.runCommand name
      {
        nativeBuildInputs = [ pkgs.makeBinaryWrapper pkgs.installShellFiles ];
        meta = {
          inherit description;
          inherit (workspace.meta) license platforms;
          mainProgram = name;
        };
        passthru = { unwrapped = workspace; inherit tools env; };
      } ''
      # Fails here, naming the binary, when the workspace does not build it (yet).
      makeWrapper ${workspace}/bin/${name} $out/bin/${name} \
        --prefix PATH : ${lib.makeBinPath tools} \
        ${lib.concatStringsSep " " (lib.mapAttrsToList (k: v: "--set-default ${k} ${lib.escapeShellArg v}") env)}
      ${extra}
    '';

  # hls-swarm's shell completions and man pages, made by the binary from its own parser (so they
  # know every flag). Running it needs a build machine that can execute it (not when cross
  # compiling). testlab/tests/nix_flake checks these commands against the real binary.
  swarmDocs = lib.optionalString (pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform) ''
    swarm=${workspace}/bin/hls-swarm
    installShellCompletion --cmd hls-swarm \
      --bash <($swarm completions bash) \
      --zsh <($swarm completions zsh) \
      --fish <($swarm completions fish)
    mkdir -p man
    $swarm manpage --out man
    installManPage man/*.1
  '';

  hls-swarm = wrap "hls-swarm" "N simulated HLS viewers (native players or FFmpeg processes) against HLS streams" swarmTools { } swarmDocs;
  hls-origin = wrap "hls-origin" "Test HLS origin: live ffmpeg encoder, nginx and Prometheus exporters" originTools { } "";
  # hls-lab: crates network/ and microvm/ (bridge, TAP, netns; VM image and launcher).
  hls-lab = wrap "hls-lab" "Bridge, TAP and origin MicroVM control for the hls-swarm lab" labTools labEnv "";

  rustTools = with pkgs; [ cargo rustc clippy rustfmt rust-analyzer ];
in
{
  inherit fileset src workspace ffmpeg exporters hls-swarm hls-origin hls-lab rustTools originTools;

  devShell = pkgs.mkShell {
    packages = rustTools ++ lib.unique labTools ++ (with pkgs; [ nixpkgs-fmt curl jq iproute2 ]);
  };
}
