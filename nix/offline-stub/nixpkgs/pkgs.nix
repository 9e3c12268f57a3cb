# `legacyPackages.<system>` of the offline nixpkgs stand-in (see ./flake.nix). Packages are
# placeholders that instantiate but never build; the builders the lab calls check their
# arguments against the real functions' argument lists (nixpkgs at the pinned revision) and
# return placeholders too. A missing attribute fails with "attribute '...' missing": add it
# here when the flake starts using a new part of nixpkgs.
{ lib, system, nixos }:
let
  # A derivation that instantiates but never builds; `attrs` become its passthru.
  placeholder = name: attrs:
    let
      drv = derivation {
        inherit name system;
        builder = "/bin/sh";
        args = [ "-c" "echo 'offline stub of nixpkgs: nothing can be built' >&2; exit 1" ];
      };
    in
    drv // { meta = { }; } // attrs;

  # `args` if every name is one the real function takes and every required one is given.
  strict = what: accepted: required: args:
    let
      unknown = builtins.filter (n: !(builtins.elem n accepted)) (builtins.attrNames args);
      missing = builtins.filter (n: !(args ? ${n})) required;
    in
    if unknown != [ ] then
      throw "${what}: unknown argument(s) ${toString unknown}; it takes: ${toString accepted}"
    else if missing != [ ] then
      throw "${what}: missing argument(s) ${toString missing}"
    else args;

  # What stdenv.mkDerivation does something with (its own attributes and the standard phases'
  # variables), plus the cargo hooks' variables buildRustPackage installs. mkDerivation passes
  # any other attribute to the builder as an environment variable; the lab never relies on
  # that, so an unknown name here is a typo.
  mkDerivationArgs = [
    "name"
    "pname"
    "version"
    "src"
    "srcs"
    "sourceRoot"
    "patches"
    "outputs"
    "nativeBuildInputs"
    "buildInputs"
    "propagatedBuildInputs"
    "nativeCheckInputs"
    "checkInputs"
    "nativeInstallCheckInputs"
    "strictDeps"
    "env"
    "meta"
    "passthru"
    "__structuredAttrs"
    "preferLocalBuild"
    "allowSubstitutes"
    "enableParallelBuilding"
    "separateDebugInfo"
    "doCheck"
    "doInstallCheck"
    "dontBuild"
    "dontInstall"
    "dontFixup"
    "dontUnpack"
    "preUnpack"
    "unpackPhase"
    "postUnpack"
    "prePatch"
    "postPatch"
    "preConfigure"
    "configurePhase"
    "postConfigure"
    "preBuild"
    "buildPhase"
    "postBuild"
    "preCheck"
    "checkPhase"
    "postCheck"
    "checkFlags"
    "checkFlagsArray"
    "preInstall"
    "installPhase"
    "postInstall"
    "preFixup"
    "postFixup"
    "installCheckPhase"
    "buildCommand"
  ];
  cargoHookArgs = [
    "cargoBuildFlags"
    "cargoTestFlags"
    "cargoBuildType"
    "cargoCheckType"
    "cargoBuildFeatures"
    "cargoCheckFeatures"
    "cargoBuildNoDefaultFeatures"
    "cargoCheckNoDefaultFeatures"
    "dontCargoBuild"
    "dontCargoCheck"
    "dontCargoInstall"
    "cargoDeps"
  ];
  # pkgs/build-support/rust/build-rust-package/default.nix's formals.
  buildRustPackageArgs = [
    "cargoDepsName"
    "cargoPatches"
    "logLevel"
    "cargoUpdateHook"
    "cargoDepsHook"
    "buildType"
    "cargoLock"
    "cargoHash"
    "cargoVendorDir"
    "useFetchCargoVendor"
    "checkType"
    "buildNoDefaultFeatures"
    "checkNoDefaultFeatures"
    "buildFeatures"
    "checkFeatures"
    "useNextest"
    "auditable"
    "depsExtraArgs"
    "buildAndTestSubdir"
  ];

  # A derivation made from mkDerivation-style `args`, whose overrideAttrs checks the result.
  fromArgs = what: accepted: args:
    let checked = strict what accepted [ ] args; in
    placeholder (checked.name or "${checked.pname}-${checked.version}") ((checked.passthru or { }) // {
      meta = checked.meta or { };
      version = checked.version or null;
      # As on a real derivation: the attributes it was made from.
      drvAttrs = checked;
      overrideAttrs = f:
        let prev = checked // { nativeBuildInputs = checked.nativeBuildInputs or [ ]; }; in
        fromArgs "${what}.overrideAttrs" accepted (prev // f prev);
    });

  plain = lib.genAttrs [
    "busybox"
    "cargo"
    "chromium"
    "clippy"
    "curl"
    "ffmpeg-headless"
    "iproute2"
    "installShellFiles"
    "jq"
    "makeBinaryWrapper"
    "nftables"
    "nginx"
    "nixpkgs-fmt"
    "podman"
    "prometheus"
    "prometheus-nginx-exporter"
    "prometheus-node-exporter"
    "python3"
    "qemu_kvm"
    "rust-analyzer"
    "rustc"
    "rustfmt"
    "stress-ng"
    "tmux"
    "zsh"
    "fish"
    # The hypervisors microvm.nix's options name in their defaults.
    "alioth"
    "cloud-hypervisor"
    "cloud-hypervisor-graphics"
    "crosvm"
    "firecracker"
    "kvmtool"
    "qemu"
    "stratovirt"
    "vfkit"
    "virtiofsd"
  ]
    (name: placeholder name { });

  kernel = placeholder "linux-6.12.0" { version = "6.12.0"; modDirVersion = "6.12.0"; };
  pkgs = plain // {
    inherit lib system;
    buildPackages = pkgs;
    # What `types.pkgs` (microvm.vmHostPackages) recognises a package set by.
    _type = "pkgs";
    stdenv = rec {
      hostPlatform = { inherit system; isLinux = true; isDarwin = false; };
      buildPlatform = hostPlatform // { canExecute = platform: platform.system == system; };
    };

    # pkgs/build-support/fetchurl/default.nix: a fixed-output download (its arguments).
    fetchurl = args: placeholder (baseNameOf args.url) (strict "fetchurl" [
      "url"
      "urls"
      "hash"
      "sha1"
      "sha256"
      "sha512"
      "outputHash"
      "outputHashAlgo"
      "recursiveHash"
      "name"
      "pname"
      "version"
      "postFetch"
      "downloadToTemp"
      "executable"
      "showURLs"
      "curlOpts"
      "curlOptsList"
      "netrcPhase"
      "netrcImpureEnvVars"
      "nativeBuildInputs"
      "preferLocalBuild"
      "meta"
      "passthru"
    ] [ ]
      args);

    # The script becomes `buildCommand`, as in the real runCommand.
    runCommand = name: env: script:
      assert builtins.isString script;
      fromArgs "runCommand ${name}" mkDerivationArgs (env // { inherit name; buildCommand = script; });

    writeShellApplication = args: placeholder args.name (strict "writeShellApplication" [
      "name"
      "text"
      "runtimeInputs"
      "runtimeEnv"
      "meta"
      "passthru"
      "checkPhase"
      "excludeShellChecks"
      "extraShellCheckFlags"
      "bashOptions"
      "inheritPath"
      "derivationArgs"
    ] [ "name" "text" ]
      args);

    mkShell = args: fromArgs "mkShell"
      ([ "packages" "inputsFrom" "shellHook" "propagatedNativeBuildInputs" ] ++ mkDerivationArgs)
      ({ name = "nix-shell"; } // args);

    rustPlatform.buildRustPackage = args:
      let checked = strict "buildRustPackage" (buildRustPackageArgs ++ cargoHookArgs ++ mkDerivationArgs) [ "src" ] args; in
      assert checked ? cargoLock || checked ? cargoHash || checked ? cargoVendorDir
        || throw "buildRustPackage: cargoHash, cargoVendorDir, or cargoLock must be set";
      fromArgs "buildRustPackage" (buildRustPackageArgs ++ cargoHookArgs ++ mkDerivationArgs)
        (checked // { nativeBuildInputs = (checked.nativeBuildInputs or [ ]) ++ [ plain.cargo plain.rustc ]; });

    linuxPackages = { inherit kernel; };

    dockerTools = {
      # pkgs/build-support/docker/default.nix: buildLayeredImage's arguments (streamLayeredImage's
      # plus compressor).
      buildLayeredImage = args:
        let
          a = strict "dockerTools.buildLayeredImage" [
            "name"
            "tag"
            "fromImage"
            "contents"
            "config"
            "architecture"
            "created"
            "mtime"
            "uid"
            "gid"
            "uname"
            "gname"
            "maxLayers"
            "extraCommands"
            "fakeRootCommands"
            "enableFakechroot"
            "includeStorePaths"
            "includeNixDB"
            "passthru"
            "meta"
            "compressor"
            "layeringPipeline"
            "debug"
          ] [ "name" ]
            args;
        in
        assert builtins.elem (a.compressor or "gz") [ "none" "gz" "zstd" ]
          || throw "dockerTools.buildLayeredImage: compressor ${a.compressor} is not none, gz or zstd";
        placeholder "${a.name}.tar" { imageName = a.name; imageTag = a.tag or "latest"; };
      fakeNss = placeholder "fake-nss" {
        override = args: placeholder "fake-nss" (builtins.seq
          (strict "dockerTools.fakeNss.override" [ "extraPasswdLines" "extraGroupLines" ] [ ] args)
          { });
      };
      caCertificates = placeholder "ca-certificates" { };
    };

    # nixos/lib/testing: the test framework's options. Each node is evaluated as a NixOS system
    # (./nixos.nix), so a node's unknown option or failed assertion fails here.
    testers.runNixOSTest = args:
      let
        a = strict "testers.runNixOSTest" [
          "name"
          "nodes"
          "testScript"
          "defaults"
          "extraPythonPackages"
          "skipLint"
          "skipTypeCheck"
          "globalTimeout"
          "interactive"
          "node"
          "meta"
          "passthru"
          "enableOCR"
          "hostPkgs"
          "containers"
          "sshBackdoor"
          "extraDriverArgs"
          "qemu"
        ] [ "name" "nodes" "testScript" ]
          args;
        nodes = builtins.mapAttrs
          (_: node: nixos.nixosSystem {
            modules = [{ nixpkgs.hostPlatform = system; } node] ++ lib.optional (a ? defaults) a.defaults;
          })
          a.nodes;
        checked = builtins.all (n: n.lab.checked) (builtins.attrValues nodes);
      in
      assert builtins.isString a.testScript;
      builtins.seq checked (placeholder "vm-test-run-${a.name}" { inherit nodes; });
  }
  ;
in
pkgs
