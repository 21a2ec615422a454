//! The components of a territory's CRM deployment, as Deployments label them
//! (`freshplan.io/component`).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The label on every Deployment the operator scales.
pub const COMPONENT_LABEL: &str = "freshplan.io/component";
/// The label naming a Deployment's sales territory.
pub const TERRITORY_LABEL: &str = "freshplan.io/territory";

/// One role of the CRM server (`crm-server serve --role ...`), scaled on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Component {
    /// Reads: search, cockpit, feeds.
    Query,
    /// Writes.
    Command,
    /// The outbox relay and its consumers.
    Relay,
}

impl Component {
    pub const ALL: [Component; 3] = [Component::Query, Component::Command, Component::Relay];

    /// The label value and the name in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Query => "query",
            Component::Command => "command",
            Component::Relay => "relay",
        }
    }

    /// The component a label value names.
    pub fn from_label(value: &str) -> Option<Component> {
        Component::ALL.into_iter().find(|c| c.as_str() == value)
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_yaml_names_agree() {
        for component in Component::ALL {
            assert_eq!(Component::from_label(component.as_str()), Some(component));
            assert_eq!(serde_json::to_value(component).unwrap(), component.as_str());
        }
        assert_eq!(Component::from_label("Query"), None);
    }
}
