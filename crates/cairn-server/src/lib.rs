//! cairn-server: the front ends.
