# Offline stand-in for nixpkgs, for the flake test only (testlab/tests/nix_flake.rs):
#   nix flake show --override-input nixpkgs path:nix/offline-stub/nixpkgs ...
# It provides just enough of `lib` and `legacyPackages` for the lab's flake to evaluate its
# output names and the derivations' names and types. Every "package" is a placeholder whose
# builder fails: nothing here can be built, and nothing pretends to be nixpkgs.
#
# A missing attribute makes the test fail with "attribute '...' missing": add it here when the
# flake starts using a new part of nixpkgs.
{
  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];

      lib = {
        genAttrs = names: f: builtins.listToAttrs (map (n: { name = n; value = f n; }) names);
        inherit (builtins) listToAttrs mapAttrs;
        unique = builtins.foldl' (acc: x: if builtins.elem x acc then acc else acc ++ [ x ]) [ ];
        optional = cond: x: if cond then [ x ] else [ ];
        optionals = cond: xs: if cond then xs else [ ];
        optionalAttrs = cond: as: if cond then as else { };
        hasInfix = infix: s: builtins.match ".*${infix}.*" s != null;
        escapeShellArg = s: "'${s}'";
        escapeShellArgs = xs: builtins.concatStringsSep " " (map lib.escapeShellArg xs);
        makeBinPath = ps: builtins.concatStringsSep ":" (map (p: "${p}/bin") ps);
        importTOML = path: builtins.fromTOML (builtins.readFile path);
        getExe = drv: "${drv}/bin/${drv.meta.mainProgram or drv.name}";
        literalExpression = text: { _type = "literalExpression"; inherit text; };
        fileset = {
          toSource = { root, fileset }: root;
          unions = xs: xs;
          maybeMissing = p: p;
        };
        licenses = { mit = "mit"; asl20 = "asl20"; };
        platforms.linux = systems;

        # The modules are not evaluated; they only have to be modules, one of them setting
        # nixpkgs.hostPlatform (the runner's system).
        nixosSystem = { modules, ... }:
          let
            platforms = builtins.concatMap
              (m: if builtins.isAttrs m && m ? nixpkgs.hostPlatform then [ m.nixpkgs.hostPlatform ] else [ ])
              modules;
          in
          assert builtins.all (m: builtins.isFunction m || builtins.isAttrs m || builtins.isPath m) modules;
          assert builtins.length platforms == 1;
          { config.microvm.declaredRunner = placeholder (builtins.head platforms) "microvm-run"; };
      };

      # A derivation that instantiates but never builds.
      placeholder = system: name:
        let
          drv = derivation {
            inherit name system;
            builder = "/bin/sh";
            args = [ "-c" "echo 'offline stub of nixpkgs: nothing can be built' >&2; exit 1" ];
          };
        in
        drv // {
          meta = { };
          overrideAttrs = f: placeholder system "${name}-overridden";
          override = f: placeholder system name;
        };

      pkgsFor = system:
        let
          drv = placeholder system;
          plain = lib.genAttrs [
            "cargo"
            "clippy"
            "curl"
            "ffmpeg-headless"
            "iproute2"
            "jq"
            "makeBinaryWrapper"
            "nginx"
            "nixpkgs-fmt"
            "prometheus-nginx-exporter"
            "prometheus-node-exporter"
            "qemu_kvm"
            "rust-analyzer"
            "rustc"
            "rustfmt"
          ]
            drv;
        in
        plain // {
          inherit lib;
          stdenv.hostPlatform.system = system;
          runCommand = name: env: script: drv name;
          writeShellApplication = { name, ... }: drv name;
          mkShell = args: drv "nix-shell";
          rustPlatform.buildRustPackage = args: drv "${args.pname}-${args.version}";
          dockerTools = {
            buildLayeredImage = { name, tag ? "latest", ... }: drv "docker-image-${name}.tar";
            fakeNss = drv "fake-nss";
            caCertificates = drv "ca-certificates";
          };
          testers.runNixOSTest = { name, ... }: drv "vm-test-run-${name}";
        };
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs systems pkgsFor;
    };
}
