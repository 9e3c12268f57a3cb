# `lib.nixosSystem` of the offline nixpkgs stand-in (see ./flake.nix): the real
# `lib.evalModules` over the given modules plus declarations of the NixOS options those modules
# set or read. Where NixOS's type is simple (bool, str) it is used; otherwise the option is
# free-form (any nested value). Anything else is an unknown option and fails.
#
# The result is the evaluation with `lab.checked`: true once every option defined outside these
# stand-ins has been forced to its final value (so type errors surface) and every assertion
# holds. `config.microvm.declaredRunner` is a placeholder that forces `lab.checked` first, so
# building the flake's VM packages in evaluation runs these checks.
{ lib, pkgsFor }:
let
  inherit (lib) mkOption types;

  free = mkOption {
    type = types.submodule { freeformType = types.lazyAttrsOf types.anything; };
    default = { };
  };
  typed = type: default: mkOption { inherit type default; };

  nixosOptions = { config, ... }: {
    _file = "offline-stub:nixos";
    options = {
      assertions = typed (types.listOf types.unspecified) [ ];
      warnings = typed (types.listOf types.str) [ ];
      nixpkgs.hostPlatform = mkOption { type = types.either types.str (types.attrsOf types.anything); };
      system = {
        stateVersion = mkOption { type = types.str; };
        build = mkOption {
          type = types.lazyAttrsOf types.anything;
          default = lib.genAttrs [ "initialRamdisk" "toplevel" ] (name: (pkgsFor config.nixpkgs.hostPlatform).runCommand name { } "");
        };
        boot.loader.initrdFile = typed types.str "initrd";
      };
      boot.kernelPackages = typed types.raw { kernel.version = "6.12.0"; };
      networking = {
        hostName = typed types.str "nixos";
        useNetworkd = typed types.bool false;
        useDHCP = typed types.bool true;
        firewall = mkOption {
          type = types.submodule {
            freeformType = types.lazyAttrsOf types.anything;
            options.allowedTCPPorts = typed (types.listOf types.port) [ ];
          };
          default = { };
        };
        nat = free;
      };
      systemd = {
        services = typed (types.lazyAttrsOf types.anything) { };
        network = free;
      };
      users = {
        mutableUsers = typed types.bool true;
        allowNoPasswordLogin = typed types.bool false;
        users = typed (types.lazyAttrsOf types.anything) { };
      };
      services = { getty = free; openssh = free; };
      documentation.enable = typed types.bool true;
      nix.optimise.automatic = typed types.bool false;
      environment.systemPackages = typed (types.listOf types.package) [ ];
      # The test framework's qemu-vm module (nodes of runNixOSTest).
      virtualisation = free;
    };
    config._module.args.pkgs = pkgsFor (config.nixpkgs.hostPlatform.system or config.nixpkgs.hostPlatform);
  };

  # Forces a value through, stopping at derivations (their drvPath is enough).
  force = v:
    if lib.isDerivation v then builtins.seq v.drvPath true
    else if builtins.isAttrs v then builtins.all force (builtins.attrValues v)
    else if builtins.isList v then builtins.all force v
    else builtins.seq v true;

  # Forces the parts of an option's value that its definitions wrote, and nothing else: a
  # submodule's other options may have no value at all, and NixOS never reads those.
  forceWritten = written: v:
    let plainAttrs = x: builtins.isAttrs x && !(lib.isDerivation x) && !(x ? _type); in
    if plainAttrs written && plainAttrs v then
      builtins.all (n: !(v ? ${n}) || forceWritten written.${n} v.${n}) (builtins.attrNames written)
    else if builtins.isList written && builtins.isList v && builtins.length written == builtins.length v then
      builtins.all (x: x) (lib.zipListsWith forceWritten written v)
    else force v;

  forceOption = opt:
    let
      defs = map (d: d.value) opt.definitionsWithLocations;
      lists = builtins.all builtins.isList defs;
    in
    if lists then forceWritten (builtins.concatLists defs) opt.value
    else builtins.all (d: forceWritten d opt.value) defs;

  nixosSystem = { modules, specialArgs ? { } }:
    let
      eval = lib.evalModules {
        modules = [ nixosOptions ] ++ modules;
        inherit specialArgs;
      };
      options = lib.collect lib.isOption eval.options;
      # The stand-ins' own files: modules whose `_file` starts with `offline-stub:` and
      # microvm.nix's (whichever file declares a `microvm.*` option). An option is the lab's when one of its definitions (or its
      # default, counted as defined in the declaring file) comes from any other file.
      stubFiles = lib.concatMap (o: map toString o.declarations)
        (lib.collect lib.isOption (eval.options.microvm or { }));
      stub = f: lib.hasPrefix "offline-stub:" f || builtins.elem f stubFiles;
      defined = builtins.filter
        (opt: builtins.head opt.loc != "_module" && opt.isDefined
          && builtins.any (f: !stub (toString f)) opt.files)
        options;
      failed = map (a: a.message) (builtins.filter (a: !a.assertion) eval.config.assertions);
      checked =
        builtins.all forceOption defined
        && (failed == [ ] || throw "failed assertions:\n${lib.concatStringsSep "\n" failed}");
    in
    eval // {
      lab = { inherit checked; };
      config = eval.config // lib.optionalAttrs (eval.config ? microvm) {
        microvm = eval.config.microvm // {
          declaredRunner = builtins.seq checked ((pkgsFor (eval.config.nixpkgs.hostPlatform)).runCommand
            "microvm-run"
            { }
            "");
        };
      };
    };
in
{
  inherit nixosSystem;
}
