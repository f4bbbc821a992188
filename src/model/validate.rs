use serde::{Deserialize, Serialize};
use std::fmt;

/// A problem with one field a person typed: which field, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    /// In English (logs, the CLI, the API); pages write [`FieldError::said`].
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub said: Option<super::Said>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
            said: None,
        }
    }

    /// A problem said by its code (see [`super::SAID`]) and parameters.
    pub fn coded(field: impl Into<String>, code: &str, args: &[(&str, &dyn fmt::Display)]) -> Self {
        let said = super::Said::new(code, args);
        Self {
            field: field.into(),
            message: said.english(),
            said: Some(said),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Upper bound for short text fields (names, emails, usernames).
pub const MAX_SHORT: usize = 200;
/// Upper bound for secrets typed into a form.
pub const MAX_SECRET: usize = 4096;

/// Trims a required text field and checks its length.
pub fn required(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let v = value.trim();
    if v.is_empty() {
        return Err(FieldError::coded(field, "field.required", &[]));
    }
    if v.chars().count() > max {
        return Err(FieldError::coded(
            field,
            "field.too_long",
            &[("n", &v.chars().count()), ("max", &max)],
        ));
    }
    Ok(v.to_string())
}

/// Trims an optional text field: empty means `None`.
pub fn optional(field: &str, value: &str, max: usize) -> Result<Option<String>, FieldError> {
    if value.trim().is_empty() {
        Ok(None)
    } else {
        required(field, value, max).map(Some)
    }
}

/// Operator usernames: 3–64 of `[A-Za-z0-9._@-]`.
pub fn username(value: &str) -> Result<String, FieldError> {
    let v = required("username", value, 64)?;
    if v.len() < 3 {
        return Err(FieldError::coded("username", "field.username_short", &[]));
    }
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(FieldError::coded("username", "field.username_chars", &[]));
    }
    Ok(v)
}

/// Operator passwords: 12–256 characters, not all one character class check
/// beyond length (length is what matters; NIST SP 800-63B).
pub fn new_password(value: &str) -> Result<String, FieldError> {
    let n = value.chars().count();
    if n < 12 {
        return Err(FieldError::coded("password", "field.password_short", &[]));
    }
    if n > 256 {
        return Err(FieldError::coded("password", "field.password_long", &[]));
    }
    Ok(value.to_string())
}

/// A host base URL: absolute http(s), no query or fragment, no credentials,
/// trailing slash removed. Returns the normalised form.
pub fn host_base_url(value: &str) -> Result<String, FieldError> {
    let v = required("base_url", value, 500)?;
    let lower = v.to_ascii_lowercase();
    let rest = if let Some(r) = lower.strip_prefix("https://") {
        r
    } else if let Some(r) = lower.strip_prefix("http://") {
        r
    } else {
        return Err(FieldError::coded("base_url", "field.url_scheme", &[]));
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err(FieldError::coded("base_url", "field.url_no_host", &[]));
    }
    if authority.contains('@') {
        return Err(FieldError::coded("base_url", "field.url_credentials", &[]));
    }
    if v.contains('?') || v.contains('#') {
        return Err(FieldError::coded("base_url", "field.url_query", &[]));
    }
    if v.chars().any(char::is_whitespace) {
        return Err(FieldError::coded("base_url", "field.url_spaces", &[]));
    }
    let host_part = authority.rsplit_once(':').map_or(authority, |(h, p)| {
        if p.chars().all(|c| c.is_ascii_digit()) && !h.is_empty() {
            h
        } else {
            authority
        }
    });
    if host_part.is_empty()
        || !host_part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'))
    {
        return Err(FieldError::coded("base_url", "field.url_bad_host", &[]));
    }
    if let Some((_, port)) = authority.rsplit_once(':') {
        if !authority.ends_with(']') && port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(FieldError::coded("base_url", "field.url_bad_port", &[]));
        }
    }
    Ok(v.trim_end_matches('/').to_string())
}

/// An email address, loosely: one `@`, something either side, a dot after it.
pub fn email(field: &str, value: &str) -> Result<String, FieldError> {
    let v = required(field, value, MAX_SHORT)?;
    let ok = match v.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !domain.contains('@') && !v.contains(' ')
        }
        None => false,
    };
    if ok {
        Ok(v)
    } else {
        Err(FieldError::coded(field, "field.email", &[]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_base_url_normalises_and_rejects_bad_forms() {
        assert_eq!(
            host_base_url(" https://gw.example.com/ ").unwrap(),
            "https://gw.example.com"
        );
        assert_eq!(
            host_base_url("http://127.0.0.1:8080").unwrap(),
            "http://127.0.0.1:8080"
        );
        for bad in [
            "",
            "gw.example.com",
            "ftp://x.y",
            "https://",
            "https://user:pw@x.y",
            "https://x.y/?a=b",
            "https://x y",
            "https://x.y:99999",
            "https://x.y:0",
        ] {
            let e = host_base_url(bad).unwrap_err();
            assert_eq!(e.field, "base_url", "{bad}");
        }
    }

    #[test]
    fn required_names_the_field_and_the_limit() {
        let e = required("name", &"x".repeat(201), 200).unwrap_err();
        assert_eq!(e.field, "name");
        assert!(e.message.contains("at most 200"), "{}", e.message);
        assert_eq!(
            required("name", "  ", 10).unwrap_err().message,
            "is required"
        );
    }

    #[test]
    fn passwords_and_usernames_are_checked() {
        assert!(new_password("short").is_err());
        assert!(new_password("long enough pass").is_ok());
        assert!(username("ab").is_err());
        assert!(username("ops lead").is_err());
        assert!(username("ops.lead").is_ok());
        assert!(email("email", "a@b.c").is_ok());
        assert!(email("email", "a@b").is_err());
    }
}
