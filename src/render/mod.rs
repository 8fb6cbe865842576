//! Rendering, offline and deterministic, of every artifact `up` deploys.
