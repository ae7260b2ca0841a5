// The native binding, through the loader napi-rs generates at build time (native/index.js). It loads
// a local build in this checkout or, in an installed package, the platform package beside it.
export * from '../native/index.js';
