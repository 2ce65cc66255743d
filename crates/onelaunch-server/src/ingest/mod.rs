//! Everything a client sends into a launch passes through here: request bodies
//! are decoded and bounded (`decode`, `limits`), then written with the rules
//! every write must follow.

pub(crate) mod decode;
pub(crate) mod limits;
