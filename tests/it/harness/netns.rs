//! `Mesh`: network namespaces of our own for real processes, one per node, joined
//! pairwise by veth links, each also linked to this (the root) namespace so the
//! test reaches every node. No bridge: bridged traffic would cross the host's
//! iptables FORWARD chain (often DROP, with Docker). Node i listens on
//! `10.232.<tag>.i` (on its `lo`); routes pick the link to each peer, and `cut`
//! replaces a node's routes to and from its peers with `unreachable` ones, so the
//! node loses its peers but not the test. Everything is deleted on drop. Needs root.

use std::process::Command;

/// Runs `ip args…`, asserting success.
fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().expect("run ip");
    assert!(output.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr));
}

/// Namespaces `pxs<tag>n<i>` for nodes 1..=n.
pub struct Mesh {
    tag: u32,
    nodes: usize,
}

impl Mesh {
    /// Creates the namespaces and links for `nodes` nodes; `tag` comes from this
    /// process's id, so two test runs on one machine do not collide.
    pub fn create(nodes: usize) -> Mesh {
        let mesh = Mesh { tag: std::process::id() % 250, nodes };
        mesh.delete();
        for i in 1..=nodes {
            let ns = mesh.ns(i);
            ip(&["netns", "add", &ns]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
            ip(&["-n", &ns, "addr", "add", &format!("{}/32", mesh.addr(i)), "dev", "lo"]);
            // The link to the root namespace: a /30 per node.
            let (root_end, ns_end) = (mesh.link_addr(i, 1), mesh.link_addr(i, 2));
            let root_dev = format!("pxr{}n{i}", mesh.tag);
            ip(&["link", "add", &root_dev, "type", "veth", "peer", "name", "root0", "netns", &ns]);
            ip(&["addr", "add", &format!("{root_end}/30"), "dev", &root_dev]);
            ip(&["link", "set", &root_dev, "up"]);
            ip(&["-n", &ns, "addr", "add", &format!("{ns_end}/30"), "dev", "root0"]);
            ip(&["-n", &ns, "link", "set", "root0", "up"]);
            ip(&["-n", &ns, "route", "add", "default", "via", &root_end]);
            ip(&["route", "add", &format!("{}/32", mesh.addr(i)), "via", &ns_end]);
        }
        for i in 1..=nodes {
            for j in i + 1..=nodes {
                let (a, b) = (mesh.peer_dev(i, j), mesh.peer_dev(j, i));
                ip(&[
                    "link",
                    "add",
                    &a,
                    "netns",
                    &mesh.ns(i),
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &b,
                    "netns",
                    &mesh.ns(j),
                ]);
                ip(&["-n", &mesh.ns(i), "link", "set", &a, "up"]);
                ip(&["-n", &mesh.ns(j), "link", "set", &b, "up"]);
                mesh.route(i, j, false);
                mesh.route(j, i, false);
            }
        }
        mesh
    }

    /// The namespace of node `i`.
    pub fn ns(&self, i: usize) -> String {
        format!("pxs{}n{i}", self.tag)
    }

    /// The address node `i` listens on.
    pub fn addr(&self, i: usize) -> String {
        format!("10.232.{}.{i}", self.tag)
    }

    /// The launcher that runs a command in node `i`'s namespace.
    pub fn launcher(&self, i: usize) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.ns(i)]
    }

    /// Cuts node `i` off from every other node (the root namespace still reaches it).
    pub fn cut(&self, i: usize) {
        self.set_links(i, true);
    }

    /// Undoes `cut`.
    pub fn heal(&self, i: usize) {
        self.set_links(i, false);
    }

    fn set_links(&self, i: usize, unreachable: bool) {
        for j in (1..=self.nodes).filter(|j| *j != i) {
            self.route(i, j, unreachable);
            self.route(j, i, unreachable);
        }
    }

    /// In node `from`'s namespace: the route to node `to`, over their link or
    /// `unreachable`.
    fn route(&self, from: usize, to: usize, unreachable: bool) {
        let (ns, dst) = (self.ns(from), format!("{}/32", self.addr(to)));
        if unreachable {
            ip(&["-n", &ns, "route", "replace", "unreachable", &dst]);
        } else {
            let (dev, src) = (self.peer_dev(from, to), self.addr(from));
            ip(&["-n", &ns, "route", "replace", &dst, "dev", &dev, "src", &src]);
        }
    }

    /// The device in node `from`'s namespace that links it to node `to`.
    fn peer_dev(&self, from: usize, to: usize) -> String {
        format!("p{from}to{to}")
    }

    /// Address `end` (1: root side, 2: node side) of node `i`'s /30 to the root.
    fn link_addr(&self, i: usize, end: usize) -> String {
        format!("10.233.{}.{}", self.tag, 4 * i + end)
    }

    fn delete(&self) {
        for i in 1..=self.nodes {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(i)]).output();
            let _ = Command::new("ip").args(["link", "del", &format!("pxr{}n{i}", self.tag)]).output();
        }
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.delete();
    }
}
