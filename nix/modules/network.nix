# NixOS module: the host side of the origin MicroVM's TAP network, declared for
# systemd-networkd (the non-NixOS equivalent is `hls-lab network setup`). No NAT and no IP
# forwarding unless asked for: the lab's traffic stays between the host and the VM.
{ lab }:
{ config, lib, ... }:
let
  cfg = config.networking.hls-lab;
  inherit (lib) mkEnableOption mkIf mkOption types;
in
{
  options.networking.hls-lab = {
    enable = mkEnableOption "the hls-swarm lab bridge and TAP (systemd-networkd)";

    bridge = mkOption { type = types.str; default = lab.network.bridge; description = "Bridge name."; };
    tap = mkOption { type = types.str; default = lab.network.tap; description = "TAP name (the MicroVM's interface id)."; };
    hostAddress = mkOption { type = types.str; default = lab.network.hostAddress; description = "The host's address on the bridge."; };
    prefixLength = mkOption { type = types.ints.between 8 30; default = lab.network.prefixLength; description = "Bridge prefix length."; };

    tapUser = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "alice";
      description = "User allowed to attach to the TAP: whoever runs `nix run .#microvm-start-tap`.";
    };

    queues = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Create a multi-queue TAP. microvm.nix opens the TAP with one queue per vCPU when the VM
        has more than one (the origin VM has 2); the flag must match or qemu cannot attach.
      '';
    };

    nat = {
      enable = mkEnableOption "masquerading the bridge's subnet, so the VM reaches outside networks";
      externalInterface = mkOption {
        type = types.nullOr types.str;
        default = null;
        description = "Uplink interface for NAT.";
      };
    };
  };

  config = mkIf cfg.enable {
    systemd.network = {
      enable = true;
      netdevs."40-${cfg.bridge}".netdevConfig = { Kind = "bridge"; Name = cfg.bridge; };
      netdevs."41-${cfg.tap}" = {
        netdevConfig = { Kind = "tap"; Name = cfg.tap; };
        tapConfig = { MultiQueue = cfg.queues; } // lib.optionalAttrs (cfg.tapUser != null) { User = cfg.tapUser; };
      };
      networks."40-${cfg.bridge}" = {
        matchConfig.Name = cfg.bridge;
        address = [ "${cfg.hostAddress}/${toString cfg.prefixLength}" ];
        networkConfig.ConfigureWithoutCarrier = true;
        linkConfig.RequiredForOnline = "no";
      };
      networks."41-${cfg.tap}" = {
        matchConfig.Name = cfg.tap;
        networkConfig.Bridge = cfg.bridge;
        linkConfig.RequiredForOnline = "no";
      };
    };

    networking.nat = mkIf cfg.nat.enable {
      enable = true;
      internalInterfaces = [ cfg.bridge ];
      inherit (cfg.nat) externalInterface;
    };
  };
}
