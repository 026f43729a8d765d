//! docs/operations.md against the code: every key `ConfigFile` accepts, in every
//! section and subsection, has a row in the operator's reference under its section's
//! heading, and every row there names a real key.
//!
//! The keys come from the code, not from a list kept here: `ConfigFile` and its
//! sections refuse unknown fields, and serde's refusal names every field the struct
//! has ("unknown field `x`, expected one of `a`, `b`"). Probing each section with an
//! unknown key lists its fields, `Option` ones included; probing each field with a
//! table (and with an array of tables) tells a subsection from a value. The example
//! `cluster.toml`, its commented-out sections uncommented, must deserialize into
//! `ConfigFile` too, so every key it shows is real, and each of its keys must be in
//! the reference as well.

#[cfg(test)]
mod docs_cover_every_key {
    use std::collections::{BTreeMap, BTreeSet};

    use crate::config::ConfigFile;

    const REFERENCE: &str = include_str!("../../docs/operations.md");
    const EXAMPLE: &str = include_str!("../../cluster.toml");
    /// The heading of the part of REFERENCE that documents the keys.
    const REFERENCE_PART: &str = "## Configuration reference";
    /// A key no section has.
    const PROBE: &str = "zz_not_a_config_key";

    /// One step of a key path: the key, and whether it holds an array of tables.
    type Step = (String, bool);

    /// A table of the file: its heading (`[tls.public]`, `[[nodes]]`), the keys that
    /// hold values, the keys that hold subtables, and the values each enum key takes.
    #[derive(Debug, Default)]
    struct Section {
        values: BTreeSet<String>,
        tables: BTreeSet<String>,
        variants: BTreeMap<String, Vec<String>>,
    }

    /// The heading of the table at `path` as TOML writes it; "" for the root.
    fn heading(path: &[Step]) -> String {
        let Some((_, array)) = path.last() else { return String::new() };
        let dotted = path.iter().map(|(key, _)| key.as_str()).collect::<Vec<_>>().join(".");
        if *array { format!("[[{dotted}]]") } else { format!("[{dotted}]") }
    }

    /// The error `ConfigFile` gives for a file holding only `PROBE = 0`, inside `path`.
    fn refusal(path: &[Step]) -> String {
        let mut value = toml::Value::Table(toml::Table::from_iter([(PROBE.to_owned(), toml::Value::Integer(0))]));
        for (key, array) in path.iter().rev() {
            let inner = if *array { toml::Value::Array(vec![value]) } else { value };
            value = toml::Value::Table(toml::Table::from_iter([(key.clone(), inner)]));
        }
        let text = toml::to_string(&value).expect("a probe serializes");
        match toml::from_str::<ConfigFile>(&text) {
            Ok(_) => panic!("ConfigFile accepted an unknown key:\n{text}"),
            Err(error) => error.message().to_owned(),
        }
    }

    /// The backquoted names after `expected` in a serde refusal.
    fn expected_names(message: &str) -> Vec<String> {
        let Some((_, list)) = message.split_once("expected") else { return Vec::new() };
        list.split('`').skip(1).step_by(2).map(str::to_owned).collect()
    }

    /// The fields of the struct at `path`, when `path` holds a struct.
    fn fields_at(path: &[Step]) -> Option<Vec<String>> {
        let message = refusal(path);
        assert!(
            !message.contains("missing field"),
            "`{}` took the unknown key `{PROBE}` without refusing it ({message}): every section \
             must have #[serde(deny_unknown_fields)], or this test cannot list its keys",
            heading(path)
        );
        message.contains(&format!("unknown field `{PROBE}`")).then(|| expected_names(&message))
    }

    /// Every table of `ConfigFile`, by heading, found by probing from the root.
    fn sections_of_the_code() -> BTreeMap<String, Section> {
        let mut sections = BTreeMap::new();
        let mut pending: Vec<Vec<Step>> = vec![Vec::new()];
        while let Some(path) = pending.pop() {
            assert!(path.len() < 8, "runaway nesting at {}", heading(&path));
            let fields = fields_at(&path).unwrap_or_else(|| panic!("`{}` is not a table", heading(&path)));
            let mut section = Section::default();
            for field in fields {
                let mut child = path.clone();
                child.push((field.clone(), false));
                if fields_at(&child).is_some() {
                    section.tables.insert(field);
                    pending.push(child);
                    continue;
                }
                child.last_mut().expect("just pushed").1 = true;
                if fields_at(&child).is_some() {
                    section.tables.insert(field);
                    pending.push(child);
                    continue;
                }
                child.last_mut().expect("just pushed").1 = false;
                let message = refusal(&child);
                if message.contains(&format!("unknown variant `{PROBE}`")) {
                    section.variants.insert(field.clone(), expected_names(&message));
                }
                section.values.insert(field);
            }
            sections.insert(heading(&path), section);
        }
        sections
    }

    /// Lines of `text` that are commented-out TOML: `# [section]` or `# key = value`.
    fn commented_out_toml(text: &str) -> String {
        let mut out = String::new();
        for line in text.lines() {
            let Some(body) = line.strip_prefix("# ") else { continue };
            let code = body.split(" #").next().unwrap_or(body).trim_end();
            let header = code.starts_with('[')
                && code.ends_with(']')
                && code.chars().all(|c| c.is_ascii_lowercase() || "_.[]".contains(c));
            let pair = code
                .split_once(" = ")
                .is_some_and(|(key, _)| !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            if header || pair {
                out.push_str(code);
                out.push('\n');
            }
        }
        out
    }

    /// `extra` merged into `base`, table by table.
    fn merge(base: &mut toml::Table, extra: toml::Table) {
        for (key, value) in extra {
            match (base.get_mut(&key), value) {
                (Some(toml::Value::Table(into)), toml::Value::Table(from)) => merge(into, from),
                (_, value) => {
                    base.insert(key, value);
                }
            }
        }
    }

    /// Every (heading, key) of `table` at `path`, arrays of tables by their items' keys.
    fn keys_of(table: &toml::Table, path: &mut Vec<Step>, out: &mut BTreeSet<(String, String)>) {
        for (key, value) in table {
            out.insert((heading(path), key.clone()));
            match value {
                toml::Value::Table(inner) => {
                    path.push((key.clone(), false));
                    keys_of(inner, path, out);
                    path.pop();
                }
                toml::Value::Array(items) if items.iter().all(toml::Value::is_table) && !items.is_empty() => {
                    path.push((key.clone(), true));
                    for item in items.iter().filter_map(toml::Value::as_table) {
                        keys_of(item, path, out);
                    }
                    path.pop();
                }
                _ => {}
            }
        }
    }

    /// The example file with its commented-out sections: it must be a `ConfigFile`.
    fn keys_of_the_example() -> BTreeSet<(String, String)> {
        let mut example: toml::Table = toml::from_str(EXAMPLE).expect("cluster.toml is TOML");
        let commented: toml::Table =
            toml::from_str(&commented_out_toml(EXAMPLE)).expect("the commented-out sections of cluster.toml are TOML");
        merge(&mut example, commented);
        let text = toml::to_string(&example).expect("serializes");
        if let Err(error) = toml::from_str::<ConfigFile>(&text) {
            panic!("cluster.toml, with its commented-out sections, shows a key ConfigFile does not have: {error}");
        }
        let mut keys = BTreeSet::new();
        keys_of(&example, &mut Vec::new(), &mut keys);
        keys
    }

    /// The reference's tables: heading → key → its row.
    fn reference_rows() -> BTreeMap<String, BTreeMap<String, String>> {
        let start = REFERENCE.find(REFERENCE_PART).expect("docs/operations.md has its configuration reference");
        let part = &REFERENCE[start + REFERENCE_PART.len()..];
        let part = part.find("\n## ").map_or(part, |end| &part[..end]);
        let mut rows: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut current = String::new();
        for line in part.lines() {
            if line.starts_with('#') {
                // A heading that names no `[section]` keeps its rows apart: the second
                // test reports it.
                let heading = line.split('`').nth(1).filter(|h| h.starts_with('['));
                current = heading.map_or_else(|| format!("heading {line:?}"), str::to_owned);
                rows.entry(current.clone()).or_default();
            } else if let Some(cells) = line.strip_prefix('|') {
                let first = cells.split('|').next().unwrap_or_default().trim();
                if let Some(key) = first.strip_prefix('`').and_then(|k| k.strip_suffix('`')) {
                    rows.entry(current.clone()).or_default().insert(key.to_owned(), line.to_owned());
                }
            }
        }
        rows
    }

    #[test]
    fn every_config_key_is_in_the_operations_reference() {
        let code = sections_of_the_code();
        assert!(code[""].tables.contains("tenants") && code["[tenants]"].values.contains("max_backlog"));
        assert!(code["[tls.public]"].variants["client_auth"].contains(&"required".to_owned()));
        let rows = reference_rows();
        let mut missing = Vec::new();
        for (heading, section) in &code {
            let documented = rows.get(heading);
            if !heading.is_empty() && documented.is_none() {
                missing.push(format!("no heading naming `{heading}`"));
            }
            for key in &section.values {
                match documented.and_then(|keys| keys.get(key)) {
                    None => missing.push(format!("no row for `{key}` under `{heading}`")),
                    Some(row) => {
                        for variant in section.variants.get(key).into_iter().flatten() {
                            if !row.contains(&format!("`{variant}`")) {
                                missing.push(format!("the row of `{key}` under `{heading}` omits `{variant}`"));
                            }
                        }
                    }
                }
            }
        }
        for (heading, key) in keys_of_the_example() {
            if !rows.get(&heading).is_some_and(|keys| keys.contains_key(&key)) && !code[&heading].tables.contains(&key)
            {
                missing.push(format!("no row for `{key}` (in cluster.toml) under `{heading}`"));
            }
        }
        assert!(missing.is_empty(), "docs/operations.md, {REFERENCE_PART}:\n  {}", missing.join("\n  "));
    }

    #[test]
    fn the_operations_reference_names_no_key_the_code_lacks() {
        let code = sections_of_the_code();
        let mut unknown = Vec::new();
        for (heading, keys) in reference_rows() {
            let Some(section) = code.get(&heading) else {
                unknown.push(format!("`{heading}` is no section of ConfigFile"));
                continue;
            };
            for key in keys.keys() {
                if !section.values.contains(key) && !section.tables.contains(key) {
                    unknown.push(format!("`{key}` under `{heading}` is no key of that section"));
                }
            }
        }
        assert!(unknown.is_empty(), "docs/operations.md, {REFERENCE_PART}:\n  {}", unknown.join("\n  "));
    }
}
