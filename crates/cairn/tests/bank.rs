//! Concurrent bank transfers conserve money, and every consistent view shows the same total.
//!
//! Sixteen accounts start with 1,000 each. Four threads move random amounts between random
//! pairs of accounts in transactions that read both balances and write both; an auditor thread
//! meanwhile sums all balances through every kind of consistent view (a snapshot's gets and
//! scan, `multi_get`, a plain scan, a read-only transaction) and requires the initial total each
//! time. At the end each account must hold exactly its initial balance plus the net of the
//! transfers that reported success, so a lost update is caught even if it happened to conserve
//! the total. It runs once under `Serializable` and once under `Snapshot`: since every transfer
//! writes both accounts it reads, write-write conflicts alone make `Snapshot` safe here too.
//! The background maintainer is left on, so pruning runs while snapshots come and go.

#![allow(
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a test panics on a broken expectation"
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use cairn::{Db, Error, Isolation, Options, Transaction, Value, WriteBatch};
use cairn_testkit::SplitMix64;

const ACCOUNTS: usize = 16;
const INITIAL_BALANCE: i64 = 1_000;
/// The money in the bank, which no transfer changes.
const TOTAL: i64 = INITIAL_BALANCE * 16;
const TRANSFER_THREADS: u64 = 4;
const TRANSFERS_PER_THREAD: usize = 1_500;

fn account(index: usize) -> String {
    format!("acct:{index:02}")
}

fn parse(value: &Value) -> i64 {
    std::str::from_utf8(value)
        .expect("balance is utf8")
        .parse()
        .expect("balance is a decimal integer")
}

fn balance(tx: &mut Transaction, index: usize) -> cairn::Result<i64> {
    Ok(parse(&tx.get(account(index))?.expect("account exists")))
}

/// A transfer that committed: `(from, to, amount)`.
type Transfer = (usize, usize, i64);

/// Makes its transfers; returns those that committed and how many attempts were made in all
/// (each retry after a conflict is one more attempt).
fn transfer_thread(db: &Db, level: Isolation, seed: u64) -> (Vec<Transfer>, u64) {
    let mut rng = SplitMix64::new(seed);
    let mut committed = Vec::new();
    let mut attempts = 0u64;
    for _ in 0..TRANSFERS_PER_THREAD {
        let from = rng.below(ACCOUNTS);
        let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
        let amount = i64::try_from(1 + rng.below(150)).expect("small amount");
        let read_to_first = rng.below(2) == 0;
        let outcome = loop {
            let attempt = db.transaction_with(level, |tx| {
                attempts += 1;
                let (from_balance, to_balance) = if read_to_first {
                    let to_balance = balance(tx, to)?;
                    (balance(tx, from)?, to_balance)
                } else {
                    let from_balance = balance(tx, from)?;
                    (from_balance, balance(tx, to)?)
                };
                if from_balance < amount {
                    return Ok(None);
                }
                tx.put(account(from), (from_balance - amount).to_string())?;
                tx.put(account(to), (to_balance + amount).to_string())?;
                Ok(Some((from, to, amount)))
            });
            match attempt {
                Ok(outcome) => break outcome,
                // `transaction_with` gave up after its bounded retries; try the transfer again.
                Err(Error::Conflict { .. }) => {}
                Err(other) => panic!("transfer failed: {other}"),
            }
        };
        committed.extend(outcome);
    }
    (committed, attempts)
}

/// Sums the balances through every kind of consistent view; panics on a wrong total.
fn audit(db: &Db, level: Isolation) {
    let keys: Vec<String> = (0..ACCOUNTS).map(account).collect();

    let snapshot = db.snapshot();
    let by_get: i64 = keys
        .iter()
        .map(|key| parse(&snapshot.get(key).expect("account in snapshot")))
        .sum();
    assert_eq!(by_get, TOTAL, "snapshot gets at {}", snapshot.version());
    let scanned: Vec<_> = snapshot.scan_prefix("acct:").collect();
    assert_eq!(scanned.len(), ACCOUNTS);
    let by_scan: i64 = scanned.iter().map(|(_, value)| parse(value)).sum();
    assert_eq!(by_scan, TOTAL, "snapshot scan at {}", snapshot.version());
    let by_snapshot_multi: i64 = snapshot
        .multi_get(&keys)
        .iter()
        .map(|value| parse(value.as_ref().expect("account")))
        .sum();
    assert_eq!(by_snapshot_multi, TOTAL, "snapshot multi_get");
    drop(snapshot);

    let by_multi_get: i64 = db
        .multi_get(&keys)
        .expect("multi_get")
        .iter()
        .map(|value| parse(value.as_ref().expect("account")))
        .sum();
    assert_eq!(by_multi_get, TOTAL, "multi_get");

    let by_reverse_scan: i64 = db
        .scan_prefix("acct:")
        .expect("scan of an open database")
        .rev()
        .map(|(_, value)| parse(&value))
        .sum();
    assert_eq!(by_reverse_scan, TOTAL, "reverse scan");

    let mut tx = db.begin_with(level);
    let mut by_tx = 0;
    for index in 0..ACCOUNTS {
        by_tx += balance(&mut tx, index).expect("transaction read");
    }
    assert_eq!(
        by_tx,
        TOTAL,
        "read-only transaction at {}",
        tx.read_version()
    );
    tx.commit().expect("a read-only transaction commits");
}

fn run_bank(level: Isolation) {
    let db = Db::open(Options::in_memory()).expect("open with the background maintainer");
    let mut batch = WriteBatch::new();
    for index in 0..ACCOUNTS {
        batch.put(account(index), INITIAL_BALANCE.to_string());
    }
    db.write(&batch).expect("open the accounts");

    let done = Arc::new(AtomicBool::new(false));
    let auditor = {
        let db = db.clone();
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut audits = 0u64;
            while !done.load(Ordering::Acquire) {
                audit(&db, level);
                audits += 1;
            }
            audits
        })
    };
    let workers: Vec<_> = (0..TRANSFER_THREADS)
        .map(|seed| {
            let db = db.clone();
            std::thread::spawn(move || transfer_thread(&db, level, seed + 1))
        })
        .collect();
    let mut transfers = Vec::new();
    let mut attempts = 0;
    for worker in workers {
        let (committed, tried) = worker.join().expect("transfer thread");
        transfers.extend(committed);
        attempts += tried;
    }
    done.store(true, Ordering::Release);
    let audits = auditor.join().expect("auditor thread");
    audit(&db, level);

    assert!(audits > 0, "the auditor ran");
    assert!(
        transfers.len() > TRANSFERS_PER_THREAD,
        "most transfers should find the funds: {} committed",
        transfers.len()
    );
    let mut expected = [INITIAL_BALANCE; ACCOUNTS];
    for &(from, to, amount) in &transfers {
        expected[from] -= amount;
        expected[to] += amount;
    }
    let mut tx = db.begin();
    for (index, want) in expected.iter().enumerate() {
        let found = balance(&mut tx, index).expect("final read");
        assert_eq!(
            found,
            *want,
            "{level:?}: account {index} ({} transfers in {attempts} attempts)",
            transfers.len()
        );
        assert!(found >= 0, "account {index} overdrawn: {found}");
    }
    drop(tx);
    assert_eq!(db.stats().commits, 1 + transfers.len() as u64);
    eprintln!(
        "{level:?}: {} transfers committed, {} attempts, {audits} audits",
        transfers.len(),
        attempts
    );
}

#[test]
fn serializable_transfers_conserve_money() {
    run_bank(Isolation::Serializable);
}

#[test]
fn snapshot_transfers_that_write_what_they_read_conserve_money() {
    run_bank(Isolation::Snapshot);
}
