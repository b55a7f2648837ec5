//! Crash safety of the server: `asterope serve` is killed with SIGKILL while 32 clients upload,
//! delete and commit transactions, then restarted, again and again. Every acknowledged write
//! must be intact and nothing partial may be visible: an operation in flight at the kill is
//! either fully there or not at all.

mod common;

use std::collections::BTreeMap;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use asterope::{
    Client, Condition, Key, Metadata, ObjectOps, PutOptions, Sha256Digest, Store, StoreExt, Value,
};
use common::{chunked, pattern, sha256};

static ACKED: AtomicU64 = AtomicU64::new(0);
/// Per client: the transaction it was committing when the server died (slot key, pair key,
/// digest of both), to check it is all or nothing.
type InFlightTx = Arc<Mutex<BTreeMap<u64, (String, String, Sha256Digest)>>>;

const CLIENTS: u64 = 32;
const ROUNDS: u64 = 50;

/// What a key may hold after a crash: the acknowledged state, or (if an operation on it was in
/// flight) also the state that operation would have left.
#[derive(Clone, Debug, Default)]
struct Expect {
    acked: Option<Sha256Digest>,
    in_flight: Option<Option<Sha256Digest>>,
}

fn start_server(dir: &std::path::Path) -> (Child, String) {
    common::spawn_server(dir, &["--extent-size", "33554432"])
}

/// One client's work until the server dies: puts, deletes and two-key transactions on its own
/// keys, recording what was acknowledged.
async fn client_work(
    url: String,
    id: u64,
    round: u64,
    expect: Arc<Mutex<BTreeMap<String, Expect>>>,
    txs: InFlightTx,
) {
    let Ok(client) = Client::connect(&url).await else {
        return;
    };
    let mut rng = (id + 1) * 0x9E37_79B9 + round;
    for op in 0u64.. {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let slot = rng % 6;
        let a = format!("c{id}/k{slot}");
        let b = format!("c{id}/pair");
        let size = (rng % (1 << 20)) as usize;
        let data = pattern(rng, size);
        let digest = sha256(&data);
        let set = |key: &str, state: Option<Option<Sha256Digest>>| {
            expect
                .lock()
                .unwrap()
                .entry(key.to_string())
                .or_default()
                .in_flight = state;
        };
        let ack = |key: &str, value: Option<Sha256Digest>| {
            let mut map = expect.lock().unwrap();
            let entry = map.entry(key.to_string()).or_default();
            entry.acked = value;
            entry.in_flight = None;
            ACKED.fetch_add(1, Ordering::Relaxed);
        };
        let outcome = match op % 4 {
            0 | 1 => {
                set(&a, Some(Some(digest)));
                let r = client
                    .put(
                        &Key::new(a.as_str()).unwrap(),
                        chunked(data, 256 * 1024),
                        PutOptions::default(),
                    )
                    .await;
                r.map(|_| ack(&a, Some(digest)))
            }
            2 => {
                set(&a, Some(None));
                let key = Key::new(a.as_str()).unwrap();
                match client.delete(&key, Condition::default()).await {
                    Err(e) if e.code() != "not_found" => Err(e),
                    _ => {
                        ack(&a, None);
                        Ok(())
                    }
                }
            }
            _ => {
                // A transaction writing the pair key and a slot key with the same bytes.
                let run = async {
                    let tx = client.begin().await?;
                    let mut meta = Metadata::new();
                    meta.insert("op".into(), Value::Int(op as i64));
                    let options = PutOptions::default().with_metadata(meta);
                    tx.put(
                        &Key::new(a.as_str()).unwrap(),
                        chunked(data.clone(), 64 * 1024),
                        options.clone(),
                    )
                    .await?;
                    tx.put(
                        &Key::new(b.as_str()).unwrap(),
                        chunked(data.clone(), 64 * 1024),
                        options,
                    )
                    .await?;
                    set(&a, Some(Some(digest)));
                    set(&b, Some(Some(digest)));
                    txs.lock()
                        .unwrap()
                        .insert(id, (a.clone(), b.clone(), digest));
                    tx.commit().await
                };
                run.await.map(|_| {
                    txs.lock().unwrap().remove(&id);
                    ack(&a, Some(digest));
                    ack(&b, Some(digest));
                })
            }
        };
        if outcome.is_err() {
            return; // the server is gone (or going); what is in flight stays recorded
        }
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_during_concurrent_writes_loses_nothing_acknowledged() {
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    println!("seed {seed}");
    let dir = tempfile::tempdir().unwrap();
    let expect: Arc<Mutex<BTreeMap<String, Expect>>> = Arc::default();
    let txs: InFlightTx = Arc::default();
    let mut rng = seed;
    let mut checked = 0usize;
    for round in 0..ROUNDS {
        let (child, url) = start_server(dir.path());
        let mut server = Killed(child);
        let workers: Vec<_> = (0..CLIENTS)
            .map(|id| {
                let work = client_work(
                    url.clone(),
                    id,
                    round,
                    Arc::clone(&expect),
                    Arc::clone(&txs),
                );
                tokio::spawn(work)
            })
            .collect();
        // Kill only once this round has acknowledged some writes (so every round proves
        // something however loaded the machine is), then at a random moment after that.
        let round_start = ACKED.load(Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while ACKED.load(Ordering::Relaxed) < round_start + CLIENTS
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(rng % 250)).await;
        server.0.kill().unwrap();
        server.0.wait().unwrap();
        for worker in workers {
            worker.await.unwrap();
        }
        drop(server);

        // Restart and check every key against what was acknowledged.
        let (child, url) = start_server(dir.path());
        let _server = Killed(child);
        let client = Client::connect(&url).await.unwrap();
        let mut map = expect.lock().unwrap().clone();
        let mut found_now = BTreeMap::new();
        for (key, state) in map.iter_mut() {
            let found = match client.get_bytes(&Key::new(key.as_str()).unwrap()).await {
                Ok((info, bytes)) => {
                    assert_eq!(
                        sha256(&bytes),
                        info.sha256,
                        "round {round}: {key} bytes differ from their record"
                    );
                    Some(info.sha256)
                }
                Err(e) if e.code() == "not_found" => None,
                Err(e) => panic!("round {round}: {key}: {e}"),
            };
            let allowed = found == state.acked || state.in_flight.is_some_and(|f| f == found);
            assert!(
                allowed,
                "round {round}: {key} holds {found:?}, acknowledged {:?}, in flight {:?}",
                state.acked, state.in_flight
            );
            found_now.insert(key.clone(), found);
            // Whatever is there now is the new truth.
            state.acked = found;
            state.in_flight = None;
            checked += 1;
        }
        // A transaction in flight at the kill is all or nothing.
        for (slot, pair, digest) in std::mem::take(&mut *txs.lock().unwrap()).into_values() {
            let slot_new = found_now.get(&slot) == Some(&Some(digest));
            let pair_new = found_now.get(&pair) == Some(&Some(digest));
            assert_eq!(
                slot_new, pair_new,
                "round {round}: torn transaction on {slot} / {pair}"
            );
        }
        *expect.lock().unwrap() = map;
    }
    let acked = ACKED.load(Ordering::Relaxed);
    println!("{ROUNDS} kill rounds, {acked} acknowledged writes, {checked} key checks, 0 lost or partial");
    assert!(
        acked >= ROUNDS * CLIENTS,
        "too few writes were acknowledged to prove anything"
    );
}
