//! Versions, rollback, copy, remove and blob garbage collection, through real pulls of local
//! files into a registry in a temporary directory.

use hearth_models::{Manifest, ModelsError, PullOptions, Registry, Storage};

use crate::{
    fake_chat_gguf, file_names, pull_collecting, reference, sha256_hex, temporary_registry,
};

/// Copies `bytes` into the registry as `name`, the way `hearth pull --copy FILE` does.
async fn pull_bytes(registry: &Registry, bytes: &[u8], name: &str) -> Manifest {
    let directory = tempfile::tempdir().unwrap();
    let file = directory.path().join("model.gguf");
    std::fs::write(&file, bytes).unwrap();
    let options = PullOptions {
        copy: true,
        ..PullOptions::default()
    };
    let (result, _) = pull_collecting(registry, file.to_str().unwrap(), Some(name), &options).await;
    result.expect("pull")
}

#[tokio::test]
async fn a_new_pull_under_a_name_keeps_the_old_version_and_rollback_restores_it() {
    let (_directory, registry) = temporary_registry();
    let first = fake_chat_gguf("First", 100);
    let second = fake_chat_gguf("Second", 200);
    pull_bytes(&registry, &first, "mymodel").await;
    let updated = pull_bytes(&registry, &second, "mymodel").await;
    assert_eq!(updated.current.sha256, sha256_hex(&second));
    assert_eq!(updated.previous.len(), 1);
    assert_eq!(updated.previous[0].sha256, sha256_hex(&first));

    // Pulling the same bytes again adds no history.
    let again = pull_bytes(&registry, &second, "mymodel").await;
    assert_eq!(again.previous.len(), 1);

    let rolled_back = registry.rollback(&reference("mymodel")).expect("rollback");
    assert_eq!(
        rolled_back.deleted_blobs,
        vec![registry.blob_path(&sha256_hex(&second))]
    );
    let now = registry.show(&reference("mymodel:latest")).unwrap();
    assert_eq!(now.current.sha256, sha256_hex(&first));
    assert!(now.previous.is_empty());
    assert!(now.current.path.is_file());

    let error = registry.rollback(&reference("mymodel")).unwrap_err();
    assert!(matches!(error, ModelsError::NoPreviousVersion(_)));
    assert_eq!(
        error.to_string(),
        "model mymodel:latest has no previous version to roll back to"
    );
    assert!(matches!(
        registry.rollback(&reference("other")),
        Err(ModelsError::NotFound(_))
    ));
}

#[tokio::test]
async fn copies_share_a_blob_that_is_deleted_with_the_last_reference() {
    let (_directory, registry) = temporary_registry();
    let bytes = fake_chat_gguf("Shared", 100);
    let original = pull_bytes(&registry, &bytes, "acme/original:v1").await;
    let blob = original.current.path.clone();

    let copy = registry
        .copy(&reference("acme/original:v1"), &reference("alias"))
        .expect("copy");
    assert_eq!(copy.reference.to_string(), "alias:latest");
    assert_eq!(copy.current.path, blob);
    assert_eq!(copy.current.storage, Storage::Owned);
    let names: Vec<String> = registry
        .list()
        .unwrap()
        .into_iter()
        .map(|manifest| manifest.reference.to_string())
        .collect();
    assert_eq!(names, ["acme/original:v1", "alias:latest"]);

    let removed = registry.remove(&reference("acme/original:v1")).unwrap();
    assert!(removed.deleted_blobs.is_empty(), "the alias still needs it");
    assert!(blob.is_file());

    // A blob kept only by another model's history is kept too.
    let other = fake_chat_gguf("Other", 300);
    pull_bytes(&registry, &other, "alias").await;
    assert!(blob.is_file());
    let rolled_back = registry.rollback(&reference("alias")).unwrap();
    assert!(rolled_back.deleted_blobs.iter().all(|path| *path != blob));

    let removed = registry.remove(&reference("alias")).unwrap();
    assert_eq!(removed.deleted_blobs, vec![blob.clone()]);
    assert!(!blob.exists());
    assert!(file_names(&registry.root().join("blobs")).is_empty());
    assert!(matches!(
        registry.remove(&reference("alias")),
        Err(ModelsError::NotFound(_))
    ));
    assert!(matches!(
        registry.copy(&reference("alias"), &reference("x")),
        Err(ModelsError::NotFound(_))
    ));
}

#[tokio::test]
async fn manifests_are_json_files_with_blob_paths_relative_to_the_models_directory() {
    let (directory, registry) = temporary_registry();
    let bytes = fake_chat_gguf("On Disk", 100);
    pull_bytes(&registry, &bytes, "acme/disk:v1").await;

    let text =
        std::fs::read_to_string(registry.root().join("manifests/acme/disk@v1.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["name"], "acme/disk");
    assert_eq!(json["tag"], "v1");
    assert_eq!(json["kind"], "chat");
    assert_eq!(json["format"], "gguf");
    assert_eq!(json["storage"], "owned");
    assert_eq!(json["path"], format!("blobs/sha256-{}", sha256_hex(&bytes)));
    assert_eq!(json["quantization"], "Q4_K_M");
    assert!(json["created_at_ms"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(json["previous"], serde_json::json!([]));
    assert!(
        file_names(&registry.root().join("tmp")).is_empty(),
        "no temporary files left"
    );

    // The data directory can move: blob paths resolve against where it is now.
    let moved = directory.path().join("moved");
    std::fs::create_dir_all(&moved).unwrap();
    std::fs::rename(registry.root(), moved.join("models")).unwrap();
    let reopened = Registry::open(&moved).unwrap();
    let manifest = reopened.show(&reference("acme/disk:v1")).unwrap();
    assert!(manifest.current.path.starts_with(&moved));
    assert!(manifest.current.path.is_file());
}

#[tokio::test]
async fn a_damaged_manifest_is_skipped_by_list_and_reported_by_show() {
    let (_directory, registry) = temporary_registry();
    pull_bytes(&registry, &fake_chat_gguf("Good", 100), "good").await;
    std::fs::write(registry.root().join("manifests/bad@latest.json"), "{ half").unwrap();

    let names: Vec<String> = registry
        .list()
        .unwrap()
        .into_iter()
        .map(|manifest| manifest.reference.to_string())
        .collect();
    assert_eq!(names, ["good:latest"]);
    let error = registry.show(&reference("bad")).unwrap_err().to_string();
    assert!(error.contains("bad@latest.json is damaged"), "{error}");
}
