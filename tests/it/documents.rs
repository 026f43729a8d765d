//! The README is the way in: every document of the repository is one link away.

use std::path::Path;

/// Every Markdown and OpenAPI document under `docs/` (runbooks are reached through
/// their index), and the top-level ones.
fn documents(root: &Path) -> Vec<String> {
    let mut found = vec!["ARCHITECTURE.md".to_owned(), "cluster.toml".to_owned()];
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("docs readable") {
            let path = entry.expect("entry").path();
            let relative = path.strip_prefix(root).expect("under the root").to_string_lossy().into_owned();
            if path.is_dir() {
                if !relative.ends_with("runbooks") {
                    dirs.push(path);
                }
            } else if relative.ends_with(".md") || relative.ends_with(".yaml") {
                found.push(relative);
            }
        }
    }
    found.push("docs/runbooks/README.md".to_owned());
    found.sort();
    found
}

#[test]
fn the_readme_links_every_document_and_every_link_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("README");
    let links: Vec<&str> = readme.split("](").skip(1).filter_map(|rest| rest.split(')').next()).collect();
    for document in documents(root) {
        assert!(links.contains(&document.as_str()), "README.md does not link {document}");
    }
    for link in links.iter().filter(|l| !l.starts_with("http")) {
        assert!(root.join(link).exists(), "README.md links {link}, which does not exist");
    }
}
