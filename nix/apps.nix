# `nix run .#<name>`. Each app is one program with fixed leading arguments (a binary wrapper),
# or microvm.nix's runner. The origin profiles come from nix/lab.nix, the list
# `hls-origin profiles` prints (testlab/tests/nix_flake checks that they agree).
{ pkgs, lib, lab, packages }:
let
  inherit (packages) hls-swarm hls-origin hls-lab test-origin-vm test-origin-vm-tap;

  app = description: program: {
    type = "app";
    inherit program;
    meta = { inherit description; };
  };

  # One `--add-flags` per word: the shell and the binary wrapper treat spaces differently.
  addFlags = words: lib.concatMapStringsSep " " (w: "--add-flags ${lib.escapeShellArg w}") words;

  # `hls-origin serve --profile <name>`, listening where the README says (127.0.0.1:17080).
  originProfile = profile:
    pkgs.runCommand "test-origin-${profile}" { nativeBuildInputs = [ pkgs.makeBinaryWrapper ]; } ''
      makeWrapper ${hls-origin}/bin/hls-origin $out/bin/test-origin \
        ${addFlags [ "serve" "--profile" profile ]}
    '';

  originApps = lib.listToAttrs (map
    (profile: {
      name = if profile == "default" then "test-origin" else "test-origin-${profile}";
      value = app "test HLS origin, profile ${profile}" "${originProfile profile}/bin/test-origin";
    })
    lab.profiles);

  # hls-lab (crates network/ and microvm/) with fixed arguments.
  labCommand = name: args: description:
    app description "${pkgs.runCommand "hls-lab-${name}" { nativeBuildInputs = [ pkgs.makeBinaryWrapper ]; } ''
      makeWrapper ${hls-lab}/bin/hls-lab $out/bin/hls-lab-${name} \
        ${addFlags args}
    ''}/bin/hls-lab-${name}";
in
originApps // {
  default = app "hls-swarm: simulated HLS viewers" "${hls-swarm}/bin/hls-swarm";
  # nix run .#run -- --clients 10 http://127.0.0.1:17080/stream.m3u8
  run = app "hls-swarm: simulated HLS viewers" "${hls-swarm}/bin/hls-swarm";
  hls-origin = app "hls-origin with its own sub-commands (serve, profiles, config)" "${hls-origin}/bin/hls-origin";
  hls-lab = app "hls-lab: network and MicroVM control" "${hls-lab}/bin/hls-lab";

  # The origin MicroVM (KVM host): user-mode networking with 17080, 9100 and 9113 forwarded on
  # 127.0.0.1, or on the TAP of `nix run .#network-setup` at ${lab.network.vmAddress}.
  microvm-start = app "origin MicroVM, ports forwarded on 127.0.0.1" "${test-origin-vm}/bin/microvm-run";
  microvm-start-tap = app "origin MicroVM on ${lab.network.tap} (${lab.network.vmAddress})" "${test-origin-vm-tap}/bin/microvm-run";

  network-setup = labCommand "network-setup" [ "network" "setup" ]
    "create ${lab.network.bridge} (${lab.network.hostAddress}/${toString lab.network.prefixLength}) and ${lab.network.tap} (root)";
  network-teardown = labCommand "network-teardown" [ "network" "teardown" ]
    "remove ${lab.network.tap} and ${lab.network.bridge} (root)";
}
