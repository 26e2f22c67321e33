//! /openapi/v2 and /openapi/v3: not served yet (the documents are built from the schema type
//! graph, which is being added); answers 404 as before.

use axum::response::Response;

use crate::status::ApiError;

pub fn serve(_path: &[&str], _accept: &str) -> Response {
    ApiError::path_not_found().into()
}
