//! Criterion over the registry: every entry criterion can time (not fills and memory probes),
//! one benchmark per store, built as `cairn bench` builds it. `CAIRN_BENCH_REDIS` names a Redis
//! server to include; `CAIRN_BENCH_FULL=1` uses full-mode sizes.

use cairn_bench::measure::time_runs;
use cairn_bench::peers::Places;
use cairn_bench::registry::{self, Context, Timed};
use criterion::Criterion;
use std::time::Duration;

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
            let mut time: Box<dyn FnMut(u64) -> Result<Duration, _>> = match workload {
                Timed::Single(mut workload) => {
                    Box::new(move |iters| time_runs(&mut *workload, iters))
                }
                Timed::Parallel(mut workload) => {
                    Box::new(move |iters| (0..iters).map(|_| workload.run()).sum())
                }
            };
            group.bench_function(id, |b| {
                b.iter_custom(|iters| time(iters).unwrap_or_else(|error| panic!("{error}")));
            });
        }
        group.finish();
    }
}

fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    registry(&mut criterion);
    criterion.final_summary();
}
