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
