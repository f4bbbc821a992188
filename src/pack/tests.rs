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
    assert_eq!(issues.len(), 2, "{issues:#?}");
    let unknown = issues
        .iter()
        .find(|i| i.path == "providers.ds.display_nam")
        .unwrap();
    assert_eq!(unknown.line, Some(6));
    assert_eq!(unknown.message, "is not a field of a provider");
    assert!(unknown.expected.contains("display_name"));
    let missing = issues
        .iter()
        .find(|i| i.path == "providers.ds.display_name")
        .unwrap();
    assert_eq!(missing.message, "is missing");
    // Not YAML at all: the parser's message, without its own position prefix.
    let broken = "schema: 1\nid: [unclosed\n";
    let issues = parse(broken, None).unwrap_err();
    assert_eq!(issues[0].path, "(syntax)");
    assert!(issues[0].line.is_some(), "{:?}", issues[0]);
    assert!(!issues[0].message.starts_with("error:"), "{:?}", issues[0]);
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

#[test]
fn type_errors_and_value_errors_are_reported_together_in_line_order() {
    let bad = GOOD_YAML
        .replace("schema: 1", "schema: one")
        .replace("smoke_model: deepseek-flash", "smoke_model: deepseek-chat")
        .replace("currency: USD", "currency: EUR")
        .replace("input: 0.3", "input: cheap")
        .replace("output: 1.2", "output: -1");
    let issues = parse(&bad, None).unwrap_err();
    let at = |p: &str| {
        issues
            .iter()
            .find(|i| i.path == p)
            .unwrap_or_else(|| panic!("no issue at {p}: {issues:#?}"))
    };
    let schema = at("schema");
    assert_eq!(
        (schema.line, schema.message.as_str()),
        (Some(1), "is the text \"one\"")
    );
    assert!(schema.expected.contains("whole number"));
    let currency = at("providers.ds.models.deepseek-flash.price.currency");
    assert_eq!(currency.line, Some(13));
    assert_eq!(currency.message, "is the text \"EUR\"");
    assert_eq!(currency.expected, "one of: USD, CNY");
    let input = at("providers.ds.models.deepseek-flash.price.input");
    assert_eq!(input.line, Some(14));
    assert!(input.expected.starts_with("a number"));
    // The value checks still ran on the rest.
    assert_eq!(at("providers.ds.smoke_model").line, Some(9));
    assert_eq!(
        at("providers.ds.models.deepseek-flash.price.output").line,
        Some(15)
    );
    assert_eq!(issues.len(), 5, "{issues:#?}");
    let lines: Vec<u32> = issues.iter().map(|i| i.line.unwrap()).collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "in line order");
    // TOML too, dates read as text.
    let toml_bad = "schema = 1\nid = \"t\"\nname = \"T\"\n\n[providers.ds]\ndisplay_name = \"DS\"\nbase_url = \"https://x.example\"\nsmoke_model = \"m\"\n\n[providers.ds.models.m.price]\ncurrency = \"EUR\"\ninput = 0.3\noutput = 1.2\nsource = \"s\"\nverified = 2026-11-01\n";
    let issues = parse(toml_bad, None).unwrap_err();
    assert_eq!(issues.len(), 1, "{issues:#?}");
    assert_eq!(issues[0].path, "providers.ds.models.m.price.currency");
}

#[test]
fn the_shape_check_knows_every_field_of_the_pack_types() {
    // Every optional field set: a field added to the types but not to the
    // shape is reported as unknown here.
    let mut pack = parse(GOOD_YAML, None).unwrap().pack;
    pack.exchange_rate = Some(crate::model::ExchangeRate {
        cny_per_usd: 7.1,
        source: "s".into(),
        date: "2026-11-01".into(),
    });
    let p = pack.providers.get_mut("ds").unwrap();
    p.api_family = Some("deepseek".into());
    p.native_base_url = Some("https://n.example".into());
    p.group.name = Some("g".into());
    p.group.daily_limit_usd = Some(1.0);
    p.group.weekly_limit_usd = Some(1.0);
    p.group.monthly_limit_usd = Some(1.0);
    p.group.exclusive = true;
    let m = p.models.get_mut("deepseek-flash").unwrap();
    m.upstream = Some("u".into());
    m.price.cache_read = Some(0.1);
    let mut tree = serde_json::to_value(&pack).unwrap();
    let before = tree.clone();
    let mut found = Vec::new();
    shape::check(&mut tree, &shape::pack(), "", &mut found);
    assert_eq!(found, vec![], "the shape has every field");
    assert_eq!(tree, before, "nothing repaired");
    for (name, text) in builtin() {
        let mut tree: Value = serde_saphyr::from_str(text).unwrap();
        let mut found = Vec::new();
        shape::check(&mut tree, &shape::pack(), "", &mut found);
        assert_eq!(found, vec![], "{name}");
    }
}
