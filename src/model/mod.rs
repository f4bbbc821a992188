//! Types shared by the server and the browser build (wasm-safe: serde only).

mod batch;
mod drift;
mod host;
mod operator;
mod pack;
mod review;
mod say;
mod time;
mod validate;
mod watch;

pub use batch::*;
pub use drift::*;
pub use host::*;
pub use operator::*;
pub use pack::*;
pub use review::*;
pub use say::*;
pub use time::*;
pub use validate::*;
pub use watch::*;
