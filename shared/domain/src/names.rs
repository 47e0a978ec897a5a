//! Machine error codes (`"code"` beside `"error"` in every error answer). One list, used by the
//! API's error mapping and by anything that must match on them.

pub const BAD_REQUEST: &str = "BAD_REQUEST";
pub const INVALID_JSON: &str = "INVALID_JSON";
pub const UNSUPPORTED_MEDIA_TYPE: &str = "UNSUPPORTED_MEDIA_TYPE";
pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
pub const FORBIDDEN: &str = "FORBIDDEN";
pub const NOT_FOUND: &str = "NOT_FOUND";
pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
pub const NO_MATCHING_COMMAND: &str = "NO_MATCHING_COMMAND";
pub const NO_MATCHING_CLUSTER: &str = "NO_MATCHING_CLUSTER";
pub const INVALID_JOB_CONTEXT: &str = "INVALID_JOB_CONTEXT";
pub const MODE_NOT_ALLOWED: &str = "MODE_NOT_ALLOWED";
pub const ILLEGAL_TRANSITION: &str = "ILLEGAL_TRANSITION";
pub const ALREADY_SUBMITTED: &str = "ALREADY_SUBMITTED";
pub const IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
pub const RANGE_NOT_SATISFIABLE: &str = "RANGE_NOT_SATISFIABLE";
pub const NOT_READY: &str = "NOT_READY";
pub const TOO_MANY_REQUESTS: &str = "TOO_MANY_REQUESTS";
pub const TIMEOUT: &str = "TIMEOUT";
pub const UNAVAILABLE: &str = "UNAVAILABLE";
pub const INTERNAL: &str = "INTERNAL";
