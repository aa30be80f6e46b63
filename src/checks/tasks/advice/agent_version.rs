//! AGT004: the agent is older than the `minimumAgentVersion` of what the reference runs. An
//! agent finding, but it needs the task's data, so the tasks check emits it with the
//! reference's location.

use super::{Advice, RefContext, Runs};
use crate::checks::tasks::reference::compare_dotted;
use crate::codes::Code;
use crate::sanitize::sanitize;

impl RefContext<'_> {
    pub(super) fn agent_older_than_minimum(&self, runs: &Runs<'_>, out: &mut Vec<Advice>) {
        let (Some(agent), Some(min)) = (self.facts.agent_version, runs.minimum) else { return };
        if compare_dotted(agent, min) != Some(std::cmp::Ordering::Less) {
            return;
        }
        let (name, version) = (self.name(), &runs.version);
        out.push(Advice {
            finding: self
                .finding(
                    Code::AGT004,
                    format!(
                        "agent {} is older than {name} {version}'s minimumAgentVersion {} ({})",
                        sanitize(agent),
                        sanitize(min),
                        self.shown()
                    ),
                )
                .remedy(
                    "Update the agents (Organization settings > Agent pools > pool > Agents > Update all \
                     agents), or rebuild agent images with a current agent.",
                )
                .data("agentVersion", sanitize(agent))
                .data("minimumAgentVersion", sanitize(min)),
            edit: None,
        });
    }
}
