//! Raft glue: the type configuration, the state machine, snapshot files and the network.

pub mod network;
pub mod snapshot_store;
pub mod state_machine;
pub mod types;
