# The origin MicroVM (microvm.nix, qemu): NixOS running services.hls-origin. Same MAC, address
# and ports as the Rust `microvm` crate (nix/lab.nix). `tap = false`: qemu user networking with
# the ports forwarded on the host's 127.0.0.1; `tap = true`: on the lab's TAP, static address.
#
# Hardened against the reference's defaults: root is locked (no password at all, not an empty
# one), no autologin, no SSH, and the only console is qemu's stdio in the terminal that runs
# `microvm-run` (never a TCP port).
{ lab, tap }:
{ lib, ... }:
let
  inherit (lab) ports network;
  forwarded = [ ports.hls ports.nodeExporter ports.nginxExporter ];
in
{
  system.stateVersion = "25.05";
  networking.hostName = "hls-origin-vm";

  microvm = {
    hypervisor = "qemu";
    vcpu = 2;
    # ffmpeg's closure comes from the host's /nix/store over 9p, so 1 GiB leaves room for the
    # encoder, nginx and the segment tmpfs.
    mem = 1024;
    shares = [{
      proto = "9p";
      tag = "ro-store";
      source = "/nix/store";
      mountPoint = "/nix/.ro-store";
    }];
    interfaces = [
      (if tap then {
        type = "tap";
        id = network.tap;
        mac = network.vmMac;
      } else {
        type = "user";
        id = "usernet";
        mac = network.vmMac;
      })
    ];
    forwardPorts = lib.optionals (!tap) (map
      (port: {
        from = "host";
        host = { address = "127.0.0.1"; inherit port; };
        guest.port = port;
      })
      forwarded);
  };

  services.hls-origin = {
    enable = true;
    openFirewall = true;
  };

  networking.useNetworkd = true;
  networking.useDHCP = false;
  systemd.network.networks."10-lab" = {
    matchConfig.MACAddress = network.vmMac;
    address = lib.optional tap "${network.vmAddress}/${toString network.prefixLength}";
    gateway = lib.optional tap network.hostAddress;
    networkConfig.DHCP = if tap then "no" else "ipv4";
  };

  # An appliance: nobody logs in. NixOS refuses a system without any login unless told so.
  users.mutableUsers = false;
  users.allowNoPasswordLogin = true;
  users.users.root.hashedPassword = "!";
  services.getty.autologinUser = lib.mkForce null;
  services.openssh.enable = false;
  documentation.enable = false;
}
