//! The Panorama adapter: observes what Panorama holds and applies operations over the PAN-OS
//! XML API. It translates and transports; every decision comes from the planning core.

pub mod apply;
pub mod cache;
pub mod capacity;
pub mod client;
pub mod codec;
pub mod commit;
pub mod jobs;
pub mod kinds;
pub mod locations;
pub mod observe;
pub mod prepare;
pub mod security_codec;
pub mod verify;
pub mod xml;
pub mod xpath;

pub use client::{ClientConfig, MultiAction, MultiOp, PanoramaClient, PanosError};
