//! Feature flags: boolean, string, number and JSON flags per tenant, each with variants,
//! targeting rules over an evaluation context, sticky percentage splits and a kill switch.
//! Defined in the configuration (the binary applies `[[flags]]` at start and on every reload)
//! or over the API; configuration's flags are changed only there.
//!
//! Every flag is compiled when defined, and all of them live in one immutable [`Snapshot`]
//! replaced whole on each change, so an evaluation takes no lock beyond fetching the snapshot
//! and allocates nothing: what Hearth's own features need on their hot paths, and what the
//! server's OFREP endpoints serve to the OpenFeature SDKs. Writes go to the store first.
//! Knows nothing of HTTP.

pub mod bucket;
mod error;
mod evaluate;
pub mod spec;

use std::sync::{Arc, RwLock};

use hearth_store::{FlagRow, Store};

pub use error::FlagError;
pub use evaluate::{CompiledFlag, Context, ErrorCode, Evaluation, Reason, TARGETING_KEY};

use evaluate::FastMap;
pub use spec::{Condition, FlagKind, FlagSpec, Operator, Rule, Split};

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct FlagsOptions {
    /// Most flags one tenant may define.
    pub max_per_tenant: usize,
}

impl Default for FlagsOptions {
    fn default() -> Self {
        FlagsOptions {
            max_per_tenant: 5000,
        }
    }
}

/// Where a flag was defined: configuration's are replaced at every start and reload and cannot
/// be changed over the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Config,
    Api,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Api => "api",
        }
    }
}

/// A flag as it stands.
#[derive(Debug, Clone)]
pub struct FlagInfo {
    pub flag: Arc<CompiledFlag>,
    pub source: Source,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// Every tenant's flags at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    tenants: FastMap<String, FastMap<String, FlagInfo>>,
}

impl Snapshot {
    /// A tenant's flag.
    pub fn flag(&self, tenant: &str, key: &str) -> Option<&Arc<CompiledFlag>> {
        self.tenants
            .get(tenant)
            .and_then(|flags| flags.get(key))
            .map(|info| &info.flag)
    }

    /// Evaluates a tenant's flag.
    pub fn evaluate(
        &self,
        tenant: &str,
        key: &str,
        context: &Context,
    ) -> Result<Evaluation<'_>, ErrorCode> {
        self.flag(tenant, key)
            .ok_or(ErrorCode::FlagNotFound)?
            .evaluate(context)
    }

    /// A tenant's flags, by key.
    pub fn flags(&self, tenant: &str) -> Vec<&FlagInfo> {
        let mut flags: Vec<&FlagInfo> = self
            .tenants
            .get(tenant)
            .map(|flags| flags.values().collect())
            .unwrap_or_default();
        flags.sort_by(|a, b| a.flag.key.cmp(&b.flag.key));
        flags
    }
}

/// The flags of every tenant. Cheap to clone.
#[derive(Clone)]
pub struct Flags {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    options: FlagsOptions,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Changes one at a time: each builds the next snapshot from the last.
    writes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Flags {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Flags").finish_non_exhaustive()
    }
}

fn info_of(row: FlagRow) -> Result<(String, FlagInfo), FlagError> {
    let spec: FlagSpec = serde_json::from_str(&row.definition).map_err(|error| {
        FlagError::Limit(format!(
            "the stored flag {}/{} cannot be read: {error}",
            row.tenant_id, row.key
        ))
    })?;
    let spec = spec.settle()?;
    let source = if row.source == "config" {
        Source::Config
    } else {
        Source::Api
    };
    Ok((
        row.tenant_id,
        FlagInfo {
            flag: Arc::new(CompiledFlag::compile(&row.key, spec)),
            source,
            created_at_ms: row.created_at_ms,
            updated_at_ms: row.updated_at_ms,
        },
    ))
}

impl Flags {
    /// Loads and compiles every stored flag.
    pub async fn open(store: Store, options: FlagsOptions) -> Result<Flags, FlagError> {
        let mut snapshot = Snapshot::default();
        for row in store.flags().await? {
            let (tenant, info) = info_of(row)?;
            snapshot
                .tenants
                .entry(tenant)
                .or_default()
                .insert(info.flag.key.clone(), info);
        }
        Ok(Flags {
            inner: Arc::new(Inner {
                store,
                options,
                snapshot: RwLock::new(Arc::new(snapshot)),
                writes: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The flags as they stand now; hold it for a request to evaluate many flags at one
    /// moment.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner
            .snapshot
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Puts the next snapshot in place (tenants left without flags dropped).
    fn install(&self, mut tenants: FastMap<String, FastMap<String, FlagInfo>>) {
        tenants.retain(|_, flags| !flags.is_empty());
        *self
            .inner
            .snapshot
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(Snapshot { tenants });
    }

    /// Builds the next snapshot from the current one with `change` applied to `tenant`'s
    /// flags, and puts it in place.
    fn replace(&self, tenant: &str, change: impl FnOnce(&mut FastMap<String, FlagInfo>)) {
        let current = self.snapshot();
        let mut tenants = current.tenants.clone();
        change(tenants.entry(tenant.to_string()).or_default());
        self.install(tenants);
    }

    pub fn get(&self, tenant: &str, key: &str) -> Result<FlagInfo, FlagError> {
        self.snapshot()
            .tenants
            .get(tenant)
            .and_then(|flags| flags.get(key))
            .cloned()
            .ok_or_else(|| FlagError::NotFound(key.to_string()))
    }

    pub fn list(&self, tenant: &str) -> Vec<FlagInfo> {
        self.snapshot().flags(tenant).into_iter().cloned().collect()
    }

    /// Defines a flag over the API (`replace`: or replaces the one of that key).
    pub async fn put(
        &self,
        tenant: &str,
        key: &str,
        spec: FlagSpec,
        replace: bool,
        at_ms: i64,
    ) -> Result<FlagInfo, FlagError> {
        spec::check_key(key)?;
        let spec = spec.settle()?;
        let _write = self.inner.writes.lock().await;
        let existing = self.get(tenant, key).ok();
        match &existing {
            Some(info) if info.source == Source::Config => {
                return Err(FlagError::Conflict(format!(
                    "flag {key} is defined in the server's configuration: change it there (a \
                     reload applies it)"
                )));
            }
            Some(_) if !replace => {
                return Err(FlagError::Conflict(format!(
                    "flag {key} exists; PUT /v1/flags/{key} replaces it"
                )));
            }
            None => {
                let count = self.snapshot().tenants.get(tenant).map_or(0, FastMap::len);
                if count >= self.inner.options.max_per_tenant {
                    return Err(FlagError::Limit(format!(
                        "the tenant has {count} flags, the most it may have; remove one first"
                    )));
                }
            }
            Some(_) => {}
        }
        let created_at_ms = existing.map_or(at_ms, |info| info.created_at_ms);
        let row = FlagRow {
            tenant_id: tenant.to_string(),
            key: key.to_string(),
            definition: serde_json::to_string(&spec).expect("a flag serializes"),
            source: Source::Api.as_str().to_string(),
            created_at_ms,
            updated_at_ms: at_ms,
        };
        self.inner.store.put_flag(&row).await?;
        let info = FlagInfo {
            flag: Arc::new(CompiledFlag::compile(key, spec)),
            source: Source::Api,
            created_at_ms,
            updated_at_ms: at_ms,
        };
        let stored = info.clone();
        self.replace(tenant, |flags| {
            flags.insert(key.to_string(), stored);
        });
        Ok(info)
    }

    /// Switches an API-defined flag on or off (the kill switch).
    pub async fn set_enabled(
        &self,
        tenant: &str,
        key: &str,
        enabled: bool,
        at_ms: i64,
    ) -> Result<FlagInfo, FlagError> {
        let mut spec = self.get(tenant, key)?.flag.spec.clone();
        spec.enabled = enabled;
        self.put(tenant, key, spec, true, at_ms).await
    }

    /// Removes an API-defined flag.
    pub async fn delete(&self, tenant: &str, key: &str) -> Result<(), FlagError> {
        let _write = self.inner.writes.lock().await;
        let existing = self.get(tenant, key)?;
        if existing.source == Source::Config {
            return Err(FlagError::Conflict(format!(
                "flag {key} is defined in the server's configuration: remove it there"
            )));
        }
        self.inner.store.delete_flag(tenant, key).await?;
        self.replace(tenant, |flags| {
            flags.remove(key);
        });
        Ok(())
    }

    /// Makes the configuration's flags exactly `flags` (tenant, key, definition): new ones
    /// are added, changed ones replaced, ones no longer configured removed. Checked whole
    /// first: one bad flag changes nothing. A configured key that the API defined is taken
    /// over by the configuration.
    pub async fn apply_config(
        &self,
        flags: Vec<(String, String, FlagSpec)>,
        at_ms: i64,
    ) -> Result<(), FlagError> {
        let mut settled = Vec::with_capacity(flags.len());
        for (tenant, key, spec) in flags {
            spec::check_key(&key).map_err(|error| prefixed(&key, error))?;
            let spec = spec.settle().map_err(|error| prefixed(&key, error))?;
            settled.push((tenant, key, spec));
        }
        let _write = self.inner.writes.lock().await;
        let current = self.snapshot();
        let rows: Vec<FlagRow> = settled
            .iter()
            .map(|(tenant, key, spec)| {
                let created_at_ms = current
                    .tenants
                    .get(tenant)
                    .and_then(|flags| flags.get(key))
                    .map_or(at_ms, |info| info.created_at_ms);
                FlagRow {
                    tenant_id: tenant.clone(),
                    key: key.clone(),
                    definition: serde_json::to_string(spec).expect("a flag serializes"),
                    source: Source::Config.as_str().to_string(),
                    created_at_ms,
                    updated_at_ms: at_ms,
                }
            })
            .collect();
        self.inner.store.replace_config_flags(&rows).await?;
        let mut tenants = current.tenants.clone();
        for flags in tenants.values_mut() {
            flags.retain(|_, info| info.source != Source::Config);
        }
        for (row, (tenant, key, spec)) in rows.iter().zip(settled) {
            let unchanged = current
                .tenants
                .get(&tenant)
                .and_then(|flags| flags.get(&key))
                .filter(|info| info.source == Source::Config && info.flag.spec == spec);
            let info = match unchanged {
                Some(info) => info.clone(),
                None => FlagInfo {
                    flag: Arc::new(CompiledFlag::compile(&key, spec)),
                    source: Source::Config,
                    created_at_ms: row.created_at_ms,
                    updated_at_ms: at_ms,
                },
            };
            tenants.entry(tenant).or_default().insert(key, info);
        }
        self.install(tenants);
        Ok(())
    }
}

/// A configured flag's error, naming the flag.
fn prefixed(key: &str, error: FlagError) -> FlagError {
    match error {
        FlagError::Invalid { field, message } => FlagError::Invalid {
            field: format!("flags.{key}.{field}"),
            message,
        },
        other => other,
    }
}
