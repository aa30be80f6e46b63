//! TSK006: what the reference runs has only end-of-life Node handlers.

use super::{Advice, RefContext, Runs};
use crate::checks::tasks::index::only_eol_node;
use crate::codes::Code;

impl RefContext<'_> {
    pub(super) fn end_of_life_node(&self, runs: &Runs<'_>, out: &mut Vec<Advice>) {
        let Some(h) = runs.handlers.filter(|h| only_eol_node(h)) else { return };
        let (name, version) = (self.name(), &runs.version);
        out.push(Advice {
            finding: self
                .finding(
                    Code::TSK006,
                    format!(
                        "{}: {name} {version} runs only on end-of-life Node handlers ({}); agents warn about it \
                         and will refuse it once end-of-life Node versions are blocked",
                        self.shown(),
                        h.join(", ")
                    ),
                )
                .remedy(
                    "Move to a major of the task with a Node 20 or Node 24 handler. For a Marketplace task, ask \
                     the publisher for an update or replace the task.",
                )
                .data("handlers", h.to_vec()),
            edit: None,
        });
    }
}
