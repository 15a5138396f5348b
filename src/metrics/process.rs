//! The process's own numbers, under the names every Prometheus client library uses
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`, ...), read from `/proc` at
//! scrape time. Their names and help texts are rows of the one table (`defs::PROCESS`).
//!
//! Written here rather than taken from the prometheus crate's `process` feature: that feature
//! brings the `procfs` crate family, a fifth of the service's build time on two cores, to read
//! three small text files.

use std::fs;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Counter, Gauge, IntGauge, Opts};

/// Clock ticks per second of the times in `/proc/<pid>/stat`: the kernel reports them in
/// USER_HZ, which is 100 on every architecture Linux runs on today (`getconf CLK_TCK`).
const USER_HZ: f64 = 100.0;

pub struct ProcessCollector {
    cpu_seconds: Counter,
    resident: IntGauge,
    virtual_memory: IntGauge,
    open_fds: IntGauge,
    max_fds: IntGauge,
    threads: IntGauge,
    start_time: Gauge,
    descs: Vec<Desc>,
}

impl ProcessCollector {
    pub fn new() -> prometheus::Result<Self> {
        use super::defs::*;
        let opts = |d: Def| Opts::new(d.name, d.help);
        let int = |d: Def| IntGauge::with_opts(opts(d));
        let collector = ProcessCollector {
            cpu_seconds: Counter::with_opts(opts(PROCESS_CPU_SECONDS))?,
            resident: int(PROCESS_RESIDENT_MEMORY)?,
            virtual_memory: int(PROCESS_VIRTUAL_MEMORY)?,
            open_fds: int(PROCESS_OPEN_FDS)?,
            max_fds: int(PROCESS_MAX_FDS)?,
            threads: int(PROCESS_THREADS)?,
            start_time: Gauge::with_opts(opts(PROCESS_START_TIME))?,
            descs: Vec::new(),
        };
        let mut descs = Vec::new();
        for c in collector.collectors() {
            descs.extend(c.desc().into_iter().cloned());
        }
        Ok(ProcessCollector { descs, ..collector })
    }

    fn collectors(&self) -> [&dyn Collector; 7] {
        [
            &self.cpu_seconds,
            &self.open_fds,
            &self.max_fds,
            &self.virtual_memory,
            &self.resident,
            &self.start_time,
            &self.threads,
        ]
    }

    /// Reads `/proc`; a file that cannot be read leaves its numbers as they were.
    fn refresh(&self) {
        if let Ok(status) = fs::read_to_string("/proc/self/status") {
            let kib = |field| status_field(&status, field).map(|kb| (kb * 1024) as i64);
            if let Some(v) = kib("VmRSS") {
                self.resident.set(v);
            }
            if let Some(v) = kib("VmSize") {
                self.virtual_memory.set(v);
            }
            if let Some(v) = status_field(&status, "Threads") {
                self.threads.set(v as i64);
            }
        }
        if let Ok(stat) = fs::read_to_string("/proc/self/stat") {
            if let Some(t) = StatTimes::parse(&stat) {
                // The kernel keeps the total; the counter moves up to it (two scrapes at once
                // may both see it behind, so never by a negative amount).
                let total = (t.utime + t.stime) as f64 / USER_HZ;
                let behind = total - self.cpu_seconds.get();
                if behind > 0.0 {
                    self.cpu_seconds.inc_by(behind);
                }
                if let Some(boot) = fs::read_to_string("/proc/stat")
                    .ok()
                    .and_then(|s| boot_time(&s))
                {
                    self.start_time
                        .set(boot as f64 + t.starttime as f64 / USER_HZ);
                }
            }
        }
        if let Ok(dir) = fs::read_dir("/proc/self/fd") {
            self.open_fds.set(dir.count() as i64);
        }
        if let Some(max) = fs::read_to_string("/proc/self/limits")
            .ok()
            .and_then(|s| max_open_files(&s))
        {
            self.max_fds.set(max as i64);
        }
    }
}

impl Collector for ProcessCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        self.collectors().iter().flat_map(|c| c.collect()).collect()
    }
}

/// `Name:   123 kB` lines of `/proc/self/status`: the number.
fn status_field(status: &str, name: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The fields of `/proc/self/stat` used here, in clock ticks.
#[derive(Debug, PartialEq)]
struct StatTimes {
    utime: u64,
    stime: u64,
    starttime: u64,
}

impl StatTimes {
    /// Fields are counted after the command name, which is in parentheses and may itself hold
    /// spaces and parentheses: split after the last `)`. There, field 3 (state) comes first.
    fn parse(stat: &str) -> Option<StatTimes> {
        let rest = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse().ok();
        Some(StatTimes {
            utime: field(14)?,
            stime: field(15)?,
            starttime: field(22)?,
        })
    }
}

/// `btime` of `/proc/stat`: the boot time, in seconds since the epoch.
fn boot_time(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

/// The soft limit of `Max open files` in `/proc/self/limits` (`None` when unlimited).
fn max_open_files(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_proc_formats() {
        let status = "Name:\trealstat\nVmSize:\t  123456 kB\nVmRSS:\t    2048 kB\nThreads:\t9\n";
        assert_eq!(status_field(status, "VmRSS"), Some(2048));
        assert_eq!(status_field(status, "VmSize"), Some(123456));
        assert_eq!(status_field(status, "Threads"), Some(9));
        assert_eq!(status_field(status, "VmSwap"), None);

        // A command name with spaces and parentheses does not shift the fields.
        let stat = "4242 (real stat) (x)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    250 75 0 0 20 0 9 0 123456 1000000 500 18446744073709551615";
        assert_eq!(
            StatTimes::parse(stat),
            Some(StatTimes {
                utime: 250,
                stime: 75,
                starttime: 123456
            })
        );
        assert_eq!(StatTimes::parse("4242 (x) S 1"), None);

        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1764547200\nprocesses 9\n"),
            Some(1764547200)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(
            max_open_files(
                "Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_has_plausible_numbers() {
        let c = ProcessCollector::new().expect("valid metrics");
        let families = c.collect();
        let value = |name: &str| {
            let f = families.iter().find(|f| f.name() == name).expect(name);
            let m = &f.get_metric()[0];
            match f.get_field_type() {
                prometheus::proto::MetricType::COUNTER => m.get_counter().get_value(),
                _ => m.get_gauge().get_value(),
            }
        };
        assert!(value("process_resident_memory_bytes") > 1_000_000.0);
        assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_threads") >= 1.0);
        assert!(value("process_cpu_seconds_total") >= 0.0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs_f64();
        let start = value("process_start_time_seconds");
        assert!(
            start > now - 86_400.0 && start <= now + 1.0,
            "{start} vs {now}"
        );
    }
}
