//! Node-API glue for scache-core. Each module maps one core facility onto its TypeScript face
//! (see `native/index.d.ts`, generated at build time) and holds no logic of its own.

mod client;
mod log_socket;
mod privileges;
mod server;
mod wire;
