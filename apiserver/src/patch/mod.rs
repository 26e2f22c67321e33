//! The patch engine: pure functions over `serde_json::Value`, shared by PATCH, create and
//! update.
//!
//! - [`merge`]: JSON merge patch (RFC 7386).
//! - [`json_patch`]: JSON patch (RFC 6902).
//! - [`strategic`]: strategic merge patch for the built-in kinds, driven by [`crate::schema`].
//! - [`fieldpath`], [`typed`], [`managed`], [`apply`]: managedFields and server-side apply
//!   (field sets, typed merge and comparison, ownership, conflicts), after
//!   structured-merge-diff.

pub mod apply;
pub mod fieldpath;
pub mod json_patch;
pub mod managed;
pub mod merge;
pub mod strategic;
#[cfg(test)]
mod testutil;
pub mod typed;

/// The patch types kube-apiserver accepts, by Content-Type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// application/json-patch+json
    Json,
    /// application/merge-patch+json
    Merge,
    /// application/strategic-merge-patch+json
    Strategic,
    /// application/apply-patch+yaml (YAML or JSON)
    Apply,
}

impl PatchType {
    /// The patch type of a Content-Type header (parameters ignored).
    pub fn from_content_type(content_type: &str) -> Option<PatchType> {
        match content_type.split(';').next().unwrap_or("").trim() {
            "application/json-patch+json" => Some(PatchType::Json),
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" => Some(PatchType::Apply),
            _ => None,
        }
    }
}
