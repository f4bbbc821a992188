//! Finds the line a dotted path refers to in the pack's text, so a
//! validation message can say "line 12". Keys may themselves contain dots
//! (`qwen3.8-max`), so segments are matched greedily against the text.

use super::Format;

/// 1-based line of `path`, or the nearest enclosing key found.
pub fn line_of(source: &str, format: Format, path: &str) -> Option<u32> {
    match format {
        Format::Yaml => yaml(source, path),
        Format::Toml => toml(source, path),
    }
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_key_line(trimmed: &str, key: &str) -> bool {
    let t = trimmed.strip_prefix("- ").unwrap_or(trimmed);
    for quoted in [key.to_string(), format!("\"{key}\""), format!("'{key}'")] {
        if let Some(rest) = t.strip_prefix(&quoted) {
            if rest.trim_start().starts_with(':') {
                return true;
            }
        }
    }
    false
}

fn yaml(source: &str, path: &str) -> Option<u32> {
    let lines: Vec<&str> = source.lines().collect();
    let segs: Vec<&str> = path.split('.').collect();
    let (mut start, mut parent_indent, mut found): (usize, i64, Option<usize>) = (0, -1, None);
    let mut i = 0;
    'segments: while i < segs.len() {
        for j in i + 1..=segs.len() {
            let key = segs[i..j].join(".");
            for (idx, line) in lines.iter().enumerate().skip(start) {
                let t = line.trim_start();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                if idx > start && (indent(line) as i64) <= parent_indent {
                    break;
                }
                if is_key_line(t, &key) {
                    found = Some(idx);
                    parent_indent = indent(line) as i64;
                    start = idx + 1;
                    i = j;
                    continue 'segments;
                }
            }
        }
        // The rest may sit on the same line in flow style: `price: {input: 1}`.
        break;
    }
    found.map(|l| l as u32 + 1)
}

/// The segments of a TOML table header, quotes removed, joined with dots.
fn header_path(header: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in header.chars() {
        match c {
            '"' | '\'' => quoted = !quoted,
            ' ' if !quoted => {}
            _ => out.push(c),
        }
    }
    out
}

fn toml(source: &str, path: &str) -> Option<u32> {
    let lines: Vec<&str> = source.lines().collect();
    // The deepest table header that is a prefix of the path.
    let mut best: Option<(usize, usize)> = None; // (line index, header length)
    for (idx, line) in lines.iter().enumerate() {
        let t = line.trim();
        let inner = t
            .strip_prefix("[[")
            .and_then(|r| r.strip_suffix("]]"))
            .or_else(|| t.strip_prefix('[').and_then(|r| r.strip_suffix(']')));
        if let Some(h) = inner {
            let hp = header_path(h);
            let is_prefix = path == hp || path.starts_with(&format!("{hp}."));
            if is_prefix && best.is_none_or(|(_, len)| hp.len() > len) {
                best = Some((idx, hp.len()));
            }
        }
    }
    let (table_line, rest) = match best {
        Some((idx, len)) => (Some(idx), path.get(len + 1..).unwrap_or("")),
        None => (None, path),
    };
    if rest.is_empty() {
        return table_line.map(|l| l as u32 + 1);
    }
    let from = table_line.map_or(0, |l| l + 1);
    for (idx, line) in lines.iter().enumerate().skip(from) {
        let t = line.trim();
        if t.starts_with('[') {
            break;
        }
        if let Some((k, _)) = t.split_once('=') {
            let k = header_path(k.trim());
            if rest == k || rest.starts_with(&format!("{k}.")) {
                return Some(idx as u32 + 1);
            }
        }
    }
    table_line.map(|l| l as u32 + 1)
}
