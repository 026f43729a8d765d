//! A frame as text: a summary line, two lines per node (or the node's error), then
//! the ISPB table, largest backlog first, cut at `--top` rows. Unknown values — a
//! metric the node does not export, a rate before the second scrape — are `-`.

use std::fmt::Write;

use super::frame::{Frame, IspbRow, NodeRow, NodeStats};

/// The text of `frame`, headed by the wall-clock time `now` (UTC text) and `interval`.
pub fn render(frame: &Frame, now: &str, interval_secs: f64, top: usize) -> String {
    let mut text = summary(frame, now, interval_secs);
    for node in &frame.nodes {
        text.push_str(&node_lines(node));
    }
    text.push('\n');
    text.push_str(&table(&frame.ispbs, top));
    text
}

fn summary(frame: &Frame, now: &str, interval_secs: f64) -> String {
    let up = frame.nodes.iter().filter(|n| n.stats.is_ok()).count();
    let backlogs: Vec<Option<f64>> =
        frame.nodes.iter().filter_map(|n| n.stats.as_ref().ok()).map(|s| s.backlog).collect();
    let backlog = backlogs.iter().copied().sum::<Option<f64>>().filter(|_| !backlogs.is_empty());
    format!(
        "pixstream top  {now}  every {interval_secs}s  nodes up {up}/{}  ISPBs {}  backlog {}\n\n",
        frame.nodes.len(),
        frame.ispbs.len(),
        count(backlog)
    )
}

fn node_lines(node: &NodeRow) -> String {
    match &node.stats {
        Err(error) => format!("{}  UNREACHABLE  {error}\n", node.url),
        Ok(stats) => format!("{}  up  {}\n    {}\n", node.url, node_state(stats), node_rates(stats)),
    }
}

fn node_state(stats: &NodeStats) -> String {
    format!(
        "shards led/hosted {}/{}  leaderless {}  in-flight {}  cpu {}  rss {}  backlog {}",
        stats.led_shards,
        stats.hosted_shards,
        stats.leaderless_shards.map_or_else(|| "-".to_owned(), |n| n.to_string()),
        count(stats.in_flight),
        percent(stats.cpu_percent),
        mebibytes(stats.rss_bytes),
        count(stats.backlog),
    )
}

fn node_rates(stats: &NodeStats) -> String {
    let throttled = match &stats.throttled_per_s {
        None => "-".to_owned(),
        Some(causes) => {
            causes.iter().map(|(cause, r)| format!("{cause} {}", rate(Some(*r)))).collect::<Vec<_>>().join("  ")
        }
    };
    format!(
        "req/s {}  pulls/s {}  shed/s {}  throttled/s {throttled}",
        rate(stats.requests_per_s),
        rate(stats.pulls_per_s),
        rate(stats.shed_per_s)
    )
}

const HEADER: [&str; 7] = ["ISPB", "BACKLOG", "PULLS/S", "CONFIRMED/S", "LAG_S", "STREAMS", "BACK-PRESSURE"];

fn table(rows: &[IspbRow], top: usize) -> String {
    if rows.is_empty() {
        return "no ISPB reported (no tenants on the shards these nodes lead)\n".to_owned();
    }
    let mut text = table_line(&HEADER.map(str::to_owned));
    for row in rows.iter().take(top) {
        text.push_str(&table_line(&cells(row)));
    }
    if rows.len() > top {
        let _ = writeln!(text, "... {} more ISPBs", rows.len() - top);
    }
    text
}

fn cells(row: &IspbRow) -> [String; 7] {
    let streams = match (row.open_streams, row.stream_slots) {
        (None, None) => "-".to_owned(),
        (open, slots) => format!("{}/{}", count(open), count(slots)),
    };
    let pressure = row.back_pressure.map_or("-", |on| if on { "YES" } else { "no" });
    [
        row.ispb.clone(),
        count(Some(row.backlog)),
        rate(row.pulls_per_s),
        rate(row.confirmed_per_s),
        rate(row.lag_seconds),
        streams,
        pressure.to_owned(),
    ]
}

/// ISPB left-aligned, numbers right-aligned under their headings.
fn table_line(cells: &[String; 7]) -> String {
    let widths = [8, 9, 9, 13, 8, 9, 14];
    let mut line = format!("{:<8}", cells[0]);
    for (cell, width) in cells.iter().zip(widths).skip(1).take(5) {
        let _ = write!(line, "{cell:>width$}");
    }
    let _ = writeln!(line, "  {}", cells[6]);
    line
}

fn count(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"))
}

fn rate(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"))
}

fn percent(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}%"))
}

fn mebibytes(bytes: Option<f64>) -> String {
    bytes.map_or_else(|| "-".to_owned(), |b| format!("{:.1} MiB", b / (1024.0 * 1024.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_are_dashes_and_the_table_is_cut_at_top() {
        let row = |ispb: &str, backlog: f64| IspbRow { ispb: ispb.into(), backlog, ..IspbRow::default() };
        let frame = Frame {
            nodes: vec![
                NodeRow {
                    url: "http://a".into(),
                    stats: Ok(NodeStats { led_shards: 2, hosted_shards: 3, ..NodeStats::default() }),
                },
                NodeRow { url: "http://b".into(), stats: Err("connection refused".into()) },
            ],
            ispbs: vec![row("99999A03", 5.0), row("32074986", 3.0), row("11111111", 1.0)],
        };
        let text = render(&frame, "2026-01-01 00:00:00 UTC", 1.0, 2);
        assert!(text.contains("nodes up 1/2  ISPBs 3  backlog -"), "{text}");
        assert!(
            text.contains("http://a  up  shards led/hosted 2/3  leaderless -  in-flight -  cpu -  rss -"),
            "{text}"
        );
        assert!(text.contains("req/s -  pulls/s -  shed/s -  throttled/s -"), "{text}");
        assert!(text.contains("http://b  UNREACHABLE  connection refused"), "{text}");
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(|c: char| c.is_ascii_digit())).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["99999A03", "5", "-", "-", "-", "-", "-"]);
        assert!(text.contains("... 1 more ISPBs"), "{text}");
    }
}
