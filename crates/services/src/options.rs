//! From a compose service to the engine's CreateOptions.

use crate::compose::{ComposeError, Project, Service};
use berth_engine::options::CreateOptions;

/// The CreateOptions of replica `number` (1-based) of `s`; `oneoff` for `compose run`.
pub fn create_options(
    p: &Project,
    s: &Service,
    number: u32,
    oneoff: bool,
) -> Result<CreateOptions, ComposeError> {
    todo!("{p:?} {s:?} {number} {oneoff}")
}
