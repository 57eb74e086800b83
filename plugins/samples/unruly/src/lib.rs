//! A plugin whose tools misbehave: spin forever, allocate without end, read the host's files,
//! panic. `echo` is the well-behaved no-op the benchmarks call; `busy` computes for a given
//! number of milliseconds and then answers (a call that is still in flight when a test acts);
//! `sleep` waits on the host's clock (a call in flight that costs no CPU).

use hearth_plugin_sdk::{Plugin, Tool};

struct Unruly;

const ANY: &str = r#"{"type":"object"}"#;

impl Plugin for Unruly {
    fn tools() -> Vec<Tool> {
        vec![
            Tool::new("echo", "Returns its arguments.", ANY),
            Tool::new("busy", "Computes for `ms` milliseconds, then answers.", ANY),
            Tool::new("sleep", "Waits `ms` milliseconds (on the host's clock), then answers.", ANY),
            Tool::new("spin", "Loops forever.", ANY),
            Tool::new("grow", "Allocates memory until it cannot.", ANY),
            Tool::new("read_file", "Reads /etc/passwd.", ANY),
            Tool::new("panic", "Panics.", ANY),
        ]
    }

    fn call_tool(name: &str, arguments: &str) -> Result<String, String> {
        match name {
            "echo" => Ok(arguments.to_owned()),
            "busy" => {
                let arguments: serde_json::Value =
                    serde_json::from_str(arguments).map_err(|error| error.to_string())?;
                let ms = arguments["ms"].as_u64().unwrap_or(10);
                let started = std::time::Instant::now();
                let mut rounds: u64 = 0;
                while started.elapsed() < std::time::Duration::from_millis(ms) {
                    rounds = std::hint::black_box(rounds + 1);
                }
                Ok(format!("{{\"rounds\":{rounds}}}"))
            }
            "sleep" => {
                let arguments: serde_json::Value =
                    serde_json::from_str(arguments).map_err(|error| error.to_string())?;
                let ms = arguments["ms"].as_u64().unwrap_or(10);
                std::thread::sleep(std::time::Duration::from_millis(ms));
                Ok("{}".to_owned())
            }
            "spin" => {
                let mut counter: u64 = 0;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            "grow" => {
                let mut blocks: Vec<Vec<u8>> = Vec::new();
                loop {
                    blocks.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&blocks);
                }
            }
            "read_file" => std::fs::read_to_string("/etc/passwd")
                .map_err(|error| format!("cannot read /etc/passwd: {error}")),
            "panic" => panic!("asked to panic"),
            other => Err(format!("no tool named {other}")),
        }
    }
}

hearth_plugin_sdk::plugin!(Unruly);
