//! The files service on a real store and directory: bytes and rows together, tenants apart,
//! and what a crash leaves behind cleaned at start.

use hearth_memory::{FileListRequest, Files, MemoryError};
use hearth_store::{IntegrityCheck, OpenOptions, Store};

async fn open(dir: &std::path::Path) -> Files {
    let store = Store::open(
        dir,
        OpenOptions {
            integrity_check: IntegrityCheck::Quick,
            run_migrations: true,
        },
    )
    .await
    .expect("open store");
    Files::new(store, dir, 1024)
}

#[tokio::test]
async fn a_crash_between_bytes_and_row_leaves_nothing_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let files = open(dir.path()).await;
    let kept = files
        .create("tenant-a", "kept.txt", "assistants", b"kept".to_vec())
        .await
        .unwrap();
    // What an interrupted upload or delete leaves: a partial write, and bytes without a row.
    let directory = dir.path().join(hearth_memory::FILES_DIRECTORY);
    let stray = "file-0193a1b2c3d47e5f8a9b0c1d2e3f4a5b";
    std::fs::write(directory.join(stray), b"no row").unwrap();
    std::fs::write(directory.join(format!("{stray}.partial")), b"half").unwrap();
    std::fs::write(directory.join("README"), b"not ours").unwrap();

    assert_eq!(files.remove_orphans().await.unwrap(), 2);
    assert!(!directory.join(stray).exists());
    assert!(
        directory.join("README").exists(),
        "only files made here are touched"
    );
    let (file, bytes) = files.content("tenant-a", &kept.id).await.unwrap();
    assert_eq!(
        (file.filename.as_str(), bytes.as_slice()),
        ("kept.txt", &b"kept"[..])
    );
    assert_eq!(files.remove_orphans().await.unwrap(), 0);
}

#[tokio::test]
async fn files_are_a_tenants_own_and_limits_are_checked_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let files = open(dir.path()).await;
    let file = files
        .create("tenant-a", "a.txt", "user_data", b"a".to_vec())
        .await
        .unwrap();
    assert!(matches!(
        files.get("tenant-b", &file.id).await,
        Err(MemoryError::NotFound { .. })
    ));
    assert!(matches!(
        files.delete("tenant-b", &file.id).await,
        Err(MemoryError::NotFound { .. })
    ));
    let too_big = files
        .create("tenant-a", "big.bin", "user_data", vec![0; 1025])
        .await
        .unwrap_err();
    assert!(
        matches!(&too_big, MemoryError::TooLarge { field, .. } if field == "file"),
        "{too_big:?}"
    );
    let no_name = files
        .create("tenant-a", "  ", "user_data", b"x".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(&no_name, MemoryError::Invalid { field, .. } if field == "file"),
        "{no_name:?}"
    );
    let page = files
        .list(
            "tenant-a",
            &FileListRequest {
                purpose: None,
                after: None,
                limit: 10,
                descending: true,
            },
        )
        .await
        .unwrap();
    assert_eq!(page.files.len(), 1, "nothing else was stored");
    files.delete("tenant-a", &file.id).await.unwrap();
    let directory = dir.path().join(hearth_memory::FILES_DIRECTORY);
    assert_eq!(std::fs::read_dir(directory).unwrap().count(), 0);
}

#[tokio::test]
async fn a_tenant_cannot_store_more_file_bytes_than_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let files = open(dir.path()).await.with_tenant_limit(1000);
    files
        .create("tenant-a", "a.bin", "user_data", vec![1; 600])
        .await
        .unwrap();
    let refused = files
        .create("tenant-a", "b.bin", "user_data", vec![2; 500])
        .await
        .unwrap_err();
    assert!(
        matches!(refused, MemoryError::LimitReached { .. }),
        "{refused:?}"
    );
    // Other tenants have their own room, and what fits still goes in.
    files
        .create("tenant-b", "b.bin", "user_data", vec![2; 500])
        .await
        .unwrap();
    files
        .create("tenant-a", "c.bin", "user_data", vec![3; 400])
        .await
        .unwrap();
}
