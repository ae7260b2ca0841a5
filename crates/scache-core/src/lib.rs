//! The pure core of postfix-scache: everything that touches bytes, descriptors and time.
pub mod cache;
pub mod client;
pub mod codec;
pub mod fdpass;
pub mod log_socket;
pub mod privileges;
pub mod protocol;
pub mod server;
