//! Kubernetes label and field selectors over JSON objects.
//!
//! [`LabelSelector`] follows apimachinery's `labels.Parse` (string syntax, including its error
//! messages) and `metav1.LabelSelectorAsSelector` (the JSON form); [`FieldSelector`] follows
//! `fields.ParseSelector` plus the per-kind field label conversion functions of the apiserver
//! ([`field_selector_fields`]).

mod fields;
mod labels;
mod parser;
#[cfg(test)]
mod tests;

pub use fields::{field_selector_fields, FieldSelector};
pub use labels::LabelSelector;
