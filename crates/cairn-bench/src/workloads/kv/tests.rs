//! Every key-value workload on every subject: each runs across several driver calls (as
//! criterion's warm-up and samples are), long enough for a delete workload to refill its keys,
//! and checks its own results. Redis subjects run when `redis-server` is on `PATH` (a
//! throwaway server of the test kit); otherwise they are skipped with a note on stderr.

use super::batch::{KvBulkGet, KvBulkPut, KvMultiGet, KvMultiPut};
use super::concurrent::{KvConcurrentReads, KvMixedReadWrite};
use super::point::{KvDelete, KvExists, KvGet, KvPut, KvPutWithTtl};
use super::raw::prefix_successor;
use super::scan::KvPrefixScan;
use super::*;
use crate::measure::{time_runs, PREPARE_RUNS_MAX};
use crate::{ParallelWorkload as _, Workload};

/// Keys per test fixture: more than two delete groups, and a multiple of 1000-key prefixes.
const KEYS: usize = 3_000;

fn backends() -> Vec<Backend> {
    let mut backends = Backend::local();
    match cairn_testkit::redis_server::RedisServer::shared() {
        Ok(server) => backends.push(Backend::Redis { url: server.url() }),
        Err(error) => eprintln!("skipping the Redis subjects: {error}"),
    }
    backends
}

fn fixture(subject: &Subject, value_bytes: usize) -> KvFixture {
    KvFixture::build(subject, KEYS, value_bytes).expect("a fixture builds and fills")
}

/// Driver calls of `runs` operations each: fewer for subjects whose writes sync.
fn phases(subject: &Subject) -> &'static [u64] {
    if subject.backend.is_in_memory() {
        &[1, 700, 3_000]
    } else {
        &[1, 200, 1_100]
    }
}

fn run_phases(workload: &mut dyn Workload, phases: &[u64]) {
    for &runs in phases {
        time_runs(workload, runs).expect("the workload's own checks hold");
    }
}

#[test]
fn single_key_workloads_keep_their_invariants_on_every_subject() {
    for subject in Subject::pairs(&backends()) {
        eprintln!("subject {}", subject.name());
        let phases = phases(&subject);
        for value_bytes in [100, 10 * 1024] {
            let shared = fixture(&subject, value_bytes);
            run_phases(&mut KvGet::new(&shared).expect("get"), phases);
            run_phases(&mut KvPut::new(&shared, value_bytes).expect("put"), phases);
            run_phases(&mut KvGet::new(&shared).expect("get after puts"), &[100]);
        }
        let shared = fixture(&subject, 100);
        run_phases(&mut KvExists::new(&shared).expect("exists"), phases);
        run_phases(
            &mut KvPutWithTtl::new(&shared).expect("put_with_ttl"),
            phases,
        );
        // Groups of up to 1024 deletes over 3000 keys: the last ones need a refill.
        let mut delete = KvDelete::new(&fixture(&subject, 100)).expect("delete");
        run_phases(&mut delete, &[1, 1_023, 2 * PREPARE_RUNS_MAX as u64]);
    }
}

#[test]
fn batch_and_scan_workloads_check_every_key_on_every_subject() {
    for subject in Subject::pairs(&backends()) {
        eprintln!("subject {}", subject.name());
        let shared = fixture(&subject, 100);
        run_phases(&mut KvBulkPut::new(&shared).expect("bulk_put"), &[1, 2]);
        run_phases(&mut KvBulkGet::new(&shared).expect("bulk_get"), &[1, 2]);
        run_phases(&mut KvMultiPut::new(&shared).expect("multi_put"), &[1, 2]);
        run_phases(&mut KvMultiGet::new(&shared).expect("multi_get"), &[1, 2]);
        for keys_per_prefix in [10, 100, 1_000] {
            let mut scan = KvPrefixScan::new(&shared, keys_per_prefix).expect("groups");
            run_phases(&mut scan, &[1, 5]);
        }
        assert!(KvPrefixScan::new(&shared, 30).is_err());
    }
}

#[test]
fn concurrent_workloads_count_their_calls_on_every_subject() {
    for subject in Subject::pairs(&backends()) {
        eprintln!("subject {}", subject.name());
        let shared = fixture(&subject, 100);
        let mut reads = KvConcurrentReads::new(&shared, 4, 200).expect("reads");
        assert_eq!(reads.engine_ops_per_run(), 800);
        reads.run().expect("reads find their keys");
        reads.run().expect("a second run too");
        let mut mixed = KvMixedReadWrite::new(&shared, 2, 200).expect("mixed");
        mixed.run().expect("reads find their keys");
    }
}

#[test]
fn a_get_that_finds_the_wrong_length_is_an_error() {
    let subject = Subject::store(Backend::CairnInMemory);
    let shared = fixture(&subject, 100);
    run_phases(&mut KvPut::new(&shared, 99).expect("put"), &[3_000]);
    let mut get = KvGet::new(&shared).expect("get");
    assert!(time_runs(&mut get, 1_000).is_err());
}

#[test]
fn a_redis_fixture_leaves_no_key_behind() {
    let Ok(server) = cairn_testkit::redis_server::RedisServer::shared() else {
        eprintln!("skipping: no redis-server");
        return;
    };
    let backend = Backend::Redis { url: server.url() };
    for subject in [
        Subject::store(backend.clone()),
        Subject::raw(backend.clone()),
    ] {
        let built = fixture(&subject, 100);
        let prefix = built.scope.key_prefix().to_vec();
        let url = server.url();
        let count = || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime
                .block_on(raw::count_keys(&url, &prefix))
                .expect("the server answers")
        };
        assert_eq!(count(), KEYS);
        drop(built);
        assert_eq!(count(), 0);
    }
}

#[test]
fn subjects_are_named_as_the_benchmarks_are() {
    let names: Vec<String> = Subject::pairs(&[Backend::Sqlite, Backend::CairnStrict])
        .iter()
        .map(Subject::name)
        .collect();
    assert_eq!(
        names,
        ["sqlite", "sqlite-raw", "cairn-strict", "cairn-strict-raw"]
    );
}

#[test]
fn a_prefix_successor_bounds_exactly_the_prefixed_keys() {
    assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
    assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
    assert_eq!(prefix_successor(b"\xff\xff"), None);
    assert_eq!(prefix_successor(b""), None);
}
