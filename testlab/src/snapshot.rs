//! The snapshot check: the normalized result against `snapshots/NAME.snap` beside the scenario
//! file, through insta (one settings helper), so `cargo insta review` and `INSTA_UPDATE` work
//! as for any insta snapshot. A mismatch is reported as a failure, not a panic ([`panic_text`]
//! reads a caught panic's message, here and for a scenario whose run panicked).

use std::path::Path;

use crate::normalize::Normalized;
use crate::scenario::Scenario;

/// The settings every scenario snapshot is taken with.
pub fn settings(s: &Scenario, dir: &Path) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(dir);
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.set_input_file(&s.path);
    settings.set_description(s.description.clone());
    for selector in &s.expect.redact {
        settings.add_redaction(selector, "[redacted]");
    }
    settings
}

/// Compares; the failure names the snapshot file and says how to review it.
pub fn compare(s: &Scenario, dir: &Path, value: &Normalized) -> Result<(), String> {
    let settings = settings(s, dir);
    let name = s.name.as_str();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        settings.bind(|| insta::assert_yaml_snapshot!(name, value));
    }));
    result.map_err(|p| {
        format!(
            "snapshot {} does not match ({}); review with `cargo insta review` (or rerun with INSTA_UPDATE=always to accept)",
            dir.join(format!("{name}.snap")).display(),
            panic_text(&*p).lines().next().unwrap_or_default()
        )
    })
}

/// Installs a panic hook that prints insta's mismatch panic as one line (insta has already
/// printed the diff; [`compare`] turns the panic into a failure) and leaves every other panic
/// to the previous hook. Call once, at start.
pub fn quiet_insta_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.location().is_some_and(|l| l.file().contains("insta")) {
            eprintln!("{}", info.payload_as_str().unwrap_or("insta snapshot assertion failed"));
        } else {
            previous(info);
        }
    }));
}

/// Whether insta accepts any snapshot in this environment (`INSTA_UPDATE=always|force`,
/// `INSTA_FORCE_PASS`), so a mismatch cannot be observed.
pub fn mismatches_are_accepted() -> bool {
    let update = std::env::var("INSTA_UPDATE").unwrap_or_default();
    update == "always" || update == "force" || std::env::var_os("INSTA_FORCE_PASS").is_some()
}

/// The message of a panic payload.
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "(no message)".into())
}
