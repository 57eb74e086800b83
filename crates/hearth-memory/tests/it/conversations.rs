//! Conversation memory with the real embedding model: a user's turns are recalled for that
//! user only, exported and forgotten per user, and swept by age.

use std::sync::Arc;

use hearth_memory::{Conversations, Exchange, MemoryError, PageRequest};

use crate::embedded::open_with_store;

fn exchange(user: &str, question: &str, answer: &str) -> Exchange {
    Exchange {
        user: user.to_string(),
        question: question.to_string(),
        answer: answer.to_string(),
        model: "gemma3:270m".to_string(),
    }
}

#[tokio::test]
async fn a_users_turns_are_recalled_for_that_user_and_never_for_another() {
    let dir = tempfile::tempdir().unwrap();
    let (store, memory) = open_with_store(dir.path()).await;
    let conversations = Conversations::new(store.clone(), Arc::new(memory), Some(30));
    let tenant = "tenant-a";
    let question = "What is the name of my cat?";

    // Nothing is remembered yet: recall finds nothing, and makes nothing.
    let empty = conversations
        .recall(tenant, "alice", question, 3)
        .await
        .unwrap();
    assert!(empty.turns.is_empty());

    conversations
        .remember(
            tenant,
            exchange("alice", "My cat is called Zorvath.", "What a fine name."),
        )
        .await
        .unwrap();
    conversations
        .remember(tenant, exchange("alice", "I live by the sea.", "Lovely."))
        .await
        .unwrap();
    conversations
        .remember(
            tenant,
            exchange("bob", "I repair bicycles for a living.", "Useful work."),
        )
        .await
        .unwrap();

    // The tenant's turns are one collection, which the service says it keeps.
    let kept = store
        .conversation_collection(tenant)
        .await
        .unwrap()
        .expect("made");
    assert!(conversations.holds_collection(tenant, &kept).await.unwrap());
    assert!(
        !conversations
            .holds_collection("tenant-b", &kept)
            .await
            .unwrap()
    );

    let alice = conversations
        .recall(tenant, "alice", question, 1)
        .await
        .unwrap();
    assert_eq!(alice.turns.len(), 1);
    assert!(alice.turns[0].turn.text.contains("Zorvath"), "{alice:?}");
    assert!(alice.embedding_tokens > 0);

    // Bob's best match would be Alice's cat; he gets only his own turns.
    let bob = conversations
        .recall(tenant, "bob", question, 5)
        .await
        .unwrap();
    assert_eq!(bob.turns.len(), 1, "{bob:?}");
    assert!(bob.turns[0].turn.text.contains("bicycles"));
    // Nor does another tenant's Alice see this one's.
    let elsewhere = conversations
        .recall("tenant-b", "alice", question, 5)
        .await
        .unwrap();
    assert!(elsewhere.turns.is_empty());

    let exported = conversations
        .export(tenant, "alice", &PageRequest::first(10))
        .await
        .unwrap();
    let texts: Vec<&str> = exported
        .items
        .iter()
        .map(|turn| turn.text.as_str())
        .collect();
    assert_eq!(
        texts,
        [
            "User: My cat is called Zorvath.\nAssistant: What a fine name.",
            "User: I live by the sea.\nAssistant: Lovely."
        ]
    );
    assert!(
        exported
            .items
            .iter()
            .all(|turn| turn.model == "gemma3:270m" && turn.at_ms > 0)
    );

    assert_eq!(conversations.forget(tenant, "alice").await.unwrap(), 2);
    let forgotten = conversations
        .recall(tenant, "alice", question, 5)
        .await
        .unwrap();
    assert!(forgotten.turns.is_empty());
    assert_eq!(
        conversations
            .recall(tenant, "bob", question, 5)
            .await
            .unwrap()
            .turns
            .len(),
        1,
        "forgetting Alice leaves Bob's memory"
    );

    // The retention sweep deletes by age, in every tenant.
    conversations
        .remember("tenant-b", exchange("carol", "I collect stamps.", "Nice."))
        .await
        .unwrap();
    assert_eq!(
        conversations.sweep().await.unwrap(),
        0,
        "nothing is 30 days old"
    );
    let later = now_ms() + 1000;
    assert_eq!(conversations.sweep_before(later).await.unwrap(), 2);

    let refused = conversations
        .recall(tenant, "", question, 5)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, MemoryError::Invalid { field, .. } if field == "user"),
        "{refused}"
    );
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}
