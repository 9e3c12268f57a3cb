# NixOS module: `hls-origin serve` as a hardened systemd service. hls-origin supervises its own
# ffmpeg, nginx and exporters; systemd supervises hls-origin. Segments live on a size-capped
# tmpfs that only this service can see.
{ self, lab }:
{ config, lib, pkgs, ... }:
let
  cfg = config.services.hls-origin;
  inherit (lib) mkEnableOption mkIf mkOption types;

  hostPort = address: port:
    if lib.hasInfix ":" address then "[${address}]:${toString port}" else "${address}:${toString port}";

  exporterArgs = name: e:
    if e.enable then [ "--${name}" (hostPort cfg.address e.port) ] else [ "--no-${name}" ];

  segments = "/var/lib/hls-origin";
in
{
  options.services.hls-origin = {
    enable = mkEnableOption "the hls-swarm lab's test HLS origin (ffmpeg, nginx, Prometheus exporters)";

    package = mkOption {
      type = types.package;
      default = self.packages.${pkgs.stdenv.hostPlatform.system}.hls-origin;
      defaultText = lib.literalExpression "hls-swarm-lab.packages.\${system}.hls-origin";
      description = "The wrapped hls-origin (ffmpeg, nginx and the exporters on its PATH).";
    };

    profile = mkOption {
      type = types.enum lab.profiles;
      default = "default";
      description = "Stream profile; `hls-origin profiles` lists them.";
    };

    address = mkOption {
      type = types.str;
      default = "0.0.0.0";
      description = "Address the HLS server and the exporters listen on.";
    };

    port = mkOption {
      type = types.port;
      default = lab.ports.hls;
      description = "HLS port.";
    };

    nodeExporter = {
      enable = mkOption { type = types.bool; default = true; description = "Run prometheus-node-exporter."; };
      port = mkOption { type = types.port; default = lab.ports.nodeExporter; description = "node exporter port."; };
    };

    nginxExporter = {
      enable = mkOption { type = types.bool; default = true; description = "Run prometheus-nginx-exporter."; };
      port = mkOption { type = types.port; default = lab.ports.nginxExporter; description = "nginx exporter port."; };
    };

    segmentsSize = mkOption {
      type = types.str;
      default = "256M";
      description = "Size of the tmpfs holding the live window (4k-abr needs about 120 MB).";
    };

    extraArgs = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "--source" "replay" "--width" "640" "--height" "360" ];
      description = "More `hls-origin serve` arguments.";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = "Open the HLS port and the enabled exporters' ports.";
    };
  };

  config = mkIf cfg.enable {
    systemd.services.hls-origin = {
      description = "hls-swarm lab test HLS origin";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];

      serviceConfig = {
        ExecStart = lib.escapeShellArgs ([
          (lib.getExe cfg.package)
          "serve"
          "--profile"
          cfg.profile
          "--listen"
          (hostPort cfg.address cfg.port)
          "--work-dir"
          segments
          "--cache-dir"
          "/var/cache/hls-origin"
        ]
        ++ exporterArgs "node-exporter" cfg.nodeExporter
        ++ exporterArgs "nginx-exporter" cfg.nginxExporter
        ++ cfg.extraArgs);

        # hls-origin stops its children (SIGTERM to each group, grace, SIGKILL); systemd only
        # signals the main process first and kills leftovers after the timeout.
        KillMode = "mixed";
        TimeoutStopSec = 20;
        Restart = "on-failure";
        RestartSec = 2;

        DynamicUser = true;
        CacheDirectory = "hls-origin";
        # A private tmpfs: mode 1777 lets the dynamic user write to it, and no other unit sees
        # the mount at all.
        TemporaryFileSystem = "${segments}:size=${cfg.segmentsSize},mode=1777,nosuid,nodev";
        LimitNOFILE = 65536;
        UMask = "0027";

        CapabilityBoundingSet = "";
        AmbientCapabilities = "";
        NoNewPrivileges = true;
        PrivateDevices = true;
        PrivateTmp = true;
        ProtectSystem = "strict";
        ProtectHome = true;
        ProtectClock = true;
        ProtectHostname = true;
        ProtectKernelLogs = true;
        ProtectKernelModules = true;
        ProtectKernelTunables = true;
        ProtectControlGroups = true;
        RestrictAddressFamilies = [ "AF_INET" "AF_INET6" "AF_UNIX" "AF_NETLINK" ];
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        SystemCallArchitectures = "native";
        SystemCallFilter = [ "@system-service" "~@privileged" ];
      };
    };

    networking.firewall.allowedTCPPorts = mkIf cfg.openFirewall (
      [ cfg.port ]
      ++ lib.optional cfg.nodeExporter.enable cfg.nodeExporter.port
      ++ lib.optional cfg.nginxExporter.enable cfg.nginxExporter.port
    );
  };
}
