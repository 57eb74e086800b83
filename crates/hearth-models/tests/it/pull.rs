//! Pulls over real HTTP from a server started in the test, and from local paths.

use hearth_models::{ModelFormat, ModelKind, ModelsError, PullOptions, Storage};

use crate::server::FileServer;
use crate::{
    fake_chat_gguf, file_names, pull_collecting, reference, sha256_hex, temporary_registry,
};

/// Big enough (about 1.2 MB) to be cut in the middle and to report progress more than once.
const TENSOR_ELEMENTS: u64 = 300_000;

#[tokio::test]
async fn a_url_pull_registers_an_owned_blob_with_the_metadata_and_reports_progress() {
    let server = FileServer::start().await;
    let bytes = fake_chat_gguf("Tiny Chat", TENSOR_ELEMENTS);
    server.serve("/files/Tiny-Chat.Q4_K_M.gguf", bytes.clone());
    let (_directory, registry) = temporary_registry();

    let (result, events) = pull_collecting(
        &registry,
        &server.url("/files/Tiny-Chat.Q4_K_M.gguf"),
        None,
        &PullOptions::default(),
    )
    .await;
    let manifest = result.expect("pull");

    assert_eq!(manifest.reference.to_string(), "tiny-chat.q4_k_m:latest");
    let version = &manifest.current;
    assert_eq!(version.kind, ModelKind::Chat);
    assert_eq!(version.format, ModelFormat::Gguf);
    assert_eq!(version.storage, Storage::Owned);
    assert_eq!(version.sha256, sha256_hex(&bytes));
    assert_eq!(version.size_bytes, bytes.len() as u64);
    assert_eq!(version.family.as_deref(), Some("llama"));
    assert_eq!(version.quantization.as_deref(), Some("Q4_K_M"));
    assert_eq!(version.context_length, Some(2048));
    assert_eq!(version.embedding_length, Some(64));
    assert_eq!(version.parameter_count, Some(TENSOR_ELEMENTS));
    assert_eq!(version.size_label.as_deref(), Some("1M"));
    assert!(
        version
            .chat_template
            .as_deref()
            .unwrap()
            .contains("messages")
    );
    assert_eq!(version.source, server.url("/files/Tiny-Chat.Q4_K_M.gguf"));
    assert_eq!(version.path, registry.blob_path(&version.sha256));
    assert_eq!(std::fs::read(&version.path).unwrap(), bytes);
    assert!(file_names(&registry.root().join("partial")).is_empty());
    assert_eq!(registry.list().unwrap(), vec![manifest.clone()]);

    let statuses: Vec<&str> = events.iter().map(|event| event.status.as_str()).collect();
    assert_eq!(statuses.first(), Some(&"pulling manifest"));
    assert_eq!(
        &statuses[statuses.len() - 3..],
        ["verifying sha256 digest", "writing manifest", "success"]
    );
    let downloads: Vec<_> = events
        .iter()
        .filter(|event| event.status.starts_with("pulling ") && event.total.is_some())
        .collect();
    assert!(downloads.len() >= 2, "{events:?}");
    let last = downloads.last().unwrap();
    assert_eq!(last.total, Some(bytes.len() as u64));
    assert_eq!(last.completed, Some(bytes.len() as u64));
}

#[tokio::test]
async fn an_interrupted_download_resumes_with_a_range_request() {
    let server = FileServer::start().await;
    let bytes = fake_chat_gguf("Resumable", TENSOR_ELEMENTS);
    server.serve("/model.gguf", bytes.clone());
    let (_directory, registry) = temporary_registry();
    let options = PullOptions {
        sha256: Some(sha256_hex(&bytes)),
        ..PullOptions::default()
    };

    server.cut_next_response_after(500_000);
    let (first, _) = pull_collecting(&registry, &server.url("/model.gguf"), None, &options).await;
    let error = first.expect_err("the cut download must fail");
    assert!(
        error
            .to_string()
            .contains("run the same pull again to resume"),
        "{error}"
    );
    assert!(matches!(
        registry.show(&reference("model")),
        Err(ModelsError::NotFound(_))
    ));
    let partials = file_names(&registry.root().join("partial"));
    let partial = partials
        .iter()
        .find(|name| name.ends_with(".partial"))
        .expect("a partial file is kept");
    let kept = std::fs::metadata(registry.root().join("partial").join(partial))
        .unwrap()
        .len();
    assert_eq!(kept, 500_000);

    let (second, events) =
        pull_collecting(&registry, &server.url("/model.gguf"), None, &options).await;
    let manifest = second.expect("the resumed pull succeeds");

    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].headers.get("range"), None);
    assert_eq!(
        requests[1].headers.get("range").map(String::as_str),
        Some("bytes=500000-")
    );
    assert!(requests[1].headers.contains_key("if-range"));
    assert_eq!(manifest.current.sha256, sha256_hex(&bytes));
    assert_eq!(std::fs::read(&manifest.current.path).unwrap(), bytes);
    // Progress picks up where the first attempt stopped.
    let first_download_event = events
        .iter()
        .find(|event| event.total.is_some())
        .expect("download progress");
    assert_eq!(first_download_event.completed, Some(500_000));
    assert_eq!(
        first_download_event.digest,
        Some(format!("sha256:{}", sha256_hex(&bytes)))
    );
    assert!(file_names(&registry.root().join("partial")).is_empty());
}

#[tokio::test]
async fn a_server_that_ignores_range_is_downloaded_again_from_zero() {
    let server = FileServer::start().await;
    let bytes = fake_chat_gguf("No Ranges", TENSOR_ELEMENTS);
    server.serve("/model.gguf", bytes.clone());
    let (_directory, registry) = temporary_registry();

    server.cut_next_response_after(400_000);
    let (first, _) = pull_collecting(
        &registry,
        &server.url("/model.gguf"),
        None,
        &PullOptions::default(),
    )
    .await;
    assert!(first.is_err());

    server.ignore_range();
    let (second, _) = pull_collecting(
        &registry,
        &server.url("/model.gguf"),
        None,
        &PullOptions::default(),
    )
    .await;
    let manifest = second.expect("pull");
    assert!(server.requests()[1].headers.contains_key("range"));
    assert_eq!(manifest.current.sha256, sha256_hex(&bytes));
    assert_eq!(manifest.current.size_bytes, bytes.len() as u64);
    assert_eq!(std::fs::read(&manifest.current.path).unwrap(), bytes);
}

#[tokio::test]
async fn a_wrong_sha256_is_rejected_and_nothing_is_registered() {
    let server = FileServer::start().await;
    let bytes = fake_chat_gguf("Tampered", 1000);
    server.serve("/model.gguf", bytes.clone());
    let (_directory, registry) = temporary_registry();
    let wrong = "0".repeat(64);

    let (result, _) = pull_collecting(
        &registry,
        &server.url("/model.gguf"),
        Some("tampered:v1"),
        &PullOptions {
            sha256: Some(wrong.clone()),
            ..PullOptions::default()
        },
    )
    .await;
    match result {
        Err(ModelsError::ChecksumMismatch {
            expected, actual, ..
        }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, sha256_hex(&bytes));
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    assert!(registry.list().unwrap().is_empty());
    assert!(file_names(&registry.root().join("blobs")).is_empty());
    assert!(file_names(&registry.root().join("partial")).is_empty());

    let (malformed, _) = pull_collecting(
        &registry,
        &server.url("/model.gguf"),
        None,
        &PullOptions {
            sha256: Some("xyz".to_string()),
            ..PullOptions::default()
        },
    )
    .await;
    assert!(matches!(malformed, Err(ModelsError::InvalidSha256 { .. })));
    assert_eq!(
        server.requests().len(),
        1,
        "a bad --sha256 is refused before any request"
    );
}

#[tokio::test]
async fn an_html_error_page_and_a_404_are_refused() {
    let server = FileServer::start().await;
    server.serve_as(
        "/login.gguf",
        b"<!DOCTYPE html><html><body>Please log in</body></html>".to_vec(),
        "text/html",
    );
    let (_directory, registry) = temporary_registry();

    let (page, _) = pull_collecting(
        &registry,
        &server.url("/login.gguf"),
        None,
        &PullOptions::default(),
    )
    .await;
    let message = page.expect_err("HTML is not GGUF").to_string();
    assert!(message.contains("is not a GGUF file"), "{message}");
    assert!(message.contains("/login.gguf"), "{message}");
    assert!(message.contains("<!DOCTYPE html>"), "{message}");

    let (missing, _) = pull_collecting(
        &registry,
        &server.url("/missing.gguf"),
        None,
        &PullOptions::default(),
    )
    .await;
    assert!(
        matches!(missing, Err(ModelsError::HttpStatus { status: 404, .. })),
        "{missing:?}"
    );
    assert!(registry.list().unwrap().is_empty());
    assert!(file_names(&registry.root().join("blobs")).is_empty());
}

#[tokio::test]
async fn hf_references_resolve_against_the_configured_endpoint() {
    let server = FileServer::start().await;
    let main_bytes = fake_chat_gguf("Main", 100);
    let tagged_bytes = fake_chat_gguf("Tagged", 200);
    server.serve(
        "/acme/tiny-GGUF/resolve/main/gguf/Tiny-Q4_K_M.gguf",
        main_bytes.clone(),
    );
    server.serve(
        "/acme/tiny-GGUF/resolve/v2/gguf/Tiny-Q4_K_M.gguf",
        tagged_bytes.clone(),
    );
    let (_directory, registry) = temporary_registry();
    let options = PullOptions {
        huggingface_endpoint: format!("{}/", server.base_url),
        ..PullOptions::default()
    };

    let (main, _) = pull_collecting(
        &registry,
        "hf:acme/tiny-GGUF/gguf/Tiny-Q4_K_M.gguf",
        None,
        &options,
    )
    .await;
    let main = main.expect("pull main");
    assert_eq!(main.reference.to_string(), "tiny-q4_k_m:latest");
    assert_eq!(main.current.sha256, sha256_hex(&main_bytes));
    assert_eq!(
        main.current.source,
        "hf:acme/tiny-GGUF/gguf/Tiny-Q4_K_M.gguf"
    );

    let (tagged, _) = pull_collecting(
        &registry,
        "hf:acme/tiny-GGUF/gguf/Tiny-Q4_K_M.gguf@v2",
        Some("tiny:v2"),
        &options,
    )
    .await;
    assert_eq!(
        tagged.expect("pull v2").current.sha256,
        sha256_hex(&tagged_bytes)
    );
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/acme/tiny-GGUF/resolve/main/gguf/Tiny-Q4_K_M.gguf",
            "/acme/tiny-GGUF/resolve/v2/gguf/Tiny-Q4_K_M.gguf"
        ]
    );
}

#[tokio::test]
async fn a_local_gguf_is_registered_in_place_or_copied_when_asked() {
    let (directory, registry) = temporary_registry();
    let user_files = directory.path().join("my models");
    std::fs::create_dir_all(&user_files).unwrap();
    let bytes = fake_chat_gguf("Local", 1000);
    let file = user_files.join("Local-Model.gguf");
    std::fs::write(&file, &bytes).unwrap();

    let (in_place, events) = pull_collecting(
        &registry,
        file.to_str().unwrap(),
        None,
        &PullOptions::default(),
    )
    .await;
    let in_place = in_place.expect("register in place");
    assert_eq!(in_place.reference.to_string(), "local-model:latest");
    assert_eq!(in_place.current.storage, Storage::InPlace);
    assert_eq!(in_place.current.path, file.canonicalize().unwrap());
    assert_eq!(in_place.current.sha256, sha256_hex(&bytes));
    assert!(
        file_names(&registry.root().join("blobs")).is_empty(),
        "nothing copied"
    );
    assert_eq!(events.last().unwrap().status, "success");

    let (copied, _) = pull_collecting(
        &registry,
        file.to_str().unwrap(),
        Some("local-model:copy"),
        &PullOptions {
            copy: true,
            ..PullOptions::default()
        },
    )
    .await;
    let copied = copied.expect("copy into the registry");
    assert_eq!(copied.current.storage, Storage::Owned);
    assert_eq!(copied.current.path, registry.blob_path(&sha256_hex(&bytes)));
    assert_eq!(std::fs::read(&copied.current.path).unwrap(), bytes);

    // Removing the in-place model never deletes the user's file; removing the copy deletes
    // the blob.
    assert!(
        registry
            .remove(&reference("local-model"))
            .unwrap()
            .deleted_blobs
            .is_empty()
    );
    assert!(file.is_file());
    let removed = registry.remove(&reference("local-model:copy")).unwrap();
    assert_eq!(removed.deleted_blobs, vec![copied.current.path.clone()]);
    assert!(file.is_file());

    let (missing, _) = pull_collecting(
        &registry,
        user_files.join("nope.gguf").to_str().unwrap(),
        None,
        &PullOptions::default(),
    )
    .await;
    let message = missing.expect_err("missing file").to_string();
    assert!(message.contains("nothing exists at that path"), "{message}");
}

/// A minimal sentence-embedding model directory: a BERT config, a tokenizer, and a
/// safetensors file with one 4x8 tensor.
fn write_embedding_model(directory: &std::path::Path) {
    std::fs::create_dir_all(directory).unwrap();
    std::fs::write(
        directory.join("config.json"),
        r#"{"model_type": "bert", "hidden_size": 8, "max_position_embeddings": 512, "torch_dtype": "float32"}"#,
    )
    .unwrap();
    std::fs::write(directory.join("tokenizer.json"), r#"{"version": "1.0"}"#).unwrap();
    let header =
        br#"{"embeddings.weight": {"dtype": "F32", "shape": [4, 8], "data_offsets": [0, 128]}}"#;
    let mut weights = (header.len() as u64).to_le_bytes().to_vec();
    weights.extend_from_slice(header);
    weights.extend_from_slice(&[0u8; 128]);
    std::fs::write(directory.join("model.safetensors"), weights).unwrap();
}

#[tokio::test]
async fn a_safetensors_directory_is_registered_as_an_embedding_model() {
    let (directory, registry) = temporary_registry();
    let model = directory.path().join("All-MiniLM-Tiny");
    write_embedding_model(&model);

    let (result, _) = pull_collecting(
        &registry,
        model.to_str().unwrap(),
        None,
        &PullOptions::default(),
    )
    .await;
    let manifest = result.expect("register the directory");
    assert_eq!(manifest.reference.to_string(), "all-minilm-tiny:latest");
    let version = &manifest.current;
    assert_eq!(version.kind, ModelKind::Embedding);
    assert_eq!(version.format, ModelFormat::Safetensors);
    assert_eq!(version.storage, Storage::InPlace);
    assert_eq!(version.path, model.canonicalize().unwrap());
    assert_eq!(version.family.as_deref(), Some("bert"));
    assert_eq!(version.embedding_length, Some(8));
    assert_eq!(version.context_length, Some(512));
    assert_eq!(version.parameter_count, Some(32));
    assert_eq!(version.quantization.as_deref(), Some("F32"));
    assert_eq!(
        version.sha256,
        sha256_hex(&std::fs::read(model.join("model.safetensors")).unwrap())
    );

    let (copied, _) = pull_collecting(
        &registry,
        model.to_str().unwrap(),
        Some("minilm:copy"),
        &PullOptions {
            copy: true,
            ..PullOptions::default()
        },
    )
    .await;
    let copied = copied.expect("copy the directory");
    assert_eq!(copied.current.storage, Storage::Owned);
    assert_eq!(
        file_names(&copied.current.path),
        ["config.json", "model.safetensors", "tokenizer.json"]
    );

    std::fs::remove_file(model.join("tokenizer.json")).unwrap();
    let (incomplete, _) = pull_collecting(
        &registry,
        model.to_str().unwrap(),
        None,
        &PullOptions::default(),
    )
    .await;
    let message = incomplete.expect_err("incomplete directory").to_string();
    assert!(message.contains("tokenizer.json is missing"), "{message}");
}
