//! `keepr-tree`: the znode tree as a deterministic state machine.
