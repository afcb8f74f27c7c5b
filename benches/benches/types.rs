//! hive-types: id creation beside `uuid::Uuid::new_v4()`.
#![allow(missing_docs)] // criterion_main! generates undocumented items

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use hive_types::MessageId;

fn id_creation(c: &mut Criterion) {
    let mut group = c.benchmark_group("types.id_creation");
    group.bench_function("hive", |b| b.iter(|| black_box(MessageId::random())));
    group.bench_function("uuid_new_v4", |b| {
        b.iter(|| black_box(uuid::Uuid::new_v4()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = hive_benches::criterion_config();
    targets = id_creation
}
criterion_main!(benches);
