//! Hearth's plugin SDK: a plugin is a type that implements [`Plugin`], exported with
//! [`plugin!`], built with `cargo build --target wasm32-wasip2 --release`.
//!
//! ```ignore
//! struct Echo;
//!
//! impl hearth_plugin_sdk::Plugin for Echo {
//!     fn tools() -> Vec<hearth_plugin_sdk::Tool> {
//!         vec![hearth_plugin_sdk::Tool::new("echo", "Returns its arguments.", r#"{"type":"object"}"#)]
//!     }
//!     fn call_tool(_name: &str, arguments: &str) -> Result<String, String> {
//!         Ok(arguments.to_owned())
//!     }
//! }
//!
//! hearth_plugin_sdk::plugin!(Echo);
//! ```
//!
//! The host's capabilities are the modules [`log`], [`config`], [`kv`], [`events`],
//! [`http`], [`memory`], [`secrets`] and [`models`]; calling
//! one that the plugin's manifest does not declare makes Hearth refuse the plugin at install.

wit_bindgen::generate!({
    path: "../../crates/hearth-plugins/wit",
    world: "plugin",
    pub_export_macro: true,
    export_macro_name: "export_plugin_world",
    default_bindings_module: "hearth_plugin_sdk",
});

pub use exports::hearth::plugin::guest::Guest as __Guest;
pub use hearth::plugin::types::{Event, Tool};

impl Tool {
    /// A tool named `name`, described for the model, taking arguments that match `parameters`
    /// (a JSON schema as text).
    pub fn new(name: &str, description: &str, parameters: &str) -> Tool {
        Tool {
            name: name.to_owned(),
            description: description.to_owned(),
            parameters: parameters.to_owned(),
        }
    }
}

/// The plugin's log, read with `hearth plugins logs NAME`.
pub mod log {
    use crate::hearth::plugin::log::{Level, write};

    pub fn debug(message: &str) {
        write(Level::Debug, message);
    }
    pub fn info(message: &str) {
        write(Level::Info, message);
    }
    pub fn warn(message: &str) {
        write(Level::Warn, message);
    }
    pub fn error(message: &str) {
        write(Level::Error, message);
    }
}

/// The plugin's configuration: a JSON object as text, `{}` until an administrator sets one
/// (checked against the manifest's `config_schema`).
pub mod config {
    pub use crate::hearth::plugin::config::get;
}

/// The plugin's key-value store (capability `kv`), separate per tenant.
pub mod kv {
    pub use crate::hearth::plugin::kv::{delete, get, set};
}

/// Outbound HTTP through Hearth (capability `http`: the manifest's allowed origins).
pub mod http {
    pub use crate::hearth::plugin::http::{Request, Response, fetch};

    /// A GET of `url`: its status and body.
    pub fn get(url: &str) -> Result<(u16, Vec<u8>), String> {
        let response = fetch(&Request {
            method: "GET".to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
        })?;
        Ok((response.status, response.body))
    }
}

/// Collections of the calling tenant's memory (capabilities `memory_read`, `memory_write`).
pub mod memory {
    pub use crate::hearth::plugin::memory::{Document, Hit, delete, get, search, upsert};

    impl Document {
        /// A document of `text` with metadata (a JSON object as text), embedded by the
        /// collection's model; an empty `id` has one made.
        pub fn new(id: &str, text: &str, metadata: &str) -> Document {
            Document {
                id: id.to_owned(),
                text: text.to_owned(),
                metadata: metadata.to_owned(),
                embedding: None,
            }
        }
    }
}

/// Models served by Hearth (capability `models`: the model names the plugin may use).
pub mod models {
    pub use crate::hearth::plugin::models::{chat, embed};
}

/// Named secrets an administrator set for the plugin (capability `secrets`).
pub mod secrets {
    pub use crate::hearth::plugin::secrets::get;
}

/// Publishing events (capability `publish`).
pub mod events {
    pub use crate::hearth::plugin::events::publish;
}

/// What a plugin does. Every method has a default, so a tool plugin implements the first two
/// and an event handler the last.
pub trait Plugin {
    /// The tools this plugin offers.
    fn tools() -> Vec<Tool> {
        Vec::new()
    }

    /// Runs tool `name` with `arguments` (a JSON object as text).
    fn call_tool(name: &str, arguments: &str) -> Result<String, String> {
        let _ = arguments;
        Err(format!("this plugin has no tool named {name}"))
    }

    /// Handles one event; an error asks for it again later.
    fn handle_event(event: Event) -> Result<(), String> {
        let _ = event;
        Ok(())
    }
}

/// Exports `$plugin` (a type implementing [`Plugin`]) as the component's `guest` interface.
#[macro_export]
macro_rules! plugin {
    ($plugin:ty) => {
        struct __HearthPluginExport;

        impl $crate::__Guest for __HearthPluginExport {
            fn tools() -> ::std::vec::Vec<$crate::Tool> {
                <$plugin as $crate::Plugin>::tools()
            }
            fn call_tool(
                name: ::std::string::String,
                arguments: ::std::string::String,
            ) -> ::std::result::Result<::std::string::String, ::std::string::String> {
                <$plugin as $crate::Plugin>::call_tool(&name, &arguments)
            }
            fn handle_event(event: $crate::Event) -> ::std::result::Result<(), ::std::string::String> {
                <$plugin as $crate::Plugin>::handle_event(event)
            }
        }

        $crate::export_plugin_world!(__HearthPluginExport with_types_in $crate);
    };
}
