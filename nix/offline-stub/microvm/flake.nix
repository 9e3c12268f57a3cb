# Offline stand-in for microvm.nix, for the flake test only (see ../nixpkgs/flake.nix): the
# test copies the pinned revision's source (from the microvm.nix bundle in
# ../shared/nix-inputs) to ./src. The guest module is its real option declarations and
# assertions; the rest of it (the runners, the guest's systemd units) needs nixpkgs.
{
  outputs = { self }:
    let
      src =
        if builtins.pathExists ./src/nixos-modules/microvm/options.nix then ./src
        else throw "nix/offline-stub/microvm: copy microvm.nix's source to ./src first (testlab/tests/nix_flake does)";
    in
    {
      nixosModules = {
        microvm.imports = [
          (src + "/nixos-modules/microvm/options.nix")
          (src + "/nixos-modules/microvm/asserts.nix")
          # Stands in for lib/runner.nix, which builds the runners from nixpkgs.
          ({ config, lib, pkgs, ... }: {
            _file = "offline-stub:microvm-runner";
            microvm.runner = lib.genAttrs (import (src + "/lib") { inherit lib; }).hypervisors
              (name: pkgs.runCommand "microvm-${name}-${config.networking.hostName}" { } "");
          })
        ];
        host = { ... }: { };
      };
    };
}
