//! Black-box tests: the built `hearth` binary, started as a user would start it, spoken to over
//! real HTTP on a free port, with a temporary data directory.

mod cli;
mod concurrency;
mod config;
mod events;
mod flags_prompts;
mod gateway;
mod inference;
mod jobs;
mod memory;
mod models;
mod oidc;
mod otlp;
mod plugins;
mod python_clients;
mod server;
mod storage;
mod structured;
mod upstream;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test, with an environment cleared of anything that could leak in from the
/// developer's shell (a `HEARTH_*` variable, a config file in their home).
pub fn hearth(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hearth"));
    command.env_clear();
    command.env("HOME", home);
    command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    command.stdin(Stdio::null());
    command
}

/// Runs the binary to completion.
pub fn run(command: &mut Command) -> Output {
    command.output().expect("run hearth")
}

pub fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A running `hearth serve`, its log captured to a file, stopped on drop.
pub struct Server {
    pub child: Child,
    pub address: String,
    pub log_path: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts `hearth serve --listen 127.0.0.1:0` in a fresh temporary directory (its data dir
    /// and home) and waits until it logs the address it listens on.
    pub fn start(configure: impl FnOnce(&mut Command, &Path)) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let log_path = dir.path().join("server.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = hearth(dir.path());
        command
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(log);
        configure(&mut command, dir.path());
        let child = command.spawn().expect("spawn hearth serve");
        let mut server = Server {
            child,
            address: String::new(),
            log_path,
            dir,
        };
        let line = server.wait_for_log("\"listening", Duration::from_secs(20));
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        server.address = value["address"]
            .as_str()
            .expect("address field")
            .to_string();
        server
    }

    /// Starts `hearth serve` again on the same data directory, after the last process ended
    /// (`terminate`, or a kill), with its log in a new file.
    pub fn restart(&mut self, configure: impl FnOnce(&mut Command, &Path)) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let restarts = std::fs::read_dir(self.dir.path())
            .map(|entries| entries.count())
            .unwrap_or(0);
        self.log_path = self.dir.path().join(format!("server-{restarts}.log"));
        let log = std::fs::File::create(&self.log_path).expect("log file");
        let mut command = hearth(self.dir.path());
        command
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(log);
        configure(&mut command, self.dir.path());
        self.child = command.spawn().expect("spawn hearth serve");
        let line = self.wait_for_log("\"listening", Duration::from_secs(20));
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON log line");
        self.address = value["address"]
            .as_str()
            .expect("address field")
            .to_string();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits for a log line containing `needle` and returns it. Panics with the whole log if
    /// it does not come, or if the process exits first.
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait_for_nth_log(needle, 1, timeout)
    }

    pub fn wait_for_nth_log(&mut self, needle: &str, nth: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if let Some(line) = log
                .lines()
                .filter(|line| line.contains(needle))
                .nth(nth - 1)
            {
                return line.to_string();
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("hearth exited ({status}) before logging {needle:?}:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?} within {timeout:?}:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Sends SIGTERM and waits for the exit status. The temporary directory stays until the
    /// `Server` is dropped.
    pub fn terminate(&mut self) -> (ExitStatus, String) {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return (status, self.log());
            }
            assert!(
                Instant::now() < deadline,
                "hearth did not exit after SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("http client")
}

pub fn write_file(path: &Path, text: &str) {
    let mut file = std::fs::File::create(path).expect("create file");
    file.write_all(text.as_bytes()).expect("write file");
}
