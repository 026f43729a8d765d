//! The process's own CPU time, resident memory, context switches and I/O system
//! calls, read from `/proc/self` (Linux).

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

/// Context switches of every thread so far: (voluntary, involuntary). A voluntary
/// one is a thread going to sleep — each wake-up of a parked worker costs one.
pub fn context_switches() -> Option<(u64, u64)> {
    let mut voluntary = 0;
    let mut involuntary = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
        voluntary += field(&status, "voluntary_ctxt_switches:").unwrap_or(0);
        involuntary += field(&status, "nonvoluntary_ctxt_switches:").unwrap_or(0);
    }
    Some((voluntary, involuntary))
}

/// Read- and write-family system calls so far that passed the file layer (`syscr`,
/// `syscw` of `/proc/self/io`: files, eventfds, socket `writev`; not `recv`/`send`).
pub fn io_syscalls() -> Option<(u64, u64)> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    Some((field(&io, "syscr:")?, field(&io, "syscw:")?))
}

fn field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix(name)).and_then(|rest| rest.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_process_counts_its_context_switches_and_system_calls() {
        // Threads of other tests come and go, so the sum over threads may fall: a
        // sleep is checked on this thread alone.
        let this_thread = || {
            let status = std::fs::read_to_string("/proc/thread-self/status").expect("status");
            super::field(&status, "voluntary_ctxt_switches:").expect("field")
        };
        let before = this_thread();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(this_thread() > before, "a sleep is a voluntary switch");
        assert!(super::context_switches().expect("/proc/self/task").0 > 0);
        let (reads, writes) = super::io_syscalls().expect("/proc/self/io");
        let _ = std::fs::read("/proc/self/stat").expect("read");
        assert!(super::io_syscalls().expect("again").0 > reads, "reads counted, writes {writes}");
    }

    #[test]
    fn the_process_reads_its_own_cpu_and_memory() {
        let (cpu, rss) = super::cpu_and_rss().expect("/proc/self/stat");
        assert!(cpu >= 0.0 && rss > 1 << 20, "cpu {cpu} s, rss {rss} B");
    }
}
