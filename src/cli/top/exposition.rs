//! A reader of the Prometheus text exposition format (what `GET /metrics` serves):
//! `# TYPE` comments record which families a node declares, other comments are
//! skipped, and every sample line becomes a `Sample` — name, labels with their
//! escapes (`\\`, `\"`, `\n`) undone, value (`NaN`, `+Inf`, `-Inf` included); an
//! optional timestamp is ignored. Histogram and summary series are plain samples
//! here (`_bucket{le="+Inf"}`, `_sum`, `_count`).

use std::collections::BTreeSet;

/// Label names and values, in the order of the line.
pub type Labels = Vec<(String, String)>;

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: Labels,
    pub value: f64,
}

impl Sample {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// A malformed line: its number (from 1) and what is wrong with it.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    pub line: usize,
    pub reason: String,
}

/// Every sample of one exposition, and the families it declares with `# TYPE`.
#[derive(Debug, Default)]
pub struct Exposition {
    pub samples: Vec<Sample>,
    declared: BTreeSet<String>,
}

impl Exposition {
    /// Reads a whole exposition; the first malformed line is an error.
    pub fn parse(text: &str) -> Result<Exposition, ParseError> {
        let mut exposition = Exposition::default();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if let Some(comment) = line.strip_prefix('#') {
                exposition.declared.extend(declared_family(comment));
            } else if !line.is_empty() {
                let sample = parse_sample(line).map_err(|reason| ParseError { line: index + 1, reason })?;
                exposition.samples.push(sample);
            }
        }
        Ok(exposition)
    }

    /// The samples named `name`.
    pub fn series<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The value of the first sample named `name`.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.series(name).next().map(|s| s.value)
    }

    /// The sum over every sample named `name`, `None` when there is none.
    pub fn sum(&self, name: &str) -> Option<f64> {
        self.series(name).map(|s| s.value).reduce(|a, b| a + b)
    }

    /// Whether a `# TYPE` line names `name`: a labelled counter with no series yet is
    /// declared but has no samples, so it counts as zero rather than as unknown.
    pub fn declares(&self, name: &str) -> bool {
        self.declared.contains(name)
    }
}

/// The family a `# TYPE name kind` comment declares (text after the `#`).
fn declared_family(comment: &str) -> Option<String> {
    let mut words = comment.split_whitespace();
    (words.next()? == "TYPE").then_some(())?;
    words.next().map(str::to_owned)
}

/// `name{labels} value [timestamp]`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace()).unwrap_or(line.len());
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inside) = rest.strip_prefix('{') {
        let (parsed, after) = parse_labels(inside)?;
        labels = parsed;
        rest = after;
    }
    let mut fields = rest.split_whitespace();
    let value = fields.next().ok_or("no value")?;
    let value = parse_value(value).ok_or_else(|| format!("bad value {value:?}"))?;
    match (fields.next(), fields.next()) {
        (None, _) => {}
        (Some(timestamp), None) if timestamp.parse::<i64>().is_ok() => {}
        _ => return Err("unexpected text after the value".into()),
    }
    Ok(Sample { name: name.to_owned(), labels, value })
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The labels after `{` up to the closing `}`, and the text after it.
fn parse_labels(mut text: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(after) = text.strip_prefix('}') {
            return Ok((labels, after));
        }
        let (key, after_key) = text.split_once('=').ok_or("label without '='")?;
        let key = key.trim();
        if !valid_name(key) || key.contains(':') {
            return Err(format!("bad label name {key:?}"));
        }
        let quoted = after_key.trim_start().strip_prefix('"').ok_or("label value not quoted")?;
        let (value, after_value) = parse_quoted(quoted)?;
        labels.push((key.to_owned(), value));
        let after_value = after_value.trim_start();
        text = after_value.strip_prefix(',').unwrap_or(after_value);
        if !after_value.starts_with([',', '}']) {
            return Err("expected ',' or '}' after a label".into());
        }
    }
}

/// A label value after its opening quote, unescaped, and the text after its closing quote.
fn parse_quoted(text: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = text.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &text[at + 1..])),
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('n') => value.push('\n'),
                Some(e @ ('\\' | '"')) => value.push(e),
                other => return Err(format!("bad escape \\{}", other.map(String::from).unwrap_or_default())),
            },
            c => value.push(c),
        }
    }
    Err("unterminated label value".into())
}

/// A sample value: a float, `NaN`, `+Inf` or `-Inf`.
fn parse_value(text: &str) -> Option<f64> {
    match text {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ if text.bytes().all(|b| b.is_ascii_digit() || b".eE+-".contains(&b)) => text.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn only(text: &str) -> Sample {
        let exposition = Exposition::parse(text).expect("parses");
        assert_eq!(exposition.samples.len(), 1, "{:?}", exposition.samples);
        exposition.samples[0].clone()
    }

    #[test]
    fn a_plain_sample_and_a_labelled_one() {
        let text = "pixstream_backlog 12\npixstream_ispb_backlog{ispb=\"32074986\"} 3\n";
        let exposition = Exposition::parse(text).expect("parses");
        assert_eq!(exposition.value("pixstream_backlog"), Some(12.0));
        let labelled = exposition.series("pixstream_ispb_backlog").next().expect("a series");
        assert_eq!(labelled.label("ispb"), Some("32074986"));
        assert_eq!(labelled.value, 3.0);
    }

    #[test]
    fn escaped_quotes_backslashes_and_newlines_in_label_values() {
        let sample = only(r#"x{path="C:\\dir",say="he said \"hi\"",lines="a\nb"} 1"#);
        assert_eq!(sample.label("path"), Some(r"C:\dir"));
        assert_eq!(sample.label("say"), Some(r#"he said "hi""#));
        assert_eq!(sample.label("lines"), Some("a\nb"));
    }

    #[test]
    fn braces_commas_and_spaces_inside_a_label_value_are_text() {
        let sample = only(r#"x{a="}, {b=\"c\"}", d = "e" ,} 2 1700000000000"#);
        assert_eq!(sample.labels, vec![("a".into(), r#"}, {b="c"}"#.into()), ("d".into(), "e".into())]);
        assert_eq!(sample.value, 2.0);
    }

    #[test]
    fn comments_and_blank_lines_are_skipped_and_types_recorded() {
        let text = "# HELP pixstream_throttled_total Refusals by cause\n\
                    # TYPE pixstream_throttled_total counter\n\
                    \n\
                    # a free comment\n\
                    pixstream_up 1\n";
        let exposition = Exposition::parse(text).expect("parses");
        assert_eq!(exposition.samples.len(), 1);
        assert!(exposition.declares("pixstream_throttled_total"), "declared without series");
        assert_eq!(exposition.sum("pixstream_throttled_total"), None, "but has no samples");
        assert!(!exposition.declares("pixstream_up"));
    }

    #[test]
    fn histograms_are_buckets_sum_and_count() {
        let text = "# TYPE d histogram\n\
                    d_bucket{route=\"append\",le=\"0.5\"} 2\n\
                    d_bucket{route=\"append\",le=\"+Inf\"} 3\n\
                    d_sum{route=\"append\"} 0.75\n\
                    d_count{route=\"append\"} 3\n";
        let exposition = Exposition::parse(text).expect("parses");
        let infinite = exposition.series("d_bucket").find(|s| s.label("le") == Some("+Inf")).expect("+Inf bucket");
        assert_eq!(infinite.value, 3.0);
        assert_eq!(exposition.sum("d_bucket"), Some(5.0));
        assert_eq!(exposition.value("d_sum"), Some(0.75));
        assert_eq!(exposition.value("d_count"), Some(3.0));
    }

    #[test]
    fn nan_and_infinities_and_exponents_are_values() {
        assert!(only("x NaN").value.is_nan());
        assert_eq!(only("x +Inf").value, f64::INFINITY);
        assert_eq!(only("x -Inf").value, f64::NEG_INFINITY);
        assert_eq!(only("x 1.5e3").value, 1500.0);
        assert_eq!(only("x -0.25").value, -0.25);
    }

    #[test]
    fn malformed_lines_name_their_line() {
        for bad in ["x", "x{a=\"1\" 2", "x{a=1} 2", "x{a=\"\\q\"} 2", "x one", "x 1 2 3", "1x 2", "x{a=\"1\"b=\"2\"} 3"]
        {
            let error = Exposition::parse(&format!("ok 1\n{bad}\n")).expect_err(bad);
            assert_eq!(error.line, 2, "{bad}: {error}");
        }
    }
}
