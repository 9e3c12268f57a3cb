# NixOS VM test: the `origin` node runs the origin module, the `client` node runs hls-swarm
# against it for 60 s, and the test asserts on the end-of-run summary (the reference tool's VM
# test only checked `--version`). Needs a KVM host.
{ pkgs, lab, self }:
let
  inherit (pkgs.stdenv.hostPlatform) system;
  hls = toString lab.ports.hls;
  clients = 5;
in
pkgs.testers.runNixOSTest {
  name = "hls-swarm-vs-origin";

  nodes.origin = {
    imports = [ self.nixosModules.origin ];
    virtualisation = { cores = 2; memorySize = 1536; };
    services.hls-origin = {
      enable = true;
      openFirewall = true;
      # A loop encoded once and republished live: the run measures the swarm, not the
      # encoder's speed inside a VM.
      extraArgs = [ "--source" "replay" ];
    };
  };

  nodes.client = {
    virtualisation = { cores = 2; memorySize = 1024; };
    environment.systemPackages = [ self.packages.${system}.hls-swarm pkgs.curl ];
  };

  # testlab/tests/nix_flake runs every `field(...)` pattern below against the summary of a
  # real hls-swarm run, so a changed summary line fails `make test`, not this VM test.
  testScript = ''
    import re

    url = "http://origin:${hls}/stream.m3u8"
    start_all()

    origin.wait_for_unit("hls-origin.service")
    origin.wait_for_open_port(${hls})
    origin.wait_until_succeeds("curl -fsS http://127.0.0.1:${hls}/stream.m3u8 | grep -q EXTINF", timeout=180)
    client.wait_for_unit("multi-user.target")
    client.succeed(f"curl -fsS {url} | grep -q EXTM3U")

    # Exit status 0 is part of the assertion: `succeed` fails the test otherwise.
    out = client.succeed(
        f"hls-swarm --clients ${toString clients} --ramp-rate 2 --duration 60s --tui=false {url} 2>&1"
    )
    print(out)

    def field(pattern):
        m = re.search(pattern, out, re.MULTILINE)
        assert m, f"summary line not found: {pattern}"
        return m

    assert "duration reached" in out, "run did not end by reaching --duration"
    v = field(r"^Viewers\s+(\d+) target . (\d+) started . (\d+) streaming at the end")
    assert v.groups() == ("${toString clients}",) * 3, f"viewers: {v.groups()}"
    r = field(r"^Requests\s+(\d+) playlists \((\d+) master\) . (\d+) segments")
    assert int(r.group(3)) >= ${toString clients} * 20, f"too few segments: {r.group(3)}"
    e = field(r"^Errors\s+(\d+) HTTP 4xx . (\d+) HTTP 5xx . (\d+) network")
    assert e.groups() == ("0", "0", "0"), f"errors: {e.groups()}"
    field(r"^Exits \(own\)\s+none$")

    # The origin saw the load and is still serving.
    origin.succeed("curl -fsS http://127.0.0.1:${hls}/health")
  '';
}
