//! Compiled versions and their rendering. Templates are MiniJinja, sandboxed by what it is (no
//! file system, no includes: each message is its own template), strict about undefined values
//! (a misspelt attribute fails instead of rendering empty), limited in work (fuel) and in what
//! they may produce. Variables are checked against the version's schema before rendering, so a
//! missing or mistyped variable is an error naming it, never a silently empty string.

use std::collections::{BTreeMap, HashSet};

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Map, Value};

use crate::PromptError;
use crate::spec::PromptDefinition;

/// Template instructions one render may run (loops included).
pub const RENDER_FUEL: u64 = 200_000;
/// Most bytes one render may produce, all messages together.
pub const MAX_RENDERED_BYTES: usize = 1024 * 1024;

/// A version's templates, compiled once.
pub(crate) struct Compiled {
    environment: Environment<'static>,
    messages: usize,
}

impl std::fmt::Debug for Compiled {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Compiled")
            .field("messages", &self.messages)
            .finish_non_exhaustive()
    }
}

fn environment() -> Environment<'static> {
    let mut environment = Environment::new();
    environment.set_undefined_behavior(UndefinedBehavior::Strict);
    environment.set_fuel(Some(RENDER_FUEL));
    environment.set_recursion_limit(64);
    environment
}

impl Compiled {
    /// Compiles each message's template; returns, per message, the variables it reads (the
    /// environment's own globals, such as `range`, left out).
    pub(crate) fn compile(
        definition: &PromptDefinition,
    ) -> Result<(Compiled, Vec<Vec<String>>), PromptError> {
        let mut environment = environment();
        let globals: HashSet<String> = environment
            .globals()
            .map(|(name, _)| name.to_string())
            .collect();
        let mut used = Vec::with_capacity(definition.messages.len());
        for (index, message) in definition.messages.iter().enumerate() {
            environment
                .add_template_owned(index.to_string(), message.content.clone())
                .map_err(|error| {
                    PromptError::invalid(
                        format!("messages[{index}].content"),
                        format!("the template does not compile: {}", describe(&error)),
                    )
                })?;
            let template = environment
                .get_template(&index.to_string())
                .expect("the template was just added");
            let mut names: Vec<String> = template
                .undeclared_variables(false)
                .into_iter()
                .filter(|name| !globals.contains(name))
                .collect();
            names.sort();
            used.push(names);
        }
        let messages = definition.messages.len();
        Ok((
            Compiled {
                environment,
                messages,
            },
            used,
        ))
    }

    /// Renders every message with `context` (variables already checked and defaulted).
    pub(crate) fn render(&self, context: &Map<String, Value>) -> Result<Vec<String>, PromptError> {
        let context = minijinja::Value::from(minijinja::value::Serde(context));
        let mut rendered = Vec::with_capacity(self.messages);
        let mut total = 0;
        for index in 0..self.messages {
            let template = self
                .environment
                .get_template(&index.to_string())
                .expect("every message was compiled");
            let text = template.render(&context).map_err(|error| {
                PromptError::invalid(
                    format!("messages[{index}]"),
                    format!("the template failed to render: {}", describe(&error)),
                )
            })?;
            total += text.len();
            if total > MAX_RENDERED_BYTES {
                return Err(PromptError::Limit(format!(
                    "the prompt renders to more than {MAX_RENDERED_BYTES} bytes; give shorter \
                     variables"
                )));
            }
            rendered.push(text);
        }
        Ok(rendered)
    }
}

/// A MiniJinja error as one line: what went wrong and where.
fn describe(error: &minijinja::Error) -> String {
    let mut text = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    if let Some(line) = error.line() {
        text.push_str(&format!(" (line {line})"));
    }
    text
}

/// The context a render gets: the given variables checked against the declared ones, with
/// defaults filled in. Unknown and missing variables are errors naming them.
pub(crate) fn context(
    definition: &PromptDefinition,
    given: &Map<String, Value>,
) -> Result<Map<String, Value>, PromptError> {
    let empty = BTreeMap::new();
    let declared = definition.variables.as_ref().unwrap_or(&empty);
    if let Some(unknown) = given.keys().find(|name| !declared.contains_key(*name)) {
        let known = declared.keys().cloned().collect::<Vec<_>>().join(", ");
        return Err(PromptError::invalid(
            format!("variables.{unknown}"),
            if known.is_empty() {
                "the prompt takes no variables".to_string()
            } else {
                format!("the prompt has no such variable; it takes: {known}")
            },
        ));
    }
    let mut context = Map::with_capacity(declared.len());
    for (name, spec) in declared {
        let field = format!("variables.{name}");
        match given.get(name) {
            Some(value) => {
                spec.check(&field, value)?;
                context.insert(name.clone(), value.clone());
            }
            None => match &spec.default {
                Some(default) => {
                    context.insert(name.clone(), default.clone());
                }
                None if spec.required => {
                    return Err(PromptError::invalid(
                        field,
                        format!(
                            "is required: give it in variables ({} expected)",
                            spec.kind.name()
                        ),
                    ));
                }
                // An optional variable without a default is there, as null, so that
                // `{% if name %}` reads it rather than failing as undefined.
                None => {
                    context.insert(name.clone(), Value::Null);
                }
            },
        }
    }
    Ok(context)
}
