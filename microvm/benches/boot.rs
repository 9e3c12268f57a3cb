//! Placeholder: the boot benchmark follows in a later commit.
fn main() {}
