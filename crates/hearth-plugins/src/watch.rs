//! Hot reload for development: a directory of plugin folders (each a `plugin.toml`, one
//! `*.wasm` component and, optionally, its `*.wasm.sig`), looked at every second. A folder
//! whose files changed is installed, or upgraded when a plugin of its name is installed (calls
//! in flight finish on the old version), without a restart. A folder that does not load is
//! logged once per change and left as it was; removing a folder removes nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::{Manifest, PluginError, Plugins};

/// What identifies a folder's contents cheaply: each file's name, length and change time.
type Fingerprint = Vec<(PathBuf, u64, Option<SystemTime>)>;

fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    files
        .iter()
        .map(|path| {
            let metadata = std::fs::metadata(path).ok();
            (
                path.clone(),
                metadata.as_ref().map_or(0, |metadata| metadata.len()),
                metadata.and_then(|metadata| metadata.modified().ok()),
            )
        })
        .collect()
}

/// A plugin folder's files: the manifest, the component and its signature if there is one.
fn plugin_files(folder: &Path) -> Option<(PathBuf, PathBuf, Option<PathBuf>)> {
    let manifest = folder.join("plugin.toml");
    if !manifest.is_file() {
        return None;
    }
    let mut components: Vec<PathBuf> = std::fs::read_dir(folder)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "wasm")
        })
        .collect();
    components.sort();
    let component = components.pop()?;
    let mut signature = component.clone().into_os_string();
    signature.push(".sig");
    let signature = PathBuf::from(signature);
    Some((
        manifest,
        component,
        signature.is_file().then_some(signature),
    ))
}

/// Installs or upgrades from one folder; `Ok(None)` when the installed plugin is this already.
pub(crate) async fn load_folder(
    plugins: &Plugins,
    folder: &Path,
) -> Result<Option<String>, PluginError> {
    let Some((manifest_path, component_path, signature_path)) = plugin_files(folder) else {
        return Ok(None);
    };
    let manifest_text = std::fs::read_to_string(&manifest_path)?;
    let component = std::fs::read(&component_path)?;
    let signature = match &signature_path {
        Some(path) => Some(std::fs::read_to_string(path)?.trim().to_string()),
        None => None,
    };
    let manifest = Manifest::parse(&manifest_text)?;
    let sha256 = crate::sha256_hex(&component);
    let info = match plugins.row(&manifest.name) {
        Err(PluginError::NotFound(_)) => {
            plugins
                .install(&manifest_text, &component, signature.as_deref())
                .await?
        }
        Err(error) => return Err(error),
        Ok(row) if row.sha256 == sha256 && row.manifest == manifest_text => return Ok(None),
        Ok(_) => {
            plugins
                .upgrade(
                    &manifest.name,
                    &manifest_text,
                    &component,
                    signature.as_deref(),
                )
                .await?
        }
    };
    Ok(Some(format!(
        "{} {}",
        info.manifest.name, info.manifest.version
    )))
}

/// Looks at `dir` every `every` while the service lives.
pub fn spawn_watch(plugins: &Plugins, dir: PathBuf, every: Duration) {
    let weak = std::sync::Arc::downgrade(&plugins.inner);
    tokio::spawn(async move {
        let mut seen: HashMap<PathBuf, Fingerprint> = HashMap::new();
        loop {
            let Some(inner) = weak.upgrade() else {
                return;
            };
            let plugins = Plugins { inner };
            let mut folders: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|entry| entry.path())
                        .filter(|path| path.is_dir())
                        .collect()
                })
                .unwrap_or_default();
            folders.sort();
            for folder in folders {
                let Some((manifest, component, signature)) = plugin_files(&folder) else {
                    continue;
                };
                let mut files = vec![manifest, component];
                files.extend(signature);
                let now = fingerprint(&files);
                if seen.get(&folder) == Some(&now) {
                    continue;
                }
                seen.insert(folder.clone(), now);
                match load_folder(&plugins, &folder).await {
                    Ok(Some(loaded)) => {
                        tracing::info!(folder = %folder.display(), plugin = %loaded, "plugin reloaded from its folder")
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(folder = %folder.display(), %error, "a watched plugin folder did not load; fix it and save again")
                    }
                }
            }
            drop(plugins);
            tokio::time::sleep(every).await;
        }
    });
}
