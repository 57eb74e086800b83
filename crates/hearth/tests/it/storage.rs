//! Migrations and the integrity check through the binary.

use crate::{Server, hearth, run, stderr_of, stdout_of};

fn migrate(home: &std::path::Path, args: &[&str]) -> String {
    let output = run(hearth(home)
        .arg("--data-dir")
        .arg(home.join("data"))
        .arg("migrate")
        .args(args));
    assert!(
        output.status.success(),
        "migrate {args:?}: {}",
        stderr_of(&output)
    );
    stdout_of(&output)
}

#[test]
fn migrate_up_down_up_on_a_fresh_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = migrate(dir.path(), &["status"]);
    assert!(status.contains("1  pending  instance"), "{status}");
    assert!(status.contains("2  pending  audit log"), "{status}");
    assert!(status.contains("3  pending  gateway"), "{status}");

    assert_eq!(
        migrate(dir.path(), &["up"]),
        "applied 1\napplied 2\napplied 3\napplied 4\napplied 5\napplied 6\napplied 7\napplied 8\n\
         applied 9\napplied 10\napplied 11\napplied 12\napplied 13\napplied 14\napplied 15\n\
         applied 16\napplied 17\napplied 18\n"
    );
    assert!(migrate(dir.path(), &["status"]).contains("2  applied  audit log"));
    assert_eq!(migrate(dir.path(), &["down"]), "reverted 18\n");
    assert_eq!(
        migrate(dir.path(), &["down", "--to", "0"]),
        "reverted 17\nreverted 16\nreverted 15\nreverted 14\nreverted 13\nreverted 12\nreverted 11\nreverted 10\nreverted 9\nreverted 8\nreverted 7\nreverted 6\nreverted 5\nreverted 4\nreverted 3\nreverted 2\nreverted 1\n"
    );
    assert!(!migrate(dir.path(), &["status"]).contains("applied "));
    assert_eq!(migrate(dir.path(), &["up", "--to", "1"]), "applied 1\n");
    assert_eq!(
        migrate(dir.path(), &["up"]),
        "applied 2\napplied 3\napplied 4\napplied 5\napplied 6\napplied 7\napplied 8\napplied 9\n\
         applied 10\napplied 11\napplied 12\napplied 13\napplied 14\napplied 15\napplied 16\n\
         applied 17\napplied 18\n"
    );
    assert_eq!(
        migrate(dir.path(), &["up"]),
        "nothing to apply; the schema is up to date\n"
    );

    let output = run(hearth(dir.path())
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["migrate", "up", "--to", "42"]));
    assert!(!output.status.success());
    assert!(
        stderr_of(&output).contains("unknown migration version 42"),
        "{}",
        stderr_of(&output)
    );
}

#[test]
fn a_corrupted_database_is_refused_at_start_and_left_untouched() {
    // A real database, written by a real server run.
    let mut server = Server::start(|_, _| {});
    let data_dir = server.dir.path().join("data");
    let (status, _) = server.terminate();
    assert_eq!(status.code(), Some(0));
    let original = std::fs::read(data_dir.join("hearth.db")).expect("database");

    let copy = tempfile::tempdir().expect("temp dir");
    let copy_data = copy.path().join("data");
    std::fs::create_dir_all(&copy_data).expect("mkdir");
    let mut bytes = original.clone();
    for (offset, byte) in bytes.iter_mut().enumerate().skip(4096) {
        *byte = (offset * 13 % 241) as u8;
    }
    std::fs::write(copy_data.join("hearth.db"), &bytes).expect("write garbage");

    let output = run(hearth(copy.path()).arg("--data-dir").arg(&copy_data).args([
        "serve",
        "--listen",
        "127.0.0.1:0",
    ]));
    assert!(
        !output.status.success(),
        "a corrupt database must stop start-up"
    );
    let stderr = stderr_of(&output);
    assert!(stderr.contains("failed its integrity check"), "{stderr}");
    assert!(stderr.contains("Restore it from a backup"), "{stderr}");
    assert_eq!(
        std::fs::read(copy_data.join("hearth.db")).expect("read back"),
        bytes,
        "the corrupt file must be left exactly as it was"
    );
    let names: Vec<_> = std::fs::read_dir(&copy_data)
        .expect("list")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(names.len(), 1, "no files created beside it: {names:?}");
}
