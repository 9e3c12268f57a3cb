# Offline stand-in for microvm.nix, for the flake test only: the modules the lab's flake
# imports, empty. See ../nixpkgs/flake.nix.
{
  outputs = { self }: {
    nixosModules = {
      microvm = { ... }: { };
      host = { ... }: { };
    };
  };
}
