{
  description = "hls-swarm lab: an HLS load generator, a test origin, its MicroVM and network";

  # One tested pair, locked together in flake.lock: microvm.nix 71beea0 (2026-08-09) and the
  # nixpkgs its own flake.lock pins, nixos-unstable 6438090 (2026-08-02).
  #
  # The toolchain must be at least the highest `rust-version` in Cargo.lock (the workspace's own
  # 1.91; of the dependencies, uuid 1.29's 1.89), or cargo refuses to build, as it did with
  # nixos-25.05's rustc 1.86. What we know of this nixpkgs' rustc is recorded in nix/lab.nix
  # (`nixpkgsRustcAtLeast`) and checked against Cargo.lock by testlab/tests/nix_flake. The fact
  # and its source: nixpkgs made rust 1.91 (pkgs/development/compilers/rust/1_91.nix) its
  # default rustc for NixOS 25.11 in November 2025 and never moves the default back, so a
  # nixos-unstable of August 2026 has at least 1.91 (by its date 1.96 or 1.97; reading it needs
  # nixpkgs itself). With network access: `nix eval --inputs-from . --raw nixpkgs#rustc.version`.
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    microvm = {
      url = "github:microvm-nix/microvm.nix";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs = { self, nixpkgs, microvm }:
    let
      inherit (nixpkgs) lib;
      lab = import ./nix/lab.nix;

      # microvm.nix supports these two; everything else in the flake would build elsewhere too,
      # but one list keeps `nix flake show` honest about what is tested.
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});

      # The workspace is built once per system; every package, app and check below reuses it.
      labFor = pkgs: import ./nix/packages.nix { inherit pkgs; };

      originVm = system: tap: (lib.nixosSystem {
        modules = [
          { nixpkgs.hostPlatform = system; }
          microvm.nixosModules.microvm
          self.nixosModules.origin
          (import ./nix/microvm/origin-vm.nix { inherit lab tap; })
        ];
      }).config.microvm.declaredRunner;
    in
    {
      packages = forAllSystems (system: pkgs:
        let
          built = labFor pkgs;
          images = import ./nix/containers.nix { inherit pkgs lab; inherit (built) hls-swarm hls-origin; };
        in
        {
          default = built.hls-swarm;
          inherit (built) hls-swarm hls-origin hls-lab;
          inherit (images) swarm-client-container test-origin-container;
          test-origin-vm = originVm system false;
          test-origin-vm-tap = originVm system true;
        });

      apps = forAllSystems (system: pkgs:
        import ./nix/apps.nix {
          inherit pkgs lib lab;
          packages = self.packages.${system};
        });

      checks = forAllSystems (system: pkgs:
        import ./nix/checks.nix {
          inherit pkgs lib lab self;
          built = labFor pkgs;
        });

      devShells = forAllSystems (system: pkgs: {
        default = (labFor pkgs).devShell;
      });

      formatter = forAllSystems (system: pkgs: pkgs.nixpkgs-fmt);

      nixosModules = {
        origin = import ./nix/modules/origin.nix { inherit self lab; };
        network = import ./nix/modules/network.nix { inherit lab; };
        default = self.nixosModules.origin;
      };

      overlays.default = final: prev: {
        inherit (labFor final) hls-swarm hls-origin hls-lab;
      };
    };
}
