//! Memory of the fold: bytes per tracked call and per task, for `scripts/bench`.
//!
//! Builds a store the way a live stream does (round robin over the tasks), through the
//! production `Store::apply`, and measures twice: the process's resident set (`VmRSS`, what the
//! pod limit sees) and the live heap bytes (a counting global allocator: exact, independent of
//! the allocator's page reuse).
//!
//! 1. `--tasks` tasks (default 10 000) with their plan and one call each: bytes per task.
//! 2. Then the remaining calls, up to `--calls` in total (default 1 000 000): bytes per call.
//!
//! Then, for information, the heap bytes per call at other task sizes (a task's call table
//! grows by doubling, so the cost per call depends on where the count falls).
//!
//! ```text
//! cargo run --release --example bench_memory -- [--tasks 10000] [--calls 1000000]
//! cargo run --release --example bench_memory -- --flood 300000
//! ```
//!
//! `--flood N` instead measures the state bound: N events each starting a new task (a faulty
//! producer inventing task ids) into a store with the service's default limits.

#[path = "../benches/support/mod.rs"]
mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use support::*;

/// The system allocator, counting the bytes currently allocated.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
            LIVE.fetch_add(new_size, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn heap() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn rss() -> u64 {
    proc_status_bytes("VmRSS")
}

fn report(name: &str, value: f64) {
    println!("BENCH {name} {value}");
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} {v}: not a number"))
        })
        .unwrap_or(default)
}

/// N one-call tasks into a store with the service's default policy (its limits).
fn flood(n: usize) {
    let policy = realstat::config::Settings::default().fold_policy();
    let store = realstat::fold::Store::new(
        realstat::fold::Calendar::named(TIMEZONE).expect("known time zone"),
        policy,
    );
    let now = now_ms();
    let (rss0, heap0) = (rss(), heap());
    let mut refused = 0u64;
    for t in 0..n {
        let applied = store.apply(&synthetic_call(t, 0, 1, now), now);
        refused += u64::from(applied == realstat::fold::Applied::TaskLimit);
    }
    let (rss1, heap1) = (rss(), heap());
    println!(
        "  flood of {n} new tasks, limit {} tasks: {} tracked, {refused} refused; \
         RSS +{:.1} MB, heap +{:.1} MB",
        policy.max_tasks,
        store.tasks_tracked(),
        rss1.saturating_sub(rss0) as f64 / 1e6,
        heap1.saturating_sub(heap0) as f64 / 1e6,
    );
    report("mem_flood_tasks_tracked", store.tasks_tracked() as f64);
    report("mem_flood_rss_bytes", rss1.saturating_sub(rss0) as f64);
    report("mem_flood_heap_bytes", heap1.saturating_sub(heap0) as f64);
}

fn main() {
    let flood_n = arg("--flood", 0);
    if flood_n > 0 {
        flood(flood_n);
        return;
    }
    let tasks = arg("--tasks", 10_000).max(1);
    let calls = arg("--calls", 1_000_000).max(tasks);
    let per_task = calls / tasks;
    let now = now_ms();

    let store = new_store();
    let (rss0, heap0) = (rss(), heap());
    for t in 0..tasks {
        store.apply(&synthetic_plan(t, now), now);
        store.apply(&synthetic_call(t, 0, per_task, now), now);
    }
    let (rss1, heap1) = (rss(), heap());
    for c in 1..per_task {
        for t in 0..tasks {
            store.apply(&synthetic_call(t, c, per_task, now), now);
        }
    }
    let (rss2, heap2) = (rss(), heap());
    let n_calls = store.calls_tracked() as f64;
    assert_eq!(n_calls as usize, per_task * tasks, "every call tracked");
    let later = (n_calls - tasks as f64).max(1.0);

    let d = |a: u64, b: u64| b.saturating_sub(a) as f64;
    let dh = |a: usize, b: usize| b.saturating_sub(a) as f64;
    println!(
        "  {tasks} tasks, {} calls ({per_task} per task):",
        n_calls as u64
    );
    println!(
        "  per task (with its plan and first call): RSS {:.0} B, heap {:.0} B",
        d(rss0, rss1) / tasks as f64,
        dh(heap0, heap1) / tasks as f64
    );
    println!(
        "  per further call: RSS {:.1} B, heap {:.1} B",
        d(rss1, rss2) / later,
        dh(heap1, heap2) / later
    );
    println!(
        "  whole store: RSS {:.1} MB, heap {:.1} MB ({:.1} B per call all included)",
        d(rss0, rss2) / 1e6,
        dh(heap0, heap2) / 1e6,
        dh(heap0, heap2) / n_calls
    );
    report("mem_task_rss_bytes", d(rss0, rss1) / tasks as f64);
    report("mem_task_heap_bytes", dh(heap0, heap1) / tasks as f64);
    report("mem_call_rss_bytes", d(rss1, rss2) / later);
    report("mem_call_heap_bytes", dh(heap1, heap2) / later);
    report("mem_call_all_in_heap_bytes", dh(heap0, heap2) / n_calls);
    drop(store);

    // How the cost per call varies with the calls per task, at the same total.
    let mut sweep = Vec::new();
    for per in [10, 30, 57, 100, 200, 1000] {
        let tasks = (calls / per).max(1);
        let before = heap();
        let store = synthetic_store(tasks, per);
        let bytes = heap().saturating_sub(before) as f64 / store.calls_tracked() as f64;
        sweep.push(format!("{per}: {bytes:.0}"));
        drop(store);
    }
    println!(
        "  heap bytes per call, all included, by calls per task: {}",
        sweep.join(", ")
    );
    report("mem_peak_rss_bytes", proc_status_bytes("VmHWM") as f64);
}
