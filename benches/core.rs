//! Criterion benchmarks of the hot paths, each on one core:
//!
//! - `ingest/*`: decoding and folding realistic iSales events (about 190 bytes of JSON each, from
//!   the project's own simulator), reported in events per second.
//! - `request/*`: the work of one realstatistic request outside the HTTP stack: C2 verification,
//!   body parsing, the store lookup, building and serializing the response.
//! - `snapshot/*`: encoding and restoring a snapshot of 1 million calls over 10 000 tasks.
//!
//! `cargo bench --bench core` runs them all (`scripts/bench` runs them with shorter measurement
//! times, next to the end-to-end figures). A filter narrows the run: `cargo bench --bench core --
//! ingest`.

#[path = "support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, SamplingMode, Throughput};
use realstat::api::request::{check_content_type, parse_body};
use realstat::api::response::Realstatistic;
use realstat::auth::c2::HeaderLookup;
use realstat::auth::{authenticate, Clock, KeySet, Keys, SignedParts};
use realstat::events::{Decoder, Event};
use realstat::fold::Store;
use realstat::log_position::{Offset, Partition};
use realstat::progress::Positions;
use realstat::snapshot::codec;

use support::*;

/// Events per iteration of the ingest benchmarks: enough for the store to grow as it does in
/// production (about 28 000 calls over 1 000 tasks), few enough for a short iteration.
const INGEST_EVENTS: usize = 100_000;
const INGEST_TASKS: usize = 1_000;

fn ingest(c: &mut Criterion) {
    let payloads = payloads(INGEST_EVENTS, INGEST_TASKS);
    let mean = payloads.iter().map(Vec::len).sum::<usize>() as f64 / payloads.len() as f64;
    eprintln!(
        "ingest: {} simulated events over {INGEST_TASKS} tasks, mean size {mean:.0} bytes",
        payloads.len()
    );
    let decoder = Decoder::new(1);
    let decoded: Vec<Event> = payloads
        .iter()
        .map(|p| decoder.decode(p).expect("simulated events are valid"))
        .collect();
    // Far enough ahead that no event counts as coming from the future.
    let now = now_ms() + 60_000;

    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(payloads.len() as u64));
    g.sample_size(20);
    g.sampling_mode(SamplingMode::Flat);

    g.bench_function("decode", |b| {
        b.iter(|| {
            for p in &payloads {
                let _ = black_box(decoder.decode(black_box(p)));
            }
        })
    });
    g.bench_function("fold", |b| {
        b.iter_batched(
            new_store,
            |store| {
                for e in &decoded {
                    black_box(store.apply(e, now));
                }
                store // dropped outside the measurement
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("decode+fold", |b| {
        b.iter_batched(
            new_store,
            |store| {
                for p in &payloads {
                    if let Ok(e) = decoder.decode(p) {
                        black_box(store.apply(&e, now));
                    }
                }
                store
            },
            BatchSize::PerIteration,
        )
    });
    // The same events again: every one a duplicate (a replay after a restore, or a redelivery).
    let warm = new_store();
    for e in &decoded {
        warm.apply(e, now);
    }
    g.bench_function("decode+fold duplicates", |b| {
        b.iter(|| {
            for p in &payloads {
                if let Ok(e) = decoder.decode(p) {
                    black_box(warm.apply(&e, now));
                }
            }
        })
    });
    g.finish();
}

fn request(c: &mut Criterion) {
    let host = "10.22.26.181:28080";
    let body = request_body(17);
    let keys = Keys::new(KeySet::single(AK, SK));
    let len = body.len().to_string();
    let lookup = |name: &str| match name {
        "host" => HeaderLookup::One(host.as_bytes()),
        "content-type" => HeaderLookup::One(CONTENT_TYPE.as_bytes()),
        "content-length" => HeaderLookup::One(len.as_bytes()),
        _ => HeaderLookup::Missing,
    };
    let now = now_ms() / 1000;
    let auth = authorization_at(host, &body, now);
    let verify = |auth: &str| {
        authenticate(
            &keys,
            Some(auth),
            &SignedParts {
                method: "POST",
                path: realstat::api::PATH,
                raw_query: None,
                header: &lookup,
                body: body.as_bytes(),
            },
            Clock {
                now_unix: now,
                allowed_skew_secs: 900,
            },
        )
    };
    assert!(verify(&auth).is_ok(), "the benchmark request must verify");

    let store = synthetic_store(10_000, 10);
    let task = parse_body(body.as_bytes(), 1).expect("valid body");
    let today = store.calendar().day_of(now_ms());
    let stats = store.stats(&task, today);

    let mut g = c.benchmark_group("request");
    g.throughput(Throughput::Elements(1));
    g.bench_function("c2_verify", |b| b.iter(|| verify(black_box(&auth))));
    g.bench_function("c2_sign (client side)", |b| {
        b.iter(|| authorization_at(black_box(host), black_box(&body), now))
    });
    g.bench_function("parse_body", |b| {
        b.iter(|| {
            check_content_type(Some(CONTENT_TYPE.as_bytes())).expect("valid");
            parse_body(black_box(body.as_bytes()), 1)
        })
    });
    g.bench_function("store_stats (10k tasks)", |b| {
        b.iter(|| store.stats(black_box(&task), store.calendar().day_of(now_ms())))
    });
    g.bench_function("response_body", |b| {
        b.iter(|| Realstatistic::from(black_box(stats)).body())
    });
    g.bench_function("response_into_http", |b| {
        b.iter(|| Realstatistic::from(black_box(stats)).into_response())
    });
    g.bench_function("all_but_http", |b| {
        b.iter(|| {
            let key = verify(black_box(&auth)).expect("verifies");
            check_content_type(Some(CONTENT_TYPE.as_bytes())).expect("valid");
            let task = parse_body(body.as_bytes(), 1).expect("valid");
            assert!(key.may_read(task.cc_id, task.vdn));
            let stats = store.stats(&task, store.calendar().day_of(now_ms()));
            Realstatistic::from(stats).into_response()
        })
    });
    g.finish();
}

const SNAPSHOT_TASKS: usize = 10_000;
const SNAPSHOT_CALLS_PER_TASK: usize = 100;

fn snapshot(c: &mut Criterion) {
    let store = synthetic_store(SNAPSHOT_TASKS, SNAPSHOT_CALLS_PER_TASK);
    let calls = store.calls_tracked();
    let positions: Positions = (0..16).map(|p| (Partition(p), Offset(1_000_000))).collect();
    let bytes = codec::encode(&store, &positions, "isales.call-events", now_ms());
    eprintln!(
        "snapshot: {calls} calls over {} tasks, {} bytes ({:.1} bytes per call)",
        store.tasks_tracked(),
        bytes.len(),
        bytes.len() as f64 / calls as f64
    );

    let mut g = c.benchmark_group("snapshot");
    g.throughput(Throughput::Elements(calls));
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("encode_1M_calls", |b| {
        b.iter(|| codec::encode(&store, &positions, "isales.call-events", 1))
    });
    g.bench_function("decode_1M_calls", |b| {
        b.iter_batched(
            new_store,
            |fresh: Store| {
                let (header, reader) = codec::read_header(&bytes).expect("valid frame");
                codec::restore_into(&header, reader, &fresh).expect("valid body");
                fresh
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, ingest, request, snapshot);
criterion_main!(benches);
