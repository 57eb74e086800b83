//! The store against real SQLite files in temporary directories.

use std::path::Path;

use hearth_store::{AuditEntry, DATABASE_FILE, IntegrityCheck, OpenOptions, Store, StoreError};

const MIGRATE: OpenOptions = OpenOptions {
    integrity_check: IntegrityCheck::Quick,
    run_migrations: true,
};
const NO_MIGRATE: OpenOptions = OpenOptions {
    integrity_check: IntegrityCheck::Quick,
    run_migrations: false,
};

async fn table_names(store: &Store) -> Vec<String> {
    let mut names = Vec::new();
    for state in store.migration_status().await.expect("status") {
        if state.applied {
            names.push(state.description);
        }
    }
    names
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again_on_a_fresh_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), NO_MIGRATE).await.expect("open");
    let status = store.migration_status().await.expect("status");
    assert!(status.len() >= 2, "{status:?}");
    assert!(status.iter().all(|state| !state.applied));
    let all: Vec<i64> = status.iter().map(|state| state.version).collect();

    assert_eq!(store.migrate_up(None).await.expect("up"), all);
    assert_eq!(
        table_names(&store).await,
        [
            "instance",
            "audit log",
            "gateway",
            "budgets",
            "users",
            "memory",
            "files",
            "memory document text",
            "vector stores",
            "responses",
            "graphs",
            "conversation memory",
            "plugins",
            "jobs",
            "plugin secrets",
            "prompts",
            "flags",
            "experiments"
        ]
    );
    store
        .append_audit(&entry("a1", 1))
        .await
        .expect("audit table exists after up");
    assert_eq!(store.gateway_revision().await.expect("revision"), 0);

    // Down without a target reverts exactly the newest migration.
    assert_eq!(
        store.migrate_down(None).await.expect("down experiments"),
        [18]
    );
    assert_eq!(store.migrate_down(None).await.expect("down flags"), [17]);
    assert_eq!(store.migrate_down(None).await.expect("down prompts"), [16]);
    assert_eq!(
        store.migrate_down(None).await.expect("down plugin secrets"),
        [15]
    );
    assert_eq!(store.migrate_down(None).await.expect("down jobs"), [14]);
    assert_eq!(store.migrate_down(None).await.expect("down plugins"), [13]);
    assert_eq!(
        store
            .migrate_down(None)
            .await
            .expect("down conversation memory"),
        [12]
    );
    assert_eq!(store.migrate_down(None).await.expect("down graphs"), [11]);
    assert_eq!(
        store.migrate_down(None).await.expect("down responses"),
        [10]
    );
    assert_eq!(
        store.migrate_down(None).await.expect("down vector stores"),
        [9]
    );
    assert_eq!(
        store.migrate_down(None).await.expect("down document text"),
        [8]
    );
    assert_eq!(store.migrate_down(None).await.expect("down files"), [7]);
    assert_eq!(store.migrate_down(None).await.expect("down memory"), [6]);
    assert_eq!(store.migrate_down(None).await.expect("down users"), [5]);
    assert_eq!(store.migrate_down(None).await.expect("down budgets"), [4]);
    assert_eq!(store.migrate_down(None).await.expect("down one"), [3]);
    assert!(store.gateway_revision().await.is_err());
    assert_eq!(store.migrate_down(None).await.expect("down one more"), [2]);
    assert!(store.append_audit(&entry("a2", 2)).await.is_err());
    assert_eq!(store.migrate_down(Some(0)).await.expect("down all"), [1]);
    assert!(table_names(&store).await.is_empty());

    assert_eq!(store.migrate_up(Some(1)).await.expect("up to 1"), [1]);
    assert_eq!(
        store.migrate_up(None).await.expect("up rest"),
        [2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]
    );
    assert!(
        store
            .migrate_up(None)
            .await
            .expect("nothing pending")
            .is_empty()
    );
    store
        .append_audit(&entry("a3", 3))
        .await
        .expect("audit table back");
    store.close().await;
}

#[tokio::test]
async fn unknown_migration_versions_are_refused_with_the_known_list() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), MIGRATE).await.expect("open");
    let error = store.migrate_up(Some(99)).await.expect_err("unknown");
    assert!(matches!(
        error,
        StoreError::UnknownVersion { version: 99, .. }
    ));
    assert!(
        error.to_string().contains("known versions: 1, 2"),
        "{error}"
    );
}

#[tokio::test]
async fn the_instance_id_is_created_once_and_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), MIGRATE).await.expect("open");
    assert_eq!(store.instance_id("first", 1).await.expect("id"), "first");
    assert_eq!(store.instance_id("second", 2).await.expect("id"), "first");
    store.close().await;
    let reopened = Store::open(dir.path(), MIGRATE).await.expect("reopen");
    assert_eq!(reopened.instance_id("third", 3).await.expect("id"), "first");
}

#[tokio::test]
async fn audit_entries_come_back_newest_first() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), MIGRATE).await.expect("open");
    for (id, at) in [("a", 10), ("b", 30), ("c", 20)] {
        store.append_audit(&entry(id, at)).await.expect("append");
    }
    let ids: Vec<String> = store
        .recent_audit(2, None)
        .await
        .expect("recent")
        .into_iter()
        .map(|entry| entry.id)
        .collect();
    assert_eq!(ids, ["b", "c"]);
}

fn entry(id: &str, at_ms: i64) -> AuditEntry {
    AuditEntry {
        id: id.to_string(),
        at_ms,
        actor: "system".to_string(),
        action: "config.reload".to_string(),
        target: None,
        detail: Some("log.level".to_string()),
        source: Some("signal".to_string()),
        tenant_id: None,
    }
}

fn file_digest(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read database file")
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_corrupted_copy_is_refused_and_left_untouched() {
    let original = tempfile::tempdir().expect("temp dir");
    let store = Store::open(original.path(), MIGRATE).await.expect("open");
    for index in 0..200 {
        store
            .append_audit(&entry(&format!("entry-{index:04}"), index))
            .await
            .expect("append");
    }
    store.close().await;

    let copy = tempfile::tempdir().expect("temp dir");
    let copied = copy.path().join(DATABASE_FILE);
    std::fs::copy(original.path().join(DATABASE_FILE), &copied).expect("copy");
    // Keep the 100-byte header and the first page intact, scribble over the rest: the kind of
    // damage a torn write or a bad disk leaves behind.
    let mut bytes = std::fs::read(&copied).expect("read copy");
    assert!(
        bytes.len() > 8192,
        "database too small to corrupt: {}",
        bytes.len()
    );
    for (offset, byte) in bytes.iter_mut().enumerate().skip(4096) {
        *byte = (offset * 7 % 251) as u8;
    }
    std::fs::write(&copied, &bytes).expect("write garbage");
    let before = file_digest(&copied);
    let files_before = listing(copy.path());

    let error = Store::open(copy.path(), MIGRATE)
        .await
        .expect_err("a corrupted database must be refused");
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("failed its integrity check"), "{message}");
    assert!(message.contains("did not modify it"), "{message}");

    assert_eq!(file_digest(&copied), before, "the file was modified");
    assert_eq!(listing(copy.path()), files_before, "files were created");
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join(DATABASE_FILE),
        b"this is not a database at all",
    )
    .expect("write");
    let error = Store::open(dir.path(), MIGRATE).await.expect_err("refused");
    assert!(error.to_string().contains("SQLite header"), "{error}");
}

#[tokio::test]
async fn reverting_the_memory_tables_drops_the_keyword_tables_made_at_run_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::open(dir.path(), NO_MIGRATE).await.expect("open");
    store.migrate_up(Some(6)).await.expect("up to memory");
    let row = hearth_store::MemoryCollectionRow {
        id: "c0ffee".to_string(),
        tenant_id: "t".to_string(),
        name: "docs".to_string(),
        metric: "cosine".to_string(),
        dimensions: 2,
        embedding_model: None,
        int8: false,
        hnsw_m: 16,
        hnsw_ef_construction: 200,
        hnsw_ef: 64,
        metadata: "{}".to_string(),
        created_at_ms: 0,
        last_sequence: 0,
    };
    store
        .insert_memory_collection(&row, 10)
        .await
        .expect("insert");
    assert!(
        !store
            .ensure_memory_text_index("c0ffee")
            .await
            .expect("ensure"),
        "a new collection has its keyword table"
    );
    assert_eq!(store.migrate_down(Some(5)).await.expect("down"), [6]);
    store.migrate_up(Some(6)).await.expect("up again");
    assert!(
        store
            .ensure_memory_text_index("c0ffee")
            .await
            .expect("ensure"),
        "the keyword table went with the memory tables, so it is made anew"
    );
}
