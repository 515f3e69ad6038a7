//! The bus of a node alone (SQLite): there is nobody to tell and nobody to hear.

use tokio::sync::mpsc;

use super::{Bus, Event, Heard};

#[derive(Debug, Default)]
pub struct LocalBus;

impl Bus for LocalBus {
    fn publish(&self, _event: Event) {}

    fn take_heard(&self) -> Option<mpsc::Receiver<Heard>> {
        None
    }
}
