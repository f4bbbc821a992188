use super::*;
use crate::model::AccessMode;

const GOOD_YAML: &str = "schema: 1
id: test-pack
name: Test
providers:
  ds:
    display_name: DS
    native_platform: deepseek
    base_url: https://api.deepseek.com
    smoke_model: deepseek-flash
    models:
      deepseek-flash:
        price:
          currency: USD
          input: 0.3
          output: 1.2
          source: https://example.com/p
          verified: 2026-11-01
";

#[test]
fn every_builtin_pack_is_valid_and_covers_the_main_providers() {
    for (name, text) in builtin() {
        let p = parse(text, None).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        for k in [
            "deepseek",
            "minimax",
            "kimi",
            "zhipu",
            "qwen",
            "doubao",
            "siliconflow",
        ] {
            let prov = p
                .pack
                .providers
                .get(k)
                .unwrap_or_else(|| panic!("{name} lacks {k}"));
            assert!(prov.models.contains_key(&prov.smoke_model));
            for m in prov.models.values() {
                assert!(!m.price.source.is_empty());
            }
        }
    }
}

#[test]
fn yaml_and_toml_of_the_same_pack_hash_the_same() {
    let toml_text = r#"schema = 1
id = "test-pack"
name = "Test"

[providers.ds]
display_name = "DS"
native_platform = "deepseek"
base_url = "https://api.deepseek.com"
smoke_model = "deepseek-flash"

[providers.ds.models.deepseek-flash.price]
currency = "USD"
input = 0.3
output = 1.2
source = "https://example.com/p"
verified = "2026-11-01"
"#;
    let a = parse(GOOD_YAML, None).unwrap();
    let b = parse(toml_text, None).unwrap();
    assert_eq!(a.format, Format::Yaml);
    assert_eq!(b.format, Format::Toml);
    assert_eq!(a.hash, b.hash);
    let ds = &a.pack.providers["ds"];
    assert_eq!(ds.access.mode, AccessMode::SelfService, "defaults apply");
    assert!(ds.channel.restrict_models);
}

#[test]
fn semantic_problems_are_all_reported_with_path_and_line() {
    let bad = GOOD_YAML
        .replace("smoke_model: deepseek-flash", "smoke_model: deepseek-chat")
        .replace("input: 0.3", "input: -1")
        .replace("currency: USD", "currency: CNY")
        .replace("verified: 2026-11-01", "verified: last week");
    let issues = parse(&bad, None).unwrap_err();
    let find = |p: &str| {
        issues
            .iter()
            .find(|i| i.path == p)
            .unwrap_or_else(|| panic!("no issue at {p}: {issues:#?}"))
    };
    let smoke = find("providers.ds.smoke_model");
    assert_eq!(smoke.line, Some(9));
    assert!(smoke.expected.contains("deepseek-flash"));
    let input = find("providers.ds.models.deepseek-flash.price.input");
    assert_eq!(input.line, Some(14));
    assert!(input.expected.contains("≥ 0"));
    assert_eq!(
        find("providers.ds.models.deepseek-flash.price.currency").line,
        Some(13)
    );
    assert_eq!(
        find("providers.ds.models.deepseek-flash.price.verified").line,
        Some(17)
    );
    assert_eq!(issues.len(), 4, "{issues:#?}");
}

#[test]
fn syntax_and_type_errors_carry_the_line() {
    let typo = GOOD_YAML.replace("display_name: DS", "display_nam: DS");
    let issues = parse(&typo, None).unwrap_err();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].path, "(syntax)");
    assert!(issues[0].message.contains("display_nam"), "{:?}", issues[0]);
    assert!(issues[0].line.is_some(), "{:?}", issues[0]);
    let toml_bad = "schema = 1\nid = \"x\"\nname = \n";
    let issues = parse(toml_bad, None).unwrap_err();
    assert_eq!(issues[0].line, Some(3), "{:?}", issues[0]);
}

#[test]
fn keys_with_dots_are_located() {
    let text = builtin()[0].1;
    let line =
        locate::line_of(text, Format::Yaml, "providers.minimax.models.MiniMax-M2.7").unwrap();
    assert!(text
        .lines()
        .nth(line as usize - 1)
        .unwrap()
        .trim()
        .starts_with("MiniMax-M2.7:"));
    let price = locate::line_of(
        text,
        Format::Yaml,
        "providers.minimax.models.MiniMax-M2.7.price.input",
    )
    .unwrap();
    assert_eq!(price, line + 1, "a flow mapping field points at its line");
}

#[test]
fn diff_lists_changed_paths() {
    let a = parse(GOOD_YAML, None).unwrap().pack;
    let b = parse(&GOOD_YAML.replace("output: 1.2", "output: 2.4"), None)
        .unwrap()
        .pack;
    let d = diff(&a, &b);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].path, "providers.ds.models.deepseek-flash.price.output");
    assert_eq!(d[0].old.as_deref(), Some("1.2"));
    assert_eq!(d[0].new.as_deref(), Some("2.4"));
}

#[test]
fn oversized_and_empty_packs_are_refused() {
    assert_eq!(parse("", None).unwrap_err()[0].message, "is empty");
    let big = "#".repeat(MAX_PACK_BYTES + 1);
    assert!(parse(&big, None).unwrap_err()[0]
        .expected
        .contains("at most"));
}
