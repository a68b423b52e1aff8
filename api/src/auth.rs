//! Who is asking, and what they may do.
//!
//! The seam for the identity layer: until accounts and API keys exist every request is
//! anonymous, and writes are allowed only when the server runs in development mode
//! (`INCUBASE_ENV=development`, the embedded default). In production mode they answer
//! `UNAUTHENTICATED`. Every write goes through `AccessPolicy`, so the identity layer
//! replaces this one place.
use crate::error::{AppError, AppResult};

#[derive(Clone, Debug, Default)]
pub enum Viewer {
    #[default]
    Anonymous,
}

#[derive(Clone, Debug)]
pub struct AccessPolicy {
    pub open_writes: bool,
}

impl AccessPolicy {
    pub fn can_manage_organizations(&self, viewer: &Viewer) -> bool {
        match viewer {
            Viewer::Anonymous => self.open_writes,
        }
    }

    pub fn require_manage_organizations(&self, viewer: &Viewer) -> AppResult<()> {
        if self.can_manage_organizations(viewer) { Ok(()) } else { Err(AppError::Unauthenticated) }
    }
}
