//! fastpath (crate docs written below)
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod error;
pub mod pcap;

pub use error::{Error, Result};
