//! Criterion benchmarks of the hot paths (filled in by the benchmark work).
use criterion::{criterion_group, criterion_main, Criterion};

fn placeholder(c: &mut Criterion) {
    c.bench_function("rate_format", |b| {
        b.iter(|| realstat::fold::Percent::of(1, 3).to_string())
    });
}

criterion_group!(benches, placeholder);
criterion_main!(benches);
