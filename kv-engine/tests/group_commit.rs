//! Group commit: concurrent `SyncMode::Always` writers share fsyncs, and
//! every write of every group is there after a reopen.
#![allow(clippy::unwrap_used)]

use kv_engine::{Db, Options, SyncMode};

#[test]
fn concurrent_always_writers_share_fsyncs_and_lose_nothing() {
    const WRITERS: usize = 8;
    const EACH: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options::new(dir.path()).sync(SyncMode::Always);

    let db = Db::open(opts()).unwrap();
    let before = db.stats().fsyncs;
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let db = &db;
            s.spawn(move || {
                for i in 0..EACH {
                    let key = format!("w{w}.k{i:04}");
                    db.set(key.as_bytes(), format!("{w}/{i}").as_bytes())
                        .unwrap();
                }
            });
        }
    });
    let writes = (WRITERS * EACH) as u64;
    let fsyncs = db.stats().fsyncs - before;
    // One fsync per write would mean no group was ever formed. The leader
    // of a group waits for the other writers in flight, so with eight of
    // them the groups are large; fewer than half as many fsyncs as writes
    // leaves ample room for a loaded machine.
    assert!(
        fsyncs < writes / 2,
        "{fsyncs} fsyncs for {writes} concurrent Always writes"
    );

    // Nothing a group carried is lost or mixed up. (That each write was
    // durable when acknowledged is crash_sigkill's to show.)
    db.close().unwrap();
    let db = Db::open(opts()).unwrap();
    assert_eq!(db.count().unwrap() as u64, writes);
    for w in 0..WRITERS {
        for i in 0..EACH {
            let key = format!("w{w}.k{i:04}");
            assert_eq!(
                db.get(key.as_bytes()).unwrap().as_deref(),
                Some(format!("{w}/{i}").as_bytes()),
                "{key}"
            );
        }
    }
    db.close().unwrap();
}
