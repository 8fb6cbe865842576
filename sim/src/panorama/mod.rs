//! panorama-sim: an in-memory Panorama speaking the PAN-OS XML API (see sim/README.md).

pub mod config;
pub mod dataplane;
pub mod faults;
pub mod jobs;
pub mod limits;
pub mod locks;
pub mod refs;
pub mod response;
pub mod schema;
pub mod server;
pub mod state;
pub mod tls;
pub mod xml_tree;
pub mod xpath;
