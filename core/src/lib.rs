//! The planning core of pano-eks: a pure function from facts to the ordered operations that make
//! Panorama hold exactly what protects the labelled Services. No I/O lives here.
