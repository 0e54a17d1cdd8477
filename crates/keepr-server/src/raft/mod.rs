//! Raft glue: the type configuration, the state machine and snapshot files (the network is
//! in `crate::peer`).

pub mod snapshot_store;
pub mod state_machine;
pub mod types;
