pub mod beads;
pub mod clock;
pub mod error;
pub use error::{Error, Result};
