#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod body;

pub use asterope_client::{Client, ClientBuilder};
pub use asterope_core::*;
pub use asterope_network::{serve, Access, Cors, ServerConfig, Tokens};
pub use asterope_storage::{
    CompactionSchedule, DamagedBlob, Database, DatabaseBuilder, SpaceStats, VerifyReport,
};
