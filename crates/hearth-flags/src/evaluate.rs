//! Evaluation: a compiled flag against an evaluation context. Everything a rule needs is
//! resolved when the flag is compiled (variant indexes, typed comparison values), so an
//! evaluation is a few attribute lookups and comparisons, with no allocation on its way.

use serde_json::Value;

use crate::bucket;
use crate::spec::{Condition, FlagSpec, Operator, Split};

/// The attribute the OpenFeature SDKs send a unit's identity in.
pub const TARGETING_KEY: &str = "targetingKey";

/// What a flag is evaluated for: attributes by name (`targetingKey`, what the application
/// sends, and `$tenant`, `$user`, `$key` the server sets). A small list, searched in order:
/// contexts hold a handful of attributes, and comparing short names beats hashing them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// (the name's [`fnv1a`], the name, the value): names are compared by hash first.
    attributes: Vec<(u64, String, Value)>,
}

impl Context {
    pub fn new() -> Context {
        Context::default()
    }

    /// A context whose `targetingKey` is `key`.
    pub fn for_key(key: impl Into<String>) -> Context {
        let mut context = Context::new();
        context.set(TARGETING_KEY, Value::String(key.into()));
        context
    }

    /// Sets an attribute, replacing one of the same name.
    pub fn set(&mut self, name: impl Into<String>, value: Value) -> &mut Context {
        let name = name.into();
        let hash = fnv1a(name.as_bytes());
        match self
            .attributes
            .iter_mut()
            .find(|(known_hash, known, _)| *known_hash == hash && *known == name)
        {
            Some((_, _, slot)) => *slot = value,
            None => self.attributes.push((hash, name, value)),
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.get_hashed(fnv1a(name.as_bytes()), name)
    }

    /// [`Context::get`] for a name whose [`fnv1a`] is known.
    fn get_hashed(&self, hash: u64, name: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|(known_hash, known, _)| *known_hash == hash && known == name)
            .map(|(_, _, value)| value)
    }

    pub fn attributes(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.attributes
            .iter()
            .map(|(_, name, value)| (name.as_str(), value))
    }
}

/// Why an evaluation gave what it gave (OpenFeature's reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The flag has no rules and no split: its default variant, always.
    Static,
    /// A rule's conditions held and it named a variant.
    TargetingMatch,
    /// A split (a rule's, or the flag's default one) placed the unit.
    Split,
    /// No rule matched: the default variant.
    Default,
    /// The flag is switched off: its default variant.
    Disabled,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Default => "DEFAULT",
            Reason::Disabled => "DISABLED",
        }
    }
}

/// Why a flag could not be evaluated (OpenFeature's error codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    FlagNotFound,
    /// A split was reached and the context lacks the attribute it buckets by.
    TargetingKeyMissing,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::FlagNotFound => "FLAG_NOT_FOUND",
            ErrorCode::TargetingKeyMissing => "TARGETING_KEY_MISSING",
        }
    }
}

/// One evaluation's result, borrowed from the compiled flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation<'flag> {
    pub value: &'flag Value,
    pub variant: &'flag str,
    pub reason: Reason,
}

#[derive(Debug)]
struct CompiledSplit {
    weights: Vec<u32>,
    variants: Vec<usize>,
}

#[derive(Debug)]
enum Outcome {
    Variant(usize),
    Split(CompiledSplit),
}

/// FNV-1a, 64-bit: the hash a context's string is compared by before its bytes are.
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    fnv1a_from(FNV_OFFSET, bytes)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a of `bytes`, continuing from `hash`.
fn fnv1a_from(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A `HashMap` hasher for short keys (flag keys, tenant ids) that costs less than SipHash;
/// the maps hold only what admins define, not what callers send.
#[derive(Default)]
pub(crate) struct FnvHasher(u64);

impl std::hash::Hasher for FnvHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let start = if self.0 == 0 { FNV_OFFSET } else { self.0 };
        self.0 = fnv1a_from(start, bytes);
    }
}

pub(crate) type FastMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<FnvHasher>>;

/// What a condition does with its attribute's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Test {
    In,
    NotIn,
    Contains,
    StartsWith,
    EndsWith,
    Gt,
    Gte,
    Lt,
    Lte,
    Exists,
    NotExists,
}

/// A condition, small and flat: its values live in the flag's arenas (`hashes` and `strings`
/// for strings, `numbers` for numbers), so a flag's conditions are one contiguous array and a
/// string is compared by its hash, its bytes read only on a hash match.
#[derive(Debug, Clone, Copy)]
struct CompiledCondition {
    /// Its attribute's place in the flag's `attributes`.
    attribute: u32,
    test: Test,
    /// `in`/`not_in` lists holding true, false.
    has_true: bool,
    has_false: bool,
    strings: (u32, u32),
    numbers: (u32, u32),
}

#[derive(Debug)]
struct CompiledRule {
    /// Its conditions' range in the flag's `conditions`.
    conditions: (u32, u32),
    outcome: Outcome,
}

/// The context's values of a flag's attributes, looked up (and hashed) on first use during one
/// evaluation: a flag whose ten rules read two attributes reads the context twice.
struct Resolved<'context> {
    context: &'context Context,
    /// (looked up, the value and its hash) for the first attributes; later ones are looked up
    /// each time.
    slots: [Option<Option<(&'context Value, u64)>>; RESOLVED_SLOTS],
}

const RESOLVED_SLOTS: usize = 8;

impl<'context> Resolved<'context> {
    fn new(context: &'context Context) -> Resolved<'context> {
        Resolved {
            context,
            slots: [None; RESOLVED_SLOTS],
        }
    }

    fn lookup(
        context: &'context Context,
        (hash, name): &(u64, String),
    ) -> Option<(&'context Value, u64)> {
        let value = context
            .get_hashed(*hash, name)
            .filter(|value| !value.is_null())?;
        let hash = value.as_str().map_or(0, |text| fnv1a(text.as_bytes()));
        Some((value, hash))
    }

    fn get(
        &mut self,
        attribute: usize,
        attributes: &[(u64, String)],
    ) -> Option<(&'context Value, u64)> {
        let context = self.context;
        match self.slots.get_mut(attribute) {
            Some(Some(known)) => *known,
            Some(slot) => {
                let found = Resolved::lookup(context, &attributes[attribute]);
                *slot = Some(found);
                found
            }
            None => Resolved::lookup(context, &attributes[attribute]),
        }
    }
}

/// A flag ready to evaluate, with the definition it was compiled from.
#[derive(Debug)]
pub struct CompiledFlag {
    pub key: String,
    pub spec: FlagSpec,
    names: Vec<String>,
    values: Vec<Value>,
    default: usize,
    /// The attributes the conditions read, each once, with their names' hashes.
    attributes: Vec<(u64, String)>,
    /// Every rule's conditions, one after another.
    conditions: Vec<CompiledCondition>,
    /// The conditions' string values and their hashes, side by side.
    hashes: Vec<u64>,
    strings: Vec<String>,
    /// The conditions' numbers (`in` lists, comparison thresholds).
    numbers: Vec<f64>,
    rules: Vec<CompiledRule>,
    split: Option<CompiledSplit>,
    bucket_by: (u64, String),
}

/// Builds a flag's condition arenas.
#[derive(Default)]
struct Arenas {
    attributes: Vec<(u64, String)>,
    conditions: Vec<CompiledCondition>,
    hashes: Vec<u64>,
    strings: Vec<String>,
    numbers: Vec<f64>,
}

impl Arenas {
    fn add(&mut self, condition: &Condition) {
        let attribute = match self
            .attributes
            .iter()
            .position(|(_, known)| *known == condition.attribute)
        {
            Some(at) => at,
            None => {
                let name = condition.attribute.clone();
                self.attributes.push((fnv1a(name.as_bytes()), name));
                self.attributes.len() - 1
            }
        };
        let test = match condition.op {
            Operator::In => Test::In,
            Operator::NotIn => Test::NotIn,
            Operator::Contains => Test::Contains,
            Operator::StartsWith => Test::StartsWith,
            Operator::EndsWith => Test::EndsWith,
            Operator::Gt => Test::Gt,
            Operator::Gte => Test::Gte,
            Operator::Lt => Test::Lt,
            Operator::Lte => Test::Lte,
            Operator::Exists => Test::Exists,
            Operator::NotExists => Test::NotExists,
        };
        let strings_start = self.strings.len() as u32;
        let numbers_start = self.numbers.len() as u32;
        let (mut has_true, mut has_false) = (false, false);
        for value in &condition.values {
            match value {
                Value::String(text) => {
                    self.hashes.push(fnv1a(text.as_bytes()));
                    self.strings.push(text.clone());
                }
                Value::Number(number) => self.numbers.extend(number.as_f64()),
                Value::Bool(true) => has_true = true,
                Value::Bool(false) => has_false = true,
                _ => {}
            }
        }
        self.conditions.push(CompiledCondition {
            attribute: attribute as u32,
            test,
            has_true,
            has_false,
            strings: (strings_start, self.strings.len() as u32),
            numbers: (numbers_start, self.numbers.len() as u32),
        });
    }
}

impl CompiledFlag {
    /// Whether `condition` holds for the attribute's value (resolved once per evaluation, with
    /// its hash). A condition on an absent attribute does not hold (not even `not_in`), except
    /// `not_exists`.
    fn holds(&self, condition: &CompiledCondition, resolved: Option<(&Value, u64)>) -> bool {
        let Some((value, hash)) = resolved else {
            return condition.test == Test::NotExists;
        };
        let strings = condition.strings.0 as usize..condition.strings.1 as usize;
        let numbers = &self.numbers[condition.numbers.0 as usize..condition.numbers.1 as usize];
        let listed = || match value {
            Value::String(text) => self.hashes[strings.clone()]
                .iter()
                .zip(&self.strings[strings.clone()])
                .any(|(known, known_text)| *known == hash && known_text == text),
            Value::Number(number) => number
                .as_f64()
                .is_some_and(|number| numbers.contains(&number)),
            Value::Bool(true) => condition.has_true,
            Value::Bool(false) => condition.has_false,
            _ => false,
        };
        let text = || value.as_str();
        let needles = || self.strings[strings.clone()].iter();
        let threshold = numbers.first().copied().unwrap_or(0.0);
        match condition.test {
            Test::In => listed(),
            Test::NotIn => !listed(),
            Test::Contains => {
                text().is_some_and(|text| needles().any(|needle| text.contains(needle.as_str())))
            }
            Test::StartsWith => {
                text().is_some_and(|text| needles().any(|prefix| text.starts_with(prefix.as_str())))
            }
            Test::EndsWith => {
                text().is_some_and(|text| needles().any(|suffix| text.ends_with(suffix.as_str())))
            }
            Test::Gt => value.as_f64().is_some_and(|number| number > threshold),
            Test::Gte => value.as_f64().is_some_and(|number| number >= threshold),
            Test::Lt => value.as_f64().is_some_and(|number| number < threshold),
            Test::Lte => value.as_f64().is_some_and(|number| number <= threshold),
            Test::Exists => true,
            Test::NotExists => false,
        }
    }

    /// Compiles a settled definition (see [`FlagSpec::settle`]).
    pub fn compile(key: &str, spec: FlagSpec) -> CompiledFlag {
        let names: Vec<String> = spec.variants.keys().cloned().collect();
        let values: Vec<Value> = spec.variants.values().cloned().collect();
        let index = |variant: &str| {
            names
                .iter()
                .position(|name| name == variant)
                .expect("a settled flag names only its own variants")
        };
        let split_of = |split: &[Split]| CompiledSplit {
            weights: split.iter().map(|share| share.weight).collect(),
            variants: split.iter().map(|share| index(&share.variant)).collect(),
        };
        let mut arenas = Arenas::default();
        let mut rules = Vec::with_capacity(spec.rules.len());
        for rule in &spec.rules {
            let start = arenas.conditions.len() as u32;
            rule.when.iter().for_each(|condition| arenas.add(condition));
            rules.push(CompiledRule {
                conditions: (start, arenas.conditions.len() as u32),
                outcome: match (&rule.variant, &rule.split) {
                    (Some(variant), _) => Outcome::Variant(index(variant)),
                    (None, split) => Outcome::Split(split_of(split.as_deref().unwrap_or(&[]))),
                },
            });
        }
        CompiledFlag {
            key: key.to_string(),
            default: index(spec.default_variant.as_deref().unwrap_or_default()),
            attributes: arenas.attributes,
            conditions: arenas.conditions,
            hashes: arenas.hashes,
            strings: arenas.strings,
            numbers: arenas.numbers,
            rules,
            split: spec.split.as_deref().map(split_of),
            bucket_by: {
                let name = spec
                    .bucket_by
                    .clone()
                    .unwrap_or_else(|| TARGETING_KEY.to_string());
                (fnv1a(name.as_bytes()), name)
            },
            names,
            values,
            spec,
        }
    }

    fn served(&self, variant: usize, reason: Reason) -> Evaluation<'_> {
        Evaluation {
            value: &self.values[variant],
            variant: &self.names[variant],
            reason,
        }
    }

    fn place(&self, split: &CompiledSplit, context: &Context) -> Result<usize, ErrorCode> {
        let unit = match context.get_hashed(self.bucket_by.0, &self.bucket_by.1) {
            Some(Value::String(text)) if !text.is_empty() => bucket::bucket(&self.key, text),
            Some(Value::Number(number)) => bucket::bucket(&self.key, &number.to_string()),
            _ => return Err(ErrorCode::TargetingKeyMissing),
        };
        let share = bucket::pick(&split.weights, unit).expect("a settled split has a weight");
        Ok(split.variants[share])
    }

    /// Evaluates the flag for `context`.
    pub fn evaluate(&self, context: &Context) -> Result<Evaluation<'_>, ErrorCode> {
        if !self.spec.enabled {
            return Ok(self.served(self.default, Reason::Disabled));
        }
        let mut resolved = Resolved::new(context);
        for rule in &self.rules {
            let conditions =
                &self.conditions[rule.conditions.0 as usize..rule.conditions.1 as usize];
            if conditions.iter().all(|condition| {
                let value = resolved.get(condition.attribute as usize, &self.attributes);
                self.holds(condition, value)
            }) {
                return match &rule.outcome {
                    Outcome::Variant(variant) => Ok(self.served(*variant, Reason::TargetingMatch)),
                    Outcome::Split(split) => {
                        Ok(self.served(self.place(split, context)?, Reason::Split))
                    }
                };
            }
        }
        match &self.split {
            Some(split) => Ok(self.served(self.place(split, context)?, Reason::Split)),
            None if self.rules.is_empty() => Ok(self.served(self.default, Reason::Static)),
            None => Ok(self.served(self.default, Reason::Default)),
        }
    }

    /// The default variant's value (what a caller falls back to on an error).
    pub fn default_value(&self) -> &Value {
        &self.values[self.default]
    }
}
