//! A plugin that opens a socket of its own: its component imports `wasi:sockets`, which no
//! manifest can grant (outbound HTTP goes through the host), so Hearth refuses it at install.

use hearth_plugin_sdk::{Plugin, Tool};

struct Socket;

impl Plugin for Socket {
    fn tools() -> Vec<Tool> {
        vec![Tool::new("connect", "Connects to 127.0.0.1:5432.", r#"{"type":"object"}"#)]
    }

    fn call_tool(_name: &str, _arguments: &str) -> Result<String, String> {
        match std::net::TcpStream::connect("127.0.0.1:5432") {
            Ok(_) => Ok("connected".to_owned()),
            Err(error) => Err(error.to_string()),
        }
    }
}

hearth_plugin_sdk::plugin!(Socket);
