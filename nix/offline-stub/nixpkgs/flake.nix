# Offline stand-in for nixpkgs, for the flake test only (testlab/tests/nix_flake):
#   nix eval --override-input nixpkgs path:nix/offline-stub/nixpkgs ...
#
# `lib` is the real one: the test copies nixpkgs' `lib/` (from the nixpkgs.lib bundle in
# ../shared/nix-inputs) next to this file before evaluating. What cannot be had offline is
# stood in for, strictly:
# - `legacyPackages` (./pkgs.nix): every package is a placeholder whose builder fails, and the
#   functions the lab calls (`buildRustPackage`, `buildLayeredImage`, `runNixOSTest`, ...) take
#   exactly the arguments the real ones do, so a misspelled argument fails evaluation here as
#   it would fail a real build;
# - `lib.nixosSystem` (./nixos.nix): the real `lib.evalModules` over the given modules, with
#   the NixOS options they set or read declared (free-form where NixOS's type is not simple),
#   and the result's own checks forced: unknown options, type errors and failed assertions
#   fail evaluation.
{
  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      realLib =
        if builtins.pathExists ./lib/default.nix then import ./old-nix.nix ./lib
        else throw "nix/offline-stub/nixpkgs: copy nixpkgs' lib/ here first (testlab/tests/nix_flake does)";
      nixos = import ./nixos.nix { lib = realLib; inherit pkgsFor; };
      lib = realLib // { inherit (nixos) nixosSystem; };
      pkgsFor = system: import ./pkgs.nix { inherit lib system nixos; };
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs systems pkgsFor;
    };
}
