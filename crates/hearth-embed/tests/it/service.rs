//! `EmbeddingService`: concurrent callers share batches and each gets its own answer.

use std::time::Duration;

use hearth_embed::{EmbedError, EmbeddingService, ServiceConfig, ServiceStats};
use tokio::task::JoinSet;

use crate::{embed_one, largest_difference, load_model};

fn start(queue_capacity: usize, max_batch_inputs: usize) -> EmbeddingService {
    EmbeddingService::start(
        load_model(),
        ServiceConfig {
            queue_capacity,
            max_batch_inputs,
        },
    )
    .expect("starting the service")
}

/// 32 different sentences, so that a mixed-up answer would show.
fn distinct_sentences() -> Vec<String> {
    (0..32)
        .map(|index| {
            format!(
                "Sentence number {index} talks about topic {}.",
                index * 7 % 11
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_small_requests_share_batches_and_get_their_own_answers() {
    let service = start(64, 32);
    let sentences = distinct_sentences();

    let mut callers = JoinSet::new();
    for sentence in sentences.clone() {
        let service = service.clone();
        callers.spawn(async move {
            let answer = service.embed(vec![sentence.clone()]).await;
            (sentence, answer)
        });
    }
    let mut answered = 0;
    while let Some(joined) = callers.join_next().await {
        let (sentence, answer) = joined.expect("caller task");
        let embeddings = answer.expect("embedding through the service");
        assert_eq!(embeddings.items.len(), 1);
        let difference = largest_difference(&embeddings.items[0].vector, &embed_one(&sentence));
        assert!(difference < 1e-4, "{sentence:?} got someone else's vector");
        answered += 1;
    }
    assert_eq!(answered, 32);

    let stats = service.stats();
    assert_eq!(stats.requests, 32);
    assert_eq!(stats.inputs, 32);
    // The first request may run alone; the others arrive while it runs and share batches.
    assert!(
        stats.batches <= 8,
        "32 concurrent requests took {} batches",
        stats.batches
    );
    assert!(stats.largest_batch >= 8, "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_larger_than_a_batch_is_split_and_kept_in_order() {
    let service = start(8, 4);
    let sentences = distinct_sentences()[..10].to_vec();

    let embeddings = service.embed(sentences.clone()).await.expect("embedding");
    assert_eq!(embeddings.items.len(), 10);
    for (sentence, item) in sentences.iter().zip(&embeddings.items) {
        assert!(largest_difference(&item.vector, &embed_one(sentence)) < 1e-4);
    }
    let stats = service.stats();
    assert_eq!(stats.batches, 3, "10 inputs in batches of at most 4");
    assert_eq!(stats.largest_batch, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_at_once_and_the_rest_are_answered() {
    // One request being embedded plus one waiting fill the queue; the burst overflows it.
    let service = start(1, 1);
    let mut callers = JoinSet::new();
    for sentence in distinct_sentences().into_iter().take(16) {
        let service = service.clone();
        callers.spawn(async move { service.embed(vec![sentence]).await });
    }
    let (mut refused, mut answered) = (0, 0);
    while let Some(joined) = callers.join_next().await {
        match joined.expect("caller task") {
            Ok(embeddings) => {
                assert_eq!(embeddings.items.len(), 1);
                answered += 1;
            }
            Err(EmbedError::QueueFull { capacity }) => {
                assert_eq!(capacity, 1);
                refused += 1;
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
    assert!(refused > 0, "16 callers at once must overflow a queue of 1");
    assert!(answered > 0);
    assert_eq!(service.stats().requests, answered);
}

#[tokio::test]
async fn an_empty_request_is_answered_without_a_forward_pass() {
    let service = start(4, 4);
    let embeddings = service.embed(Vec::new()).await.expect("embedding nothing");
    assert!(embeddings.items.is_empty());
    assert_eq!(service.stats(), ServiceStats::default());
    assert_eq!(service.dimensions(), 384);
    assert_eq!(service.max_tokens(), 256);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_gives_up_costs_no_forward_pass() {
    let service = start(8, 1);
    let long_text = "a long text keeps the worker busy for a while ".repeat(12);

    // Four long inputs, one per batch: the worker is busy while the next caller gives up.
    let busy = {
        let service = service.clone();
        let texts = vec![long_text; 4];
        tokio::spawn(async move { service.embed(texts).await })
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    let impatient = tokio::time::timeout(
        Duration::from_millis(1),
        service.embed(vec!["never mind".to_owned()]),
    )
    .await;
    assert!(impatient.is_err(), "the worker should still be busy");

    busy.await.expect("busy task").expect("embedding");
    // Requests are served in order, so once this one is answered the withdrawn one was seen.
    service
        .embed(vec!["after".to_owned()])
        .await
        .expect("embedding");
    let stats = service.stats();
    assert_eq!(stats.requests, 2, "{stats:?}");
    assert_eq!(stats.inputs, 5, "{stats:?}");
}
