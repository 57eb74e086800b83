//! The prompts service over a real SQLite store: versions and labels, the variable schema,
//! rendering, limits, tenant isolation and what survives a reopen.

use hearth_prompts::{
    PromptDefinition, PromptError, Prompts, PromptsOptions, Push, Selector, VariableType,
};
use hearth_store::{IntegrityCheck, OpenOptions, Store};
use serde_json::{Map, Value, json};

const TENANT: &str = "tenant-a";

async fn open(dir: &std::path::Path, options: PromptsOptions) -> Prompts {
    let store = Store::open(
        dir,
        OpenOptions {
            integrity_check: IntegrityCheck::Quick,
            run_migrations: true,
        },
    )
    .await
    .unwrap();
    Prompts::open(store, options).await.unwrap()
}

fn definition(value: Value) -> PromptDefinition {
    serde_json::from_value(value).unwrap()
}

fn variables(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn support() -> PromptDefinition {
    definition(json!({
        "messages": [
            {"role": "system", "content": "You are {{ persona }}. Answer in {{ language }}."},
            {"role": "user", "content": "{% for item in items %}- {{ item }}\n{% endfor %}{{ question }}"}
        ],
        "variables": {
            "persona": {"type": "string", "default": "a helpful agent"},
            "language": {"type": "string", "enum": ["English", "French"], "required": true},
            "items": {"type": "array", "default": []},
            "question": {"type": "string", "max_length": 20}
        },
        "model": "gemma3:270m",
        "parameters": {"temperature": 0.2, "max_tokens": 64}
    }))
}

async fn push(prompts: &Prompts, name: &str, definition: PromptDefinition) -> u32 {
    prompts
        .push(
            TENANT,
            name,
            Push {
                created_by: Some("test".into()),
                ..Push::of(definition)
            },
            1,
        )
        .await
        .unwrap()
        .version
        .version
}

fn field_of(error: PromptError) -> String {
    match error {
        PromptError::Invalid { field, .. } => field,
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

#[tokio::test]
async fn renders_with_defaults_loops_and_declared_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = open(dir.path(), PromptsOptions::default()).await;
    push(&prompts, "support", support()).await;
    let rendered = prompts
        .render(
            TENANT,
            "support",
            &Selector::Latest,
            &variables(json!({"language": "French", "items": ["a", "b"], "question": "Why?"})),
        )
        .unwrap();
    assert_eq!(rendered.version, 1);
    assert_eq!(rendered.model.as_deref(), Some("gemma3:270m"));
    assert_eq!(rendered.parameters["temperature"], json!(0.2));
    assert_eq!(rendered.messages[0].role, "system");
    assert_eq!(
        rendered.messages[0].content,
        "You are a helpful agent. Answer in French."
    );
    assert_eq!(rendered.messages[1].content, "- a\n- b\nWhy?");
}

#[tokio::test]
async fn variables_are_checked_before_rendering_and_errors_name_them() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = open(dir.path(), PromptsOptions::default()).await;
    push(&prompts, "support", support()).await;
    let render =
        |given: Value| prompts.render(TENANT, "support", &Selector::Latest, &variables(given));
    let missing = render(json!({"language": "English"})).unwrap_err();
    assert_eq!(field_of(missing), "variables.question");
    let unknown = render(json!({"language": "English", "question": "q", "qestion": "q"}));
    assert_eq!(field_of(unknown.unwrap_err()), "variables.qestion");
    let mistyped = render(json!({"language": "English", "question": 7}));
    assert_eq!(field_of(mistyped.unwrap_err()), "variables.question");
    let not_allowed = render(json!({"language": "German", "question": "q"}));
    assert_eq!(field_of(not_allowed.unwrap_err()), "variables.language");
    let too_long = render(json!({"language": "English", "question": "x".repeat(21)}));
    assert_eq!(field_of(too_long.unwrap_err()), "variables.question");
}

#[tokio::test]
async fn undeclared_variables_are_inferred_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = open(dir.path(), PromptsOptions::default()).await;
    let inferred = definition(json!({
        "messages": [{"role": "user", "content": "{{ greeting }}, {{ name | tojson }}! {{ range(2) | list }}"}]
    }));
    push(&prompts, "inferred", inferred).await;
    let version = prompts
        .version(TENANT, "inferred", &Selector::Latest)
        .unwrap();
    let declared = version.definition.variables.as_ref().unwrap();
    // `range` is the environment's, not a variable.
    assert_eq!(declared.keys().collect::<Vec<_>>(), ["greeting", "name"]);
    assert!(declared["name"].required);
    assert_eq!(declared["name"].kind, VariableType::Any);
    let rendered = version
        .render(&variables(
            json!({"greeting": "Hi", "name": {"first": "Ada"}}),
        ))
        .unwrap();
    assert_eq!(
        rendered.messages[0].content,
        r#"Hi, {"first": "Ada"}! [0, 1]"#
    );

    let partly_declared = definition(json!({
        "messages": [{"role": "user", "content": "{{ a }} {{ b }}"}],
        "variables": {"a": {}}
    }));
    let error = prompts
        .push(TENANT, "partly", Push::of(partly_declared), 1)
        .await
        .unwrap_err();
    assert_eq!(field_of(error), "messages[0].content");
}

#[tokio::test]
async fn bad_definitions_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = open(dir.path(), PromptsOptions::default()).await;
    let cases = [
        (json!({"messages": []}), "messages"),
        (
            json!({"messages": [{"role": "tool", "content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"messages": [{"role": "user", "content": "ok"}, {"role": "user", "content": "{% if %}"}]}),
            "messages[1].content",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "parameters": {"temperature": 3}}),
            "parameters.temperature",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "parameters": {"tools": []}}),
            "parameters.tools",
        ),
        (
            json!({"messages": [{"role": "user", "content": "{{ n }}"}], "variables": {"n": {"type": "integer", "default": "seven"}}}),
            "variables.n.default",
        ),
        (
            json!({"messages": [{"role": "user", "content": "x"}], "variables": {"1st": {}}}),
            "variables.1st",
        ),
    ];
    for (value, field) in cases {
        let error = prompts
            .push(TENANT, "bad", Push::of(definition(value.clone())), 1)
            .await
            .unwrap_err();
        assert_eq!(field_of(error), field, "for {value}");
    }
    let bad_name = prompts
        .push(TENANT, "no spaces", Push::of(support()), 1)
        .await
        .unwrap_err();
    assert_eq!(field_of(bad_name), "name");
    assert!(prompts.list(TENANT).is_empty(), "nothing was stored");
}

#[tokio::test]
async fn templates_fail_loudly_and_runaway_ones_stop() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = open(dir.path(), PromptsOptions::default()).await;
    let strict = definition(json!({
        "messages": [{"role": "user", "content": "{{ user.nmae }}"}],
        "variables": {"user": {"type": "object"}}
    }));
    push(&prompts, "strict", strict).await;
    let error = prompts
        .render(
            TENANT,
            "strict",
            &Selector::Latest,
            &variables(json!({"user": {"name": "Ada"}})),
        )
        .unwrap_err();
    assert_eq!(field_of(error), "messages[0]");

    let runaway = definition(json!({
        "messages": [{"role": "user", "content": "{% for i in range(100000) %}{% for j in range(100000) %}.{% endfor %}{% endfor %}"}]
    }));
    push(&prompts, "runaway", runaway).await;
    let error = prompts
        .render(TENANT, "runaway", &Selector::Latest, &Map::new())
        .unwrap_err();
    assert!(
        matches!(&error, PromptError::Invalid { message, .. } if message.contains("fuel")),
        "{error:?}"
    );

    let huge = definition(json!({
        "messages": [{"role": "user", "content": "{{ 'x' * 2000000 }}"}]
    }));
    push(&prompts, "huge", huge).await;
    let error = prompts
        .render(TENANT, "huge", &Selector::Latest, &Map::new())
        .unwrap_err();
    assert!(matches!(error, PromptError::Limit(_)), "{error:?}");
}

#[tokio::test]
async fn versions_are_immutable_and_labels_move() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = open(dir.path(), PromptsOptions::default()).await;
    let first = definition(json!({"messages": [{"role": "system", "content": "v1"}]}));
    let second = definition(json!({"messages": [{"role": "system", "content": "v2"}]}));
    let pushed = prompts
        .push(
            TENANT,
            "p",
            Push {
                labels: vec!["production".into()],
                note: Some("first".into()),
                ..Push::of(first)
            },
            10,
        )
        .await
        .unwrap();
    assert!(pushed.created);
    assert_eq!(push(&prompts, "p", second.clone()).await, 2);
    // The same definition again makes no new version.
    let again = prompts
        .push(
            TENANT,
            "p",
            Push {
                labels: vec!["staging".into()],
                ..Push::of(second)
            },
            30,
        )
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.version.version, 2);

    let content = |selector: Selector| {
        prompts
            .render(TENANT, "p", &selector, &Map::new())
            .unwrap()
            .messages[0]
            .content
            .clone()
    };
    assert_eq!(content(Selector::Latest), "v2");
    assert_eq!(content(Selector::parse("production")), "v1");
    assert_eq!(content(Selector::parse("staging")), "v2");
    assert_eq!(content(Selector::parse("1")), "v1");

    prompts
        .set_label(TENANT, "p", "production", 2, 40)
        .await
        .unwrap();
    assert_eq!(content(Selector::parse("production")), "v2");
    let missing = prompts.set_label(TENANT, "p", "production", 9, 50).await;
    assert!(matches!(missing, Err(PromptError::NoSuchVersion { .. })));
    for label in ["latest", "12"] {
        let refused = prompts.set_label(TENANT, "p", label, 1, 50).await;
        assert_eq!(field_of(refused.unwrap_err()), "label");
    }
    prompts.remove_label(TENANT, "p", "staging").await.unwrap();
    let gone = prompts.render(TENANT, "p", &Selector::parse("staging"), &Map::new());
    assert!(matches!(gone, Err(PromptError::NoSuchVersion { .. })));

    // All of it survives a restart.
    drop(prompts);
    let reopened = open(dir.path(), PromptsOptions::default()).await;
    let info = reopened.get(TENANT, "p").unwrap();
    assert_eq!(info.versions.len(), 2);
    assert_eq!(info.versions[0].note.as_deref(), Some("first"));
    assert_eq!(info.labels.get("production"), Some(&2));
    assert!(!info.labels.contains_key("staging"));
    reopened.delete(TENANT, "p").await.unwrap();
    assert!(matches!(
        reopened.get(TENANT, "p"),
        Err(PromptError::NotFound(_))
    ));
}

#[tokio::test]
async fn tenants_see_only_their_own_prompts() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = open(dir.path(), PromptsOptions::default()).await;
    push(&prompts, "support", support()).await;
    assert!(prompts.list("tenant-b").is_empty());
    let other = prompts.render("tenant-b", "support", &Selector::Latest, &Map::new());
    assert!(matches!(other, Err(PromptError::NotFound(_))));
    assert!(matches!(
        prompts.delete("tenant-b", "support").await,
        Err(PromptError::NotFound(_))
    ));
    assert_eq!(prompts.list(TENANT).len(), 1);
}

#[tokio::test]
async fn limits_on_prompts_and_versions() {
    let dir = tempfile::tempdir().unwrap();
    let options = PromptsOptions {
        max_per_tenant: 2,
        max_versions: 2,
    };
    let prompts = open(dir.path(), options).await;
    let numbered =
        |n: u32| definition(json!({"messages": [{"role": "user", "content": format!("{n}")}]}));
    push(&prompts, "a", numbered(1)).await;
    push(&prompts, "b", numbered(1)).await;
    let third = prompts.push(TENANT, "c", Push::of(numbered(1)), 1).await;
    assert!(matches!(third, Err(PromptError::Limit(_))));
    push(&prompts, "a", numbered(2)).await;
    let too_many = prompts.push(TENANT, "a", Push::of(numbered(3)), 1).await;
    assert!(matches!(too_many, Err(PromptError::Limit(_))));
}
