//! `pixstream top --once` against a real node: the binary scrapes the internal
//! listener's `/metrics` twice and prints one frame listing every ISPB with its
//! backlog, largest first; a node that cannot be reached is named as such while the
//! others still render.

use crate::harness::{ISPB, MULTI, OTHER_ISPB, TestNode, messages};

/// Runs `pixstream top --once` over `urls` (asynchronously: the node under test
/// shares this test's runtime). Returns success, stdout and stderr.
async fn top_once(urls: &[&str]) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_pixstream"));
    command.args(["top", "--once", "--interval", "0.3"]);
    for url in urls {
        command.args(["--url", url]);
    }
    let output = command.output().await.expect("the binary runs");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

/// The table's cells of `ispb`'s row, and the row's position among the table lines.
fn row(frame: &str, ispb: &str) -> (usize, Vec<String>) {
    let rows: Vec<&str> = frame.lines().skip_while(|l| !l.starts_with("ISPB ")).skip(1).collect();
    rows.iter()
        .enumerate()
        .find_map(|(at, line)| {
            let cells: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
            (cells.first().map(String::as_str) == Some(ispb)).then_some((at, cells))
        })
        .unwrap_or_else(|| panic!("no row for {ispb} in:\n{frame}"))
}

/// A URL nothing listens on: a port just bound and released.
fn closed_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_once_lists_every_ispb_with_its_backlog_largest_first() {
    let node = TestNode::start(|_| {}).await;
    node.append(ISPB, &messages(ISPB, 3)).await;
    node.append(OTHER_ISPB, &messages(OTHER_ISPB, 5)).await;
    let handed = node.start_stream(ISPB, MULTI).await;
    assert_eq!(handed.messages.len(), 3, "handed out, still unconfirmed");

    let (ok, frame, errors) = top_once(&[&node.internal]).await;
    assert!(ok, "{frame}{errors}");
    assert!(!frame.contains('\x1b'), "--once does not clear the screen: {frame:?}");
    assert!(frame.contains(&format!("{}  up  shards led/hosted ", node.internal)), "{frame}");
    assert!(frame.contains("nodes up 1/1  ISPBs 2  backlog 8"), "{frame}");
    let (other_at, other) = row(&frame, OTHER_ISPB);
    let (ispb_at, ispb) = row(&frame, ISPB);
    assert_eq!(other[1], "5", "{frame}");
    assert_eq!(ispb[1], "3", "{frame}");
    assert!(other_at < ispb_at, "largest backlog first:\n{frame}");
    assert_eq!(ispb[5], "1/6", "one open stream of six slots: {frame}");
    assert_eq!(ispb[6], "no", "no back-pressure: {frame}");
    assert_eq!(ispb[3], "0.0", "nothing confirmed between the scrapes: {frame}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_once_names_an_unreachable_node_and_still_renders_the_other() {
    let node = TestNode::start(|_| {}).await;
    node.append(ISPB, &messages(ISPB, 2)).await;
    node.append(OTHER_ISPB, &messages(OTHER_ISPB, 1)).await;
    let dead = closed_url();

    let (ok, frame, errors) = top_once(&[&node.internal, &dead]).await;
    assert!(ok, "one node answered: {frame}{errors}");
    assert!(frame.contains(&format!("{dead}  UNREACHABLE  GET /metrics: ")), "{frame}");
    assert!(frame.to_lowercase().contains("connection refused"), "the cause is named: {frame}");
    assert!(frame.contains(&format!("{}  up  ", node.internal)), "{frame}");
    assert!(frame.contains("nodes up 1/2"), "{frame}");
    assert_eq!(row(&frame, ISPB).1[1], "2", "{frame}");
    assert_eq!(row(&frame, OTHER_ISPB).1[1], "1", "{frame}");

    let (ok, frame, errors) = top_once(&[&dead]).await;
    assert!(!ok && errors.contains("no node answered"), "{frame}{errors}");
    assert!(frame.contains(&format!("{dead}  UNREACHABLE")), "the frame is printed anyway: {frame}");
    node.stop().await;
}
