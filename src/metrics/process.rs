//! The process's own CPU time and resident memory, read from `/proc/self` (Linux).

/// (CPU seconds, user + system; resident bytes), when `/proc` can be read.
pub fn cpu_and_rss() -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let rss_pages: u64 = fields.get(21)?.parse().ok()?;
    // The kernel's USER_HZ is 100 on every Linux build that matters here; pages 4 KiB.
    Some((ticks as f64 / 100.0, rss_pages * 4096))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_process_reads_its_own_cpu_and_memory() {
        let (cpu, rss) = super::cpu_and_rss().expect("/proc/self/stat");
        assert!(cpu >= 0.0 && rss > 1 << 20, "cpu {cpu} s, rss {rss} B");
    }
}
