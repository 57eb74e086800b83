//! Prompt templates: named per tenant, each a list of immutable numbered versions (message
//! templates, a variable schema, model and sampling defaults) and movable labels
//! (`production`, `staging`) that point at one version each. Requests use a prompt by
//! reference (name plus version, label, or neither for the latest) and get its messages
//! rendered server-side, variables checked first.
//!
//! Every version is compiled when the service opens or when it is pushed, so a render reads
//! memory only: no store round trip on the request path. Writes go to the store first and then
//! to memory, one at a time. The service knows nothing of HTTP: the server's routes and the CLI
//! call it.

mod error;
mod render;
pub mod spec;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use hearth_store::{PromptLabelRow, PromptVersionRow, Store};
use serde_json::{Map, Value};

pub use error::PromptError;
pub use render::{MAX_RENDERED_BYTES, RENDER_FUEL};
pub use spec::{MessageTemplate, PromptDefinition, VariableSpec, VariableType};

use render::Compiled;

/// The label every prompt has implicitly: its newest version.
pub const LATEST: &str = "latest";

/// How the service is set up.
#[derive(Debug, Clone)]
pub struct PromptsOptions {
    /// Most prompts one tenant may hold.
    pub max_per_tenant: usize,
    /// Most versions one prompt may have (versions are immutable and referenced by number, so
    /// none is trimmed: the prompt must be removed, or a new name used).
    pub max_versions: u32,
}

impl Default for PromptsOptions {
    fn default() -> Self {
        PromptsOptions {
            max_per_tenant: 1000,
            max_versions: 1000,
        }
    }
}

/// Which version of a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Latest,
    Version(u32),
    Label(String),
}

impl Selector {
    /// `7` is a version, `latest` the newest, anything else a label.
    pub fn parse(text: &str) -> Selector {
        match text.parse::<u32>() {
            Ok(version) => Selector::Version(version),
            Err(_) if text == LATEST => Selector::Latest,
            Err(_) => Selector::Label(text.to_string()),
        }
    }

    fn describe(&self) -> String {
        match self {
            Selector::Latest => "versions".to_string(),
            Selector::Version(version) => format!("version {version}"),
            Selector::Label(label) => format!("label `{label}`"),
        }
    }
}

/// One version, as stored and compiled.
#[derive(Debug)]
pub struct PromptVersion {
    pub name: String,
    pub version: u32,
    pub definition: PromptDefinition,
    pub note: Option<String>,
    pub created_by: Option<String>,
    pub created_at_ms: i64,
    compiled: Compiled,
}

impl PromptVersion {
    fn build(
        name: &str,
        version: u32,
        definition: PromptDefinition,
        meta: (Option<String>, Option<String>, i64),
    ) -> Result<PromptVersion, PromptError> {
        definition.check_messages()?;
        let (compiled, used) = Compiled::compile(&definition)?;
        let definition = definition.settle(&used)?;
        let (note, created_by, created_at_ms) = meta;
        Ok(PromptVersion {
            name: name.to_string(),
            version,
            definition,
            note,
            created_by,
            created_at_ms,
            compiled,
        })
    }

    /// Renders the version's messages with `variables`, checked against its schema first.
    pub fn render(&self, variables: &Map<String, Value>) -> Result<Rendered, PromptError> {
        let context = render::context(&self.definition, variables)?;
        let texts = self.compiled.render(&context)?;
        let messages = self
            .definition
            .messages
            .iter()
            .zip(texts)
            .map(|(message, content)| RenderedMessage {
                role: message.role.clone(),
                content,
            })
            .collect();
        Ok(Rendered {
            name: self.name.clone(),
            version: self.version,
            messages,
            model: self.definition.model.clone(),
            parameters: self.definition.parameters.clone(),
        })
    }
}

/// A rendered prompt: what a request gets before its own messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub name: String,
    pub version: u32,
    pub messages: Vec<RenderedMessage>,
    pub model: Option<String>,
    pub parameters: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedMessage {
    pub role: String,
    pub content: String,
}

/// A prompt: its versions, oldest first, and labels.
#[derive(Debug, Clone)]
pub struct PromptInfo {
    pub name: String,
    pub versions: Vec<Arc<PromptVersion>>,
    pub labels: BTreeMap<String, u32>,
}

impl PromptInfo {
    pub fn latest(&self) -> &Arc<PromptVersion> {
        self.versions
            .last()
            .expect("a prompt has at least one version")
    }
}

/// A new version as pushed: its definition, the labels to point at it, and who said what.
#[derive(Debug, Clone)]
pub struct Push {
    pub definition: PromptDefinition,
    pub labels: Vec<String>,
    /// What changed, for the history.
    pub note: Option<String>,
    pub created_by: Option<String>,
}

impl Push {
    /// A push of `definition` alone.
    pub fn of(definition: PromptDefinition) -> Push {
        Push {
            definition,
            labels: Vec::new(),
            note: None,
            created_by: None,
        }
    }
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub version: Arc<PromptVersion>,
    /// False when the definition was the latest version's already (nothing new was made; the
    /// labels were still moved to it).
    pub created: bool,
}

#[derive(Debug, Default)]
struct Prompt {
    versions: BTreeMap<u32, Arc<PromptVersion>>,
    labels: BTreeMap<String, u32>,
}

impl Prompt {
    fn info(&self, name: &str) -> PromptInfo {
        PromptInfo {
            name: name.to_string(),
            versions: self.versions.values().cloned().collect(),
            labels: self.labels.clone(),
        }
    }

    fn select(&self, name: &str, selector: &Selector) -> Result<Arc<PromptVersion>, PromptError> {
        let version = match selector {
            Selector::Latest => self.versions.keys().next_back().copied(),
            Selector::Version(version) => Some(*version),
            Selector::Label(label) => self.labels.get(label).copied(),
        };
        version
            .and_then(|version| self.versions.get(&version).cloned())
            .ok_or_else(|| PromptError::NoSuchVersion {
                prompt: name.to_string(),
                what: selector.describe(),
            })
    }
}

/// The prompts of every tenant. Cheap to clone.
#[derive(Clone)]
pub struct Prompts {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    options: PromptsOptions,
    /// Tenant → prompt name → prompt.
    prompts: RwLock<HashMap<String, BTreeMap<String, Prompt>>>,
    /// Writes one at a time, so version numbers are handed out in order.
    writes: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Prompts {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Prompts").finish_non_exhaustive()
    }
}

impl Prompts {
    /// Loads and compiles every stored version.
    pub async fn open(store: Store, options: PromptsOptions) -> Result<Prompts, PromptError> {
        let mut prompts: HashMap<String, BTreeMap<String, Prompt>> = HashMap::new();
        for row in store.prompt_versions().await? {
            let definition: PromptDefinition =
                serde_json::from_str(&row.definition).map_err(|error| {
                    PromptError::Limit(format!(
                        "the stored prompt {}/{} version {} cannot be read: {error}",
                        row.tenant_id, row.name, row.version
                    ))
                })?;
            let version = u32::try_from(row.version).unwrap_or(u32::MAX);
            let built = PromptVersion::build(
                &row.name,
                version,
                definition,
                (row.note, row.created_by, row.created_at_ms),
            )?;
            prompts
                .entry(row.tenant_id)
                .or_default()
                .entry(row.name)
                .or_default()
                .versions
                .insert(version, Arc::new(built));
        }
        for row in store.prompt_labels().await? {
            if let Some(prompt) = prompts
                .get_mut(&row.tenant_id)
                .and_then(|tenant| tenant.get_mut(&row.name))
            {
                let version = u32::try_from(row.version).unwrap_or(u32::MAX);
                prompt.labels.insert(row.label, version);
            }
        }
        Ok(Prompts {
            inner: Arc::new(Inner {
                store,
                options,
                prompts: RwLock::new(prompts),
                writes: tokio::sync::Mutex::new(()),
            }),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, BTreeMap<String, Prompt>>> {
        self.inner
            .prompts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, BTreeMap<String, Prompt>>> {
        self.inner
            .prompts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The tenant's prompts, by name.
    pub fn list(&self, tenant: &str) -> Vec<PromptInfo> {
        self.read()
            .get(tenant)
            .map(|prompts| {
                prompts
                    .iter()
                    .map(|(name, prompt)| prompt.info(name))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn get(&self, tenant: &str, name: &str) -> Result<PromptInfo, PromptError> {
        self.read()
            .get(tenant)
            .and_then(|prompts| prompts.get(name))
            .map(|prompt| prompt.info(name))
            .ok_or_else(|| PromptError::NotFound(name.to_string()))
    }

    /// One version of a prompt.
    pub fn version(
        &self,
        tenant: &str,
        name: &str,
        selector: &Selector,
    ) -> Result<Arc<PromptVersion>, PromptError> {
        let prompts = self.read();
        let prompt = prompts
            .get(tenant)
            .and_then(|prompts| prompts.get(name))
            .ok_or_else(|| PromptError::NotFound(name.to_string()))?;
        prompt.select(name, selector)
    }

    /// Renders a version of a prompt with `variables`.
    pub fn render(
        &self,
        tenant: &str,
        name: &str,
        selector: &Selector,
        variables: &Map<String, Value>,
    ) -> Result<Rendered, PromptError> {
        self.version(tenant, name, selector)?.render(variables)
    }

    /// Adds a version (numbered one past the newest) and points `labels` at it. The same
    /// definition as the newest version makes none: the labels move to the newest.
    pub async fn push(
        &self,
        tenant: &str,
        name: &str,
        push: Push,
        at_ms: i64,
    ) -> Result<Pushed, PromptError> {
        let Push {
            definition,
            labels,
            note,
            created_by,
        } = push;
        let labels = labels.as_slice();
        spec::check_name("name", name)?;
        for (index, label) in labels.iter().enumerate() {
            check_label(&format!("labels[{index}]"), label)?;
        }
        let _write = self.inner.writes.lock().await;
        let (latest, count) = {
            let prompts = self.read();
            let tenant_prompts = prompts.get(tenant);
            let latest = tenant_prompts
                .and_then(|prompts| prompts.get(name))
                .and_then(|prompt| prompt.versions.values().next_back().cloned());
            (latest, tenant_prompts.map_or(0, BTreeMap::len))
        };
        let number = latest.as_ref().map_or(1, |latest| latest.version + 1);
        let candidate = PromptVersion::build(name, number, definition, (note, created_by, at_ms))?;
        if let Some(latest) = latest
            && latest.definition == candidate.definition
        {
            for label in labels {
                self.put_label(tenant, name, label, latest.version, at_ms, false)
                    .await?;
            }
            return Ok(Pushed {
                version: latest,
                created: false,
            });
        }
        if number == 1 && count >= self.inner.options.max_per_tenant {
            return Err(PromptError::Limit(format!(
                "the tenant has {count} prompts, the most it may have; remove one first"
            )));
        }
        if number > self.inner.options.max_versions {
            return Err(PromptError::Limit(format!(
                "prompt {name} has {} versions, the most a prompt may have; remove it or push \
                 under a new name",
                number - 1
            )));
        }
        let row = PromptVersionRow {
            tenant_id: tenant.to_string(),
            name: name.to_string(),
            version: i64::from(number),
            definition: serde_json::to_string(&candidate.definition)
                .expect("a definition serializes"),
            note: candidate.note.clone(),
            created_by: candidate.created_by.clone(),
            created_at_ms: at_ms,
        };
        self.inner.store.insert_prompt_version(&row, labels).await?;
        let version = Arc::new(candidate);
        let mut prompts = self.write();
        let prompt = prompts
            .entry(tenant.to_string())
            .or_default()
            .entry(name.to_string())
            .or_default();
        prompt.versions.insert(number, version.clone());
        for label in labels {
            prompt.labels.insert(label.clone(), number);
        }
        Ok(Pushed {
            version,
            created: true,
        })
    }

    /// Points `label` at `version` of the prompt.
    pub async fn set_label(
        &self,
        tenant: &str,
        name: &str,
        label: &str,
        version: u32,
        at_ms: i64,
    ) -> Result<(), PromptError> {
        check_label("label", label)?;
        let _write = self.inner.writes.lock().await;
        self.put_label(tenant, name, label, version, at_ms, true)
            .await
    }

    async fn put_label(
        &self,
        tenant: &str,
        name: &str,
        label: &str,
        version: u32,
        at_ms: i64,
        check: bool,
    ) -> Result<(), PromptError> {
        if check {
            self.version(tenant, name, &Selector::Version(version))?;
        }
        self.inner
            .store
            .put_prompt_label(&PromptLabelRow {
                tenant_id: tenant.to_string(),
                name: name.to_string(),
                label: label.to_string(),
                version: i64::from(version),
                updated_at_ms: at_ms,
            })
            .await?;
        if let Some(prompt) = self
            .write()
            .get_mut(tenant)
            .and_then(|prompts| prompts.get_mut(name))
        {
            prompt.labels.insert(label.to_string(), version);
        }
        Ok(())
    }

    /// Removes a label; the version it pointed at stays.
    pub async fn remove_label(
        &self,
        tenant: &str,
        name: &str,
        label: &str,
    ) -> Result<(), PromptError> {
        let _write = self.inner.writes.lock().await;
        self.get(tenant, name)?;
        if !self
            .inner
            .store
            .delete_prompt_label(tenant, name, label)
            .await?
        {
            return Err(PromptError::NoSuchVersion {
                prompt: name.to_string(),
                what: Selector::Label(label.to_string()).describe(),
            });
        }
        if let Some(prompt) = self
            .write()
            .get_mut(tenant)
            .and_then(|prompts| prompts.get_mut(name))
        {
            prompt.labels.remove(label);
        }
        Ok(())
    }

    /// Removes a prompt with all its versions and labels.
    pub async fn delete(&self, tenant: &str, name: &str) -> Result<(), PromptError> {
        let _write = self.inner.writes.lock().await;
        if !self.inner.store.delete_prompt(tenant, name).await? {
            return Err(PromptError::NotFound(name.to_string()));
        }
        if let Some(prompts) = self.write().get_mut(tenant) {
            prompts.remove(name);
        }
        Ok(())
    }
}

/// Labels are names; `latest` is every prompt's own and cannot be set, and a label that is a
/// number would read as a version.
fn check_label(field: &str, label: &str) -> Result<(), PromptError> {
    spec::check_name(field, label)?;
    if label == LATEST {
        return Err(PromptError::invalid(
            field,
            "`latest` always means the newest version; choose another label",
        ));
    }
    if label.chars().all(|c| c.is_ascii_digit()) {
        return Err(PromptError::invalid(
            field,
            format!("`{label}` would read as a version number; a label needs a letter"),
        ));
    }
    Ok(())
}
