//! Test HLS origin (being written).
