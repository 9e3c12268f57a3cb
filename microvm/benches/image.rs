//! How long the VM image takes to build from this host's binaries, and to find in the cache
//! when nothing changed: the figure the image test no longer pins (it checks instead that a
//! cached image is not written again). Printed beside its goal; nothing fails the run.
//!
//! `cargo bench -p microvm --bench image` (`make bench-image`, part of `make bench`; needs
//! the VM's packages: `make deps-vm`). Under `cargo test --all-targets` (no `--bench`
//! argument) it only prints how to run it.

use std::time::Instant;

use microvm::image;
use testkit::goals::{Figure, Goal, Table};

fn main() -> std::process::ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        println!("image: a benchmark; run it with `cargo bench -p microvm --bench image`");
        return std::process::ExitCode::SUCCESS;
    }
    // target/<profile>/deps/image-… → target/<profile>/hls-origin, if built.
    let origin = std::env::current_exe()
        .ok()
        .and_then(|e| Some(e.parent()?.parent()?.join("hls-origin")))
        .filter(|p| p.is_file());
    let overrides = image::Overrides { origin, ..Default::default() };
    let mut table = Table::new("microvm image (make bench-image)");
    let inputs = match image::Inputs::discover(&overrides) {
        Ok(i) => i,
        Err(e) => {
            println!("the image cannot be built here: {e} (make deps-vm; cargo build -p hls-origin)");
            return std::process::ExitCode::FAILURE;
        }
    };
    let Ok(cache) = tempfile::tempdir() else { return std::process::ExitCode::FAILURE };
    let t = Instant::now();
    let fresh = image::build(&inputs, cache.path());
    let built = t.elapsed();
    let t = Instant::now();
    let again = image::build(&inputs, cache.path());
    let cached = t.elapsed();
    let ok = |r: &Result<image::Image, image::Error>, want_cached: bool| match r {
        Ok(i) if i.cached == want_cached => Ok(()),
        Ok(_) => Err(format!("the build was {}cached", if want_cached { "not " } else { "" })),
        Err(e) => Err(e.to_string()),
    };
    table.add(Figure::duration(
        "image from this host's binaries, empty cache",
        ok(&fresh, false).map(|()| built),
        Goal::Below(120.0),
        "what a cache miss costs, for comparison",
    ));
    table.add(Figure::duration(
        "the same image again, nothing changed (cache check)",
        ok(&again, true).map(|()| cached),
        Goal::Below(10.0),
        "tests: image::image_from_host_binaries…",
    ));
    println!();
    print!("{}", table.render());
    std::process::ExitCode::SUCCESS
}
