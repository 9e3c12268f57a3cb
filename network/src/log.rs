//! What setup and teardown did, step by step: the record every `ensure_*` writes to and the
//! command line prints.

use std::fmt;

/// One thing setup or teardown did or found already done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub text: String,
    /// `true` if the system was changed, `false` if it already was as wanted.
    pub changed: bool,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The steps of one setup or teardown, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Log {
    pub steps: Vec<Step>,
}

impl Log {
    pub(crate) fn changed(&mut self, text: impl Into<String>) {
        self.steps.push(Step { text: text.into(), changed: true });
    }

    pub(crate) fn kept(&mut self, text: impl Into<String>) {
        self.steps.push(Step { text: text.into(), changed: false });
    }

    /// How many steps changed the system.
    pub fn changes(&self) -> usize {
        self.steps.iter().filter(|s| s.changed).count()
    }
}
