//! Simulators that give pano-eks an honest peer on 127.0.0.1: `panorama-sim` and `kube-sim`.
//! They share no code with the product, so a misunderstanding of an API cannot cancel itself out.

pub mod kube;
pub mod net;
pub mod panorama;
