# OCI images built from the same wrapped programs as the packages. Each image has its own name
# (the reference tool tagged two different images with one name), runs as a non-root user, is
# configured through environment variables and carries a healthcheck.
#
# `compressor = "none"` writes a plain docker-archive: `podman load -i result` and
# `docker load -i result` read it directly (podman rejects the gzipped form).
{ pkgs, lab, hls-swarm, hls-origin }:
let
  inherit (pkgs) lib dockerTools;
  port = lib.mapAttrs (_: toString) lab.ports;

  # /etc/passwd and /etc/group with root, nobody and the image's own user.
  nss = user: uid: dockerTools.fakeNss.override {
    extraPasswdLines = [ "${user}:x:${toString uid}:${toString uid}:${user}:/tmp:/sbin/nologin" ];
    extraGroupLines = [ "${user}:x:${toString uid}:" ];
  };

  labels = title: description: {
    "org.opencontainers.image.title" = title;
    "org.opencontainers.image.description" = description;
    "org.opencontainers.image.version" = hls-swarm.unwrapped.version;
  };

  # The container aliases (STREAM_URL, CLIENTS, ...) mapped onto the HLS_SWARM_* variables that
  # hls-swarm reads itself. An HLS_SWARM_* variable set explicitly wins over its alias. Mapping
  # variables rather than adding flags keeps an unset alias from overriding anything.
  swarmEntrypoint = pkgs.writeShellApplication {
    name = "swarm-entrypoint";
    runtimeInputs = [ hls-swarm ];
    text = ''
      alias_var() {
        if [ -n "''${!1:-}" ] && [ -z "''${!2:-}" ]; then
          export "$2=''${!1}"
        fi
      }
      alias_var STREAM_URL HLS_SWARM_URL
      alias_var CLIENTS HLS_SWARM_CLIENTS
      alias_var RAMP_RATE HLS_SWARM_RAMP_RATE
      alias_var DURATION HLS_SWARM_DURATION
      alias_var VARIANT HLS_SWARM_VARIANT
      alias_var METRICS_ADDR HLS_SWARM_METRICS
      exec hls-swarm "$@"
    '';
  };

  swarmUid = 10001;
  originUid = 10002;
in
{
  swarm-client-container = dockerTools.buildLayeredImage {
    name = lab.images.swarmClient;
    tag = "latest";
    compressor = "none";
    contents = [ swarmEntrypoint hls-swarm pkgs.curl dockerTools.caCertificates (nss "swarm" swarmUid) ];
    extraCommands = "mkdir -m 1777 tmp";
    config = {
      User = "${toString swarmUid}:${toString swarmUid}";
      WorkingDir = "/tmp";
      Entrypoint = [ "${swarmEntrypoint}/bin/swarm-entrypoint" ];
      Env = [
        "HLS_SWARM_TUI=false"
        "METRICS_ADDR=0.0.0.0:${port.swarmMetrics}"
        "SSL_CERT_FILE=/etc/ssl/certs/ca-bundle.crt"
      ];
      ExposedPorts."${port.swarmMetrics}/tcp" = { };
      # Docker runs this; podman only with `--format docker` images, which these are.
      Healthcheck = {
        Test = [ "CMD" "curl" "-fsS" "-o" "/dev/null" "http://127.0.0.1:${port.swarmMetrics}/metrics" ];
        Interval = 15000000000;
        Timeout = 5000000000;
        StartPeriod = 30000000000;
        Retries = 3;
      };
      Labels = labels lab.images.swarmClient "hls-swarm: simulated HLS viewers; set STREAM_URL and CLIENTS";
    };
  };

  test-origin-container = dockerTools.buildLayeredImage {
    name = lab.images.testOrigin;
    tag = "latest";
    compressor = "none";
    contents = [ hls-origin pkgs.curl (nss "origin" originUid) ];
    extraCommands = "mkdir -m 1777 tmp";
    config = {
      User = "${toString originUid}:${toString originUid}";
      WorkingDir = "/tmp";
      Entrypoint = [ "${hls-origin}/bin/hls-origin" "serve" ];
      # Every serve flag has an HLS_ORIGIN_* variable; these make it reachable from outside.
      # Segments go under /tmp: mount a tmpfs there (`--tmpfs /tmp:size=256m`) for the
      # 4k-abr profile, whose window does not fit the default 64 MB /dev/shm.
      Env = [
        "HLS_ORIGIN_PROFILE=default"
        "HLS_ORIGIN_LISTEN=0.0.0.0:${port.hls}"
        "HLS_ORIGIN_NODE_EXPORTER=0.0.0.0:${port.nodeExporter}"
        "HLS_ORIGIN_NGINX_EXPORTER=0.0.0.0:${port.nginxExporter}"
        "HLS_ORIGIN_WORK_DIR=/tmp"
        "HLS_ORIGIN_CACHE_DIR=/tmp/hls-origin-cache"
      ];
      ExposedPorts = {
        "${port.hls}/tcp" = { };
        "${port.nodeExporter}/tcp" = { };
        "${port.nginxExporter}/tcp" = { };
      };
      Healthcheck = {
        Test = [ "CMD" "curl" "-fsS" "-o" "/dev/null" "http://127.0.0.1:${port.hls}/health" ];
        Interval = 10000000000;
        Timeout = 3000000000;
        StartPeriod = 60000000000;
        Retries = 3;
      };
      Labels = labels lab.images.testOrigin "hls-origin: test HLS origin; HLS_ORIGIN_PROFILE selects the profile";
    };
  };
}
