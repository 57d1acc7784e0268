//! JS sandbox (issue 3).
