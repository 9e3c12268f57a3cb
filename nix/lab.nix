# The lab's fixed names, addresses and ports: plain data, shared by the packages, the NixOS
# modules, the MicroVM and the offline flake test. The Rust crates (`network/`, `microvm/`) use
# the same values; change them together.
{
  ports = {
    hls = 17080;
    nodeExporter = 9100;
    nginxExporter = 9113;
    swarmMetrics = 17091;
  };

  network = {
    bridge = "hlsbr0";
    tap = "hlstap0";
    hostAddress = "10.177.0.1";
    prefixLength = 24;
    vmAddress = "10.177.0.10";
    # Locally administered (second-lowest bit of the first octet set), unicast.
    vmMac = "02:00:00:0a:b1:0a";
  };

  # `hls-origin profiles`; `default` is `nix run .#test-origin`, the others
  # `nix run .#test-origin-<name>`.
  profiles = [ "default" "low-latency" "ll-hls" "ll-hls-abr" "4k-abr" "stress" "logged" "debug" ];

  images = {
    swarmClient = "hls-swarm-client";
    testOrigin = "hls-test-origin";
  };

  # The lowest rustc the nixpkgs in flake.lock can have; where the figure comes from is written
  # next to the pin in flake.nix. Must be >= every `rust-version` in Cargo.lock.
  nixpkgsRustcAtLeast = "1.91";
}
