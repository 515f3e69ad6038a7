//! Measuring helpers the benchmark examples share.

pub mod stamped;
pub mod stats;

use stats::report;

/// User plus system CPU time of a process (`self` or a pid), in milliseconds.
pub fn cpu_ms(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks * 10
}

/// Two views of each command's latency (ms): until the message reached the board's socket
/// (the kernel's receive timestamp: what a board on its own device would see), and until the
/// load generator, sharing the server's cores, read it.
pub fn report_both(name: &str, latencies: Vec<(f64, f64)>) {
    let (at_socket, read): (Vec<f64>, Vec<f64>) = latencies.into_iter().unzip();
    report(&format!("{name}, at the board's socket"), at_socket);
    report(&format!("{name}, as read by the generator"), read);
}
