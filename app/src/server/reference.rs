//! The API reference page: the OpenAPI document rendered as one HTML page
//! with its own styles and no script, so it reads offline, printed, or
//! saved, and never asks a CDN for anything.

use serde_json::Value;
use std::fmt::Write as _;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `#/components/schemas/Name` → `Name`.
fn ref_name(v: &Value) -> Option<&str> {
    v.get("$ref")?.as_str()?.rsplit('/').next()
}

/// A schema in a few words: a link to a named one, `array of …`, a type.
fn type_of(v: &Value) -> String {
    if let Some(name) = ref_name(v) {
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = v.get(key).and_then(Value::as_array) {
            let parts: Vec<String> = list
                .iter()
                .filter(|s| s.get("type").and_then(Value::as_str) != Some("null"))
                .map(type_of)
                .collect();
            let nullable = list
                .iter()
                .any(|s| s.get("type").and_then(Value::as_str) == Some("null"));
            return format!(
                "{}{}",
                parts.join(" | "),
                if nullable { " | null" } else { "" }
            );
        }
    }
    if let Some(values) = v.get("enum").and_then(Value::as_array) {
        let names: Vec<String> = values
            .iter()
            .map(|x| format!("<code>{}</code>", esc(x.as_str().unwrap_or(&x.to_string()))))
            .collect();
        return format!("one of {}", names.join(", "));
    }
    let ty = match v.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" | "),
        _ => "any".to_string(),
    };
    if ty.starts_with("array") {
        if let Some(items) = v.get("items") {
            return format!("array of {}", type_of(items));
        }
    }
    if ty.starts_with("object") {
        if let Some(extra) = v.get("additionalProperties").filter(|x| x.is_object()) {
            return format!("map of {}", type_of(extra));
        }
    }
    esc(&ty)
}

fn schema_of_content(content: &Value) -> String {
    let Some(map) = content.as_object() else {
        return String::new();
    };
    map.iter()
        .map(|(media, c)| {
            let schema = c.get("schema").map(type_of).unwrap_or_default();
            format!("{schema} <span class=\"media\">{}</span>", esc(media))
        })
        .collect::<Vec<_>>()
        .join("<br>")
}

/// Escaped prose, with `code` spans and paragraphs kept.
fn prose(s: &str) -> String {
    let mut out = String::new();
    for (i, part) in esc(s).split('`').enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<code>{part}</code>"));
        } else {
            out.push_str(&part.replace("\n\n", "</p><p>"));
        }
    }
    out
}

fn text(v: &Value, key: &str) -> String {
    prose(v.get(key).and_then(Value::as_str).unwrap_or(""))
}

/// The page, from the document.
pub fn render(doc: &utoipa::openapi::OpenApi) -> String {
    let doc = serde_json::to_value(doc).unwrap_or(Value::Null);
    let mut h = String::new();
    let info = &doc["info"];
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} — reference</title><style>{CSS}</style></head><body>\
         <h1>{title} <small>v{version} · OpenAPI {oas}</small></h1><p>{desc}</p>\
         <p>The document itself: <a href=\"/api/v1/openapi.json\"><code>/api/v1/openapi.json</code></a>.</p>",
        title = text(info, "title"),
        version = text(info, "version"),
        oas = text(&doc, "openapi"),
        desc = text(info, "description"),
    );
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    let methods = ["get", "post", "patch", "put", "delete"];
    // Operations by tag, in the document's tag order.
    let tags: Vec<(String, String)> = doc["tags"]
        .as_array()
        .map(|ts| {
            ts.iter()
                .map(|t| (text(t, "name"), text(t, "description")))
                .collect()
        })
        .unwrap_or_default();
    let ops_of = |tag: &str| {
        let mut out = Vec::new();
        for (path, item) in &paths {
            for m in methods {
                if let Some(op) = item.get(m) {
                    let t = op["tags"][0].as_str().unwrap_or("");
                    if esc(t) == tag {
                        out.push((m, path.clone(), op.clone()));
                    }
                }
            }
        }
        out
    };
    h.push_str("<nav><h2>Routes</h2>");
    for (tag, about) in &tags {
        let _ = write!(h, "<h3>{tag} <small>{about}</small></h3><ul>");
        for (m, path, op) in ops_of(tag) {
            let _ = write!(
                h,
                "<li><a href=\"#{id}\"><span class=\"m {m}\">{M}</span> <code>{p}</code></a> {s}</li>",
                id = esc(&format!("{m}-{path}")),
                M = m.to_uppercase(),
                p = esc(&path),
                s = text(&op, "summary"),
            );
        }
        h.push_str("</ul>");
    }
    h.push_str("</nav><main>");
    for (tag, _) in &tags {
        let _ = write!(h, "<h2>{tag}</h2>");
        for (m, path, op) in ops_of(tag) {
            let op = &op;
            let _ = write!(
                h,
                "<section id=\"{id}\"><h3><span class=\"m {m}\">{M}</span> <code>{p}</code></h3><p>{s}</p>",
                id = esc(&format!("{m}-{path}")),
                M = m.to_uppercase(),
                p = esc(&path),
                s = text(op, "summary"),
            );
            let desc = text(op, "description");
            if !desc.is_empty() {
                let _ = write!(h, "<p>{desc}</p>");
            }
            if let Some(params) = op.get("parameters").and_then(Value::as_array) {
                h.push_str(
                    "<table><tr><th>Parameter</th><th>In</th><th>Type</th><th>About</th></tr>",
                );
                for p in params {
                    let _ = write!(
                        h,
                        "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        text(p, "name"),
                        if p["required"].as_bool() == Some(true) {
                            " <em>required</em>"
                        } else {
                            ""
                        },
                        text(p, "in"),
                        p.get("schema").map(type_of).unwrap_or_default(),
                        text(p, "description"),
                    );
                }
                h.push_str("</table>");
            }
            if let Some(body) = op.get("requestBody") {
                let _ = write!(
                    h,
                    "<p><strong>Body:</strong> {}</p>",
                    schema_of_content(&body["content"])
                );
            }
            h.push_str("<table><tr><th>Status</th><th>Meaning</th><th>Body</th></tr>");
            if let Some(rs) = op["responses"].as_object() {
                for (code, r) in rs {
                    let _ = write!(
                        h,
                        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(code),
                        text(r, "description"),
                        schema_of_content(&r["content"]),
                    );
                }
            }
            h.push_str("</table></section>");
        }
    }
    h.push_str("<h2>Schemas</h2>");
    let schemas = doc["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (name, s) in &schemas {
        let _ = write!(h, "<section id=\"schema-{n}\"><h3>{n}</h3>", n = esc(name));
        let desc = text(s, "description");
        if !desc.is_empty() {
            let _ = write!(h, "<p>{desc}</p>");
        }
        if let Some(props) = s.get("properties").and_then(Value::as_object) {
            let required: Vec<&str> = s["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            h.push_str("<table><tr><th>Field</th><th>Type</th><th>About</th></tr>");
            for (field, p) in props {
                let _ = write!(
                    h,
                    "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(field),
                    if required.contains(&field.as_str()) {
                        ""
                    } else {
                        " <em>optional</em>"
                    },
                    type_of(p),
                    text(p, "description"),
                );
            }
            h.push_str("</table>");
        } else {
            let _ = write!(h, "<p>{}</p>", type_of(s));
        }
        h.push_str("</section>");
    }
    h.push_str("</main></body></html>");
    h
}

const CSS: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#1d232a}\
h1 small{font-weight:normal;color:#5b6570;font-size:.6em}\
code{font:13px ui-monospace,monospace;background:#f2f4f6;padding:0 .2em;border-radius:3px}\
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}\
th,td{border:1px solid #d8dde2;padding:.3rem .5rem;text-align:left;vertical-align:top}\
th{background:#f7f8f9}section{border-top:1px solid #e4e7ea;padding-top:.5rem}\
nav ul{columns:2;list-style:none;padding:0}nav h3 small{font-weight:normal;color:#5b6570}nav li{break-inside:avoid}\
.m{display:inline-block;min-width:4.2em;font:bold 12px ui-monospace,monospace;color:#fff;border-radius:3px;padding:0 .3em;text-align:center}\
.get{background:#2f6f9f}.post{background:#2e7d4f}.patch{background:#9a6b12}.delete{background:#a33}.put{background:#6a4c9c}\
.media{color:#5b6570;font-size:12px}em{color:#a33;font-size:12px;font-style:normal}";
