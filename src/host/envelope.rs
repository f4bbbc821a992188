//! The host's success envelope and its three error shapes
//! (reference §2.5): handler errors `{code:<int>, message, reason?, metadata?}`,
//! middleware errors `{code:"STRING", message, metadata?}`, and raw bodies
//! `{error:"…", message}`; plus Gin's plain-text `404 page not found` for a
//! route that does not exist, and gateway errors `{error:{type, message}}`.

use super::error::{HostError, HostErrorKind};
use serde_json::Value;

/// Reads a host answer: the `data` of a success envelope, or a typed error.
pub fn parse(
    method: &'static str,
    path: &str,
    status: u16,
    retry_after: Option<u64>,
    body: &[u8],
) -> Result<Value, HostError> {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    if (200..300).contains(&status) {
        let Some(v) = json else {
            return Err(HostError::protocol(
                method,
                path,
                status,
                "the answer is not JSON",
            ));
        };
        return match v.get("code") {
            Some(Value::Number(n)) if n.as_i64() == Some(0) => {
                Ok(v.get("data").cloned().unwrap_or(Value::Null))
            }
            Some(_) => Err(error_from_json(method, path, status, retry_after, &v)),
            // Some routes (`/health`) answer without an envelope.
            None => Ok(v),
        };
    }
    match json {
        Some(v) => Err(error_from_json(method, path, status, retry_after, &v)),
        None => {
            let text = String::from_utf8_lossy(body);
            let kind = if status == 404 {
                HostErrorKind::RouteMissing
            } else {
                kind_for(status, "")
            };
            Err(HostError {
                kind,
                status: Some(status),
                code: String::new(),
                message: text
                    .chars()
                    .take(200)
                    .collect::<String>()
                    .trim()
                    .to_string(),
                method,
                path: path.to_string(),
                retry_after,
            })
        }
    }
}

fn error_from_json(
    method: &'static str,
    path: &str,
    status: u16,
    retry_after: Option<u64>,
    v: &Value,
) -> HostError {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    // Reason first, then a string code, then the raw `error` string, then
    // the gateway's nested `error.type`.
    let code = s("reason")
        .or_else(|| s("code"))
        .or_else(|| s("error"))
        .or_else(|| {
            v.get("error")
                .and_then(|e| e.get("type"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    let message = s("message")
        .or_else(|| {
            v.get("error")
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    HostError {
        kind: kind_for(status, &code),
        status: Some(status),
        code,
        message,
        method,
        path: path.to_string(),
        retry_after,
    }
}

fn kind_for(status: u16, code: &str) -> HostErrorKind {
    if code == "ADMIN_COMPLIANCE_ACK_REQUIRED" || status == 423 {
        return HostErrorKind::ComplianceRequired;
    }
    match status {
        401 | 403 => HostErrorKind::Auth,
        404 => HostErrorKind::NotFound,
        409 => HostErrorKind::Conflict,
        429 => HostErrorKind::RateLimited,
        400..=499 => HostErrorKind::Rejected,
        500..=599 => HostErrorKind::Server,
        _ => HostErrorKind::Protocol,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(status: u16, body: &str) -> Result<Value, HostError> {
        parse("GET", "/x", status, None, body.as_bytes())
    }

    #[test]
    fn success_envelope_yields_data() {
        let v = p(200, r#"{"code":0,"message":"success","data":{"a":1}}"#).unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(
            p(200, r#"{"code":0,"message":"success"}"#).unwrap(),
            Value::Null
        );
        assert_eq!(p(200, r#"{"status":"ok"}"#).unwrap()["status"], "ok");
    }

    #[test]
    fn handler_errors_prefer_the_reason() {
        let e = p(
            409,
            r#"{"code":409,"message":"group exists","reason":"GROUP_EXISTS"}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, "GROUP_EXISTS");
        assert!(e.is_conflict());
        let e = p(400, r#"{"code":400,"message":"Invalid request: x"}"#).unwrap_err();
        assert_eq!(e.kind, HostErrorKind::Rejected);
        assert_eq!(e.message, "Invalid request: x");
    }

    #[test]
    fn middleware_errors_use_the_string_code() {
        let e = p(
            401,
            r#"{"code":"INVALID_ADMIN_KEY","message":"Invalid admin API key"}"#,
        )
        .unwrap_err();
        assert!(e.is_auth());
        assert_eq!(e.code, "INVALID_ADMIN_KEY");
        let e = p(
            423,
            r#"{"code":"ADMIN_COMPLIANCE_ACK_REQUIRED","message":"m","metadata":{"version":"v2026.06.10"}}"#,
        )
        .unwrap_err();
        assert!(e.is_compliance());
    }

    #[test]
    fn raw_and_gateway_bodies_are_read() {
        let e = p(409, r#"{"error":"mixed_channel_warning","message":"risk"}"#).unwrap_err();
        assert_eq!(e.code, "mixed_channel_warning");
        let e = p(
            404,
            r#"{"error":{"type":"model_not_found","message":"Model \"x\" is not supported"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, "model_not_found");
        assert_eq!(e.kind, HostErrorKind::NotFound);
    }

    #[test]
    fn gin_plain_404_means_the_route_is_missing() {
        let e = p(404, "404 page not found").unwrap_err();
        assert!(e.is_route_missing());
    }

    #[test]
    fn a_200_that_is_not_json_is_a_protocol_error() {
        let e = p(200, "<html>login</html>").unwrap_err();
        assert_eq!(e.kind, HostErrorKind::Protocol);
    }
}
