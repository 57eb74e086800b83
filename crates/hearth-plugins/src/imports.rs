//! Deny by default, checked at install: every interface a component imports must be one Hearth
//! grants to every plugin (time, randomness, its own streams, a log) or one its manifest
//! declares. Anything else — sockets, HTTP of its own, an interface Hearth does not know — is
//! refused before the plugin can run, naming the import.

use crate::PluginError;
use crate::manifest::Manifest;

/// What Hearth does with an imported interface.
#[derive(Debug, PartialEq, Eq)]
enum Grant {
    /// Granted to every plugin.
    Always,
    /// Granted when the manifest declares the capability (named for the error message).
    Declared(&'static str),
    /// Never granted, with the reason.
    Never(&'static str),
}

/// The interface name without its package version: `wasi:io/streams@0.2.6` → `wasi:io/streams`.
fn unversioned(import: &str) -> &str {
    import.split_once('@').map_or(import, |(name, _)| name)
}

fn grant(interface: &str) -> Grant {
    match interface {
        // The WASI a Rust `std` program imports. The context behind them is empty: no
        // environment, no arguments, no preopened directories (so no file can be opened),
        // stdin closed, stdout and stderr into the plugin's log.
        "wasi:io/error" | "wasi:io/poll" | "wasi:io/streams" => Grant::Always,
        "wasi:clocks/wall-clock" | "wasi:clocks/monotonic-clock" => Grant::Always,
        "wasi:random/random" | "wasi:random/insecure" | "wasi:random/insecure-seed" => {
            Grant::Always
        }
        "wasi:cli/environment"
        | "wasi:cli/exit"
        | "wasi:cli/stdin"
        | "wasi:cli/stdout"
        | "wasi:cli/stderr"
        | "wasi:cli/terminal-input"
        | "wasi:cli/terminal-output"
        | "wasi:cli/terminal-stdin"
        | "wasi:cli/terminal-stdout"
        | "wasi:cli/terminal-stderr" => Grant::Always,
        "wasi:filesystem/types" | "wasi:filesystem/preopens" => Grant::Always,
        "hearth:plugin/types" | "hearth:plugin/log" | "hearth:plugin/config" => Grant::Always,
        "hearth:plugin/kv" => Grant::Declared("kv"),
        "hearth:plugin/events" => Grant::Declared("publish"),
        "hearth:plugin/http" => Grant::Declared("http"),
        "hearth:plugin/memory" => Grant::Declared("memory_read` or `memory_write"),
        "hearth:plugin/secrets" => Grant::Declared("secrets"),
        "hearth:plugin/models" => Grant::Declared("models"),
        other if other.starts_with("wasi:sockets/") => Grant::Never(
            "which Hearth never grants: a plugin reaches the network only through Hearth's host interfaces",
        ),
        other if other.starts_with("wasi:http/") => Grant::Never(
            "which Hearth never grants: outbound HTTP goes through Hearth's host interfaces",
        ),
        _ => Grant::Never("which is not an interface Hearth provides"),
    }
}

fn declared(manifest: &Manifest, capability: &str) -> bool {
    match capability {
        "kv" => manifest.capabilities.kv,
        "publish" => !manifest.capabilities.publish.is_empty(),
        "http" => !manifest.capabilities.http.is_empty(),
        "memory_read` or `memory_write" => {
            !manifest.capabilities.memory_read.is_empty()
                || !manifest.capabilities.memory_write.is_empty()
        }
        "secrets" => !manifest.capabilities.secrets.is_empty(),
        "models" => !manifest.capabilities.models.is_empty(),
        _ => false,
    }
}

/// Checks a component's imported interface names against what the manifest grants.
pub(crate) fn check<'a>(
    manifest: &Manifest,
    imports: impl IntoIterator<Item = &'a str>,
) -> Result<(), PluginError> {
    for import in imports {
        let refused = |reason: String| PluginError::ImportRefused {
            import: import.to_string(),
            reason,
        };
        match grant(unversioned(import)) {
            Grant::Always => {}
            Grant::Declared(capability) if declared(manifest, capability) => {}
            Grant::Declared(capability) => {
                return Err(refused(format!(
                    "which needs the capability `{capability}`: declare it under [capabilities] in the manifest"
                )));
            }
            Grant::Never(reason) => return Err(refused(reason.to_string())),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(capabilities: &str) -> Manifest {
        Manifest::parse(&format!(
            "name = \"probe\"\nversion = \"0.1.0\"\n[capabilities]\n{capabilities}"
        ))
        .unwrap()
    }

    fn refused_import(manifest: &Manifest, imports: &[&str]) -> Option<String> {
        match check(manifest, imports.iter().copied()) {
            Ok(()) => None,
            Err(PluginError::ImportRefused { import, .. }) => Some(import),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn what_every_std_program_imports_is_granted() {
        let imports = [
            "wasi:cli/environment@0.2.6",
            "wasi:io/streams@0.2.0",
            "wasi:filesystem/preopens@0.2.6",
            "hearth:plugin/log@0.1.0",
        ];
        assert_eq!(refused_import(&manifest(""), &imports), None);
    }

    #[test]
    fn capabilities_are_granted_only_when_declared() {
        let kv = ["hearth:plugin/kv@0.1.0"];
        assert_eq!(refused_import(&manifest(""), &kv).as_deref(), Some(kv[0]));
        assert_eq!(refused_import(&manifest("kv = true"), &kv), None);
        let events = ["hearth:plugin/events@0.1.0"];
        assert_eq!(
            refused_import(&manifest("kv = true"), &events).as_deref(),
            Some(events[0])
        );
        assert_eq!(
            refused_import(&manifest("publish = [\"a.b\"]"), &events),
            None
        );
    }

    #[test]
    fn sockets_and_unknown_interfaces_are_never_granted() {
        let all = manifest("kv = true\npublish = [\">\"]");
        for import in [
            "wasi:sockets/tcp@0.2.6",
            "wasi:http/outgoing-handler@0.2.0",
            "acme:x/y",
        ] {
            assert_eq!(refused_import(&all, &[import]).as_deref(), Some(import));
        }
    }
}
