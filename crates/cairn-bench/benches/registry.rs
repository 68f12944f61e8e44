//! Criterion over the registry: every entry that criterion can time, one benchmark per store
//! (`peers/point_read/uniform/redb-buffered`), built exactly as `cairn bench` builds it.
//!
//! `cargo bench -p cairn-bench -- FILTER` picks entries by name as criterion does. Fills and
//! memory probes are one-shot by nature and run only under `cairn bench`. Redis peers join
//! when `CAIRN_BENCH_REDIS` names a server (`redis://127.0.0.1:6379`). Quick-mode sizes (the
//! 100K-key read fixture) unless `CAIRN_BENCH_FULL=1`.

use std::time::Duration;

use cairn_bench::measure::time_runs;
use cairn_bench::peers::Places;
use cairn_bench::registry::{self, Context, Timed};
use criterion::Criterion;

fn registry(c: &mut Criterion) {
    let quick = std::env::var_os("CAIRN_BENCH_FULL").is_none();
    let redis_url = std::env::var("CAIRN_BENCH_REDIS").ok();
    let mut context = Context::new(quick, None, Places { redis_url }, Box::new(|_| {}));
    for entry in registry::entries(quick) {
        let timed = match entry.timed(&mut context) {
            None => continue,
            Some(timed) => timed.unwrap_or_else(|error| panic!("{}: {error}", entry.name)),
        };
        let mut group = c.benchmark_group(&entry.name);
        group
            .sample_size(10)
            .measurement_time(Duration::from_secs(2));
        for (id, workload) in timed {
            match workload {
                Timed::Single(mut workload) => group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        time_runs(&mut *workload, iters).unwrap_or_else(|error| panic!("{error}"))
                    });
                }),
                Timed::Parallel(mut workload) => group.bench_function(id, |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| workload.run().unwrap_or_else(|error| panic!("{error}")))
                            .sum::<Duration>()
                    });
                }),
            };
        }
        group.finish();
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    registry(&mut criterion);
    criterion.final_summary();
}
