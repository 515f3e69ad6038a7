//! A node of a classcast deployment: its id, stamped on the rows it creates, and its clock,
//! which stamps their versions. Both belong to the process (the configuration or its data
//! directory), not to a database: app nodes may share one, and a node may move between the
//! databases of a cluster.

use std::sync::Arc;

use uuid::Uuid;

use super::hlc::Hlc;

#[derive(Debug, Clone)]
pub struct Node {
    pub id: Uuid,
    /// Shared with everything on this node that issues or observes versions.
    pub clock: Arc<Hlc>,
}

impl Node {
    pub fn new(id: Uuid) -> Self {
        Self {
            id,
            clock: Arc::new(Hlc::new()),
        }
    }
}

/// The nodes whose rows an upkeep purge removes: this node first, then those silent past
/// their lease whose upkeep it took over (each node purges the rows it made).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeIds(Vec<Uuid>);

impl NodeIds {
    /// `first` (this node), then `others` in their order, each once.
    pub fn new(first: Uuid, others: impl IntoIterator<Item = Uuid>) -> Self {
        let mut ids = vec![first];
        for id in others {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Self(ids)
    }

    pub fn ids(&self) -> &[Uuid] {
        &self.0
    }

    /// The nodes whose upkeep this node took over.
    pub fn taken_over(&self) -> &[Uuid] {
        &self.0[1..]
    }
}
