//! roost host library.
