//! The ZooKeeper client protocol: accept, handshake, pipeline, replies, four-letter words.
//!
//! [`decoder`] turns bytes into events (pure, fuzzed), [`connection`] runs one client,
//! [`read`] answers reads from the local tree, [`reply`] shapes write results,
//! [`four_letter`] answers monitoring commands, [`backend`] is what a connection needs
//! from its member, [`direct`] a member without Raft for unit tests and the fuzzer.

pub mod backend;
pub mod connection;
pub mod decoder;
pub mod direct;
pub mod four_letter;
pub mod read;
pub mod reply;
