//! Prompt-lookup speculative decoding: an answer that quotes its context is drafted from it,
//! and what comes out is what decoding without drafts gives, greedy or sampled.

use hearth_engine::{
    EngineConfig, FinishReason, GenerationRequest, Prompt, SamplingParams, TokenId,
};

use crate::support::{assert_same_greedy_output, greedy, start};

/// A context of about 600 tokens (longer than Gemma 3's 512-token sliding window, so rejected
/// drafts are taken back from a window that has already moved) and a request to quote it.
fn quoting_prompt() -> String {
    let mut context = String::from("Report of the harbour office of Lindqvist Bay.\n");
    let boats = [
        "Maren",
        "Solveig",
        "Tide Runner",
        "Kestrel",
        "Old Anna",
        "Northern Star",
    ];
    for day in 1..=24 {
        let boat = boats[day % boats.len()];
        context.push_str(&format!(
            "On day {day} the boat {boat} came in with {} crates of herring and {} barrels of \
             salt, and left again at {} o'clock towards the {} islands.\n",
            day * 7 % 31 + 4,
            day * 3 % 11 + 1,
            day % 12 + 1,
            if day % 2 == 0 { "outer" } else { "inner" },
        ));
    }
    format!(
        "<start_of_turn>user\n{context}\nCopy the report above word for word, starting with its \
         first line.<end_of_turn>\n<start_of_turn>model\n"
    )
}

fn quoting_request(max_tokens: usize) -> GenerationRequest {
    GenerationRequest::new(Prompt::Text(quoting_prompt())).with_max_tokens(max_tokens)
}

#[tokio::test]
async fn a_quoting_answer_is_drafted_from_its_context_and_stays_the_greedy_answer() {
    let handle = start(EngineConfig {
        n_parallel: 1,
        ..EngineConfig::default()
    });
    let max_tokens = 96;
    let prompt: Vec<TokenId> = handle.model().tokenize(&quoting_prompt(), true);
    assert!(
        prompt.len() > 512,
        "the prompt must pass the sliding window"
    );

    let completion = handle
        .generate(quoting_request(max_tokens).with_sampling(SamplingParams::greedy()))
        .expect("accepted")
        .collect()
        .await
        .expect("completes");
    let stats = handle.stats();
    assert!(
        stats.draft_tokens_accepted >= max_tokens as u64 / 4,
        "a quoted answer is mostly drafted: {} of {} drafted tokens accepted over {} tokens",
        stats.draft_tokens_accepted,
        stats.draft_tokens,
        completion.tokens.len()
    );
    assert!(
        stats.decode_steps < (max_tokens as u64) * 3 / 4,
        "accepted drafts save steps: {} steps for {} tokens",
        stats.decode_steps,
        completion.tokens.len()
    );
    assert_same_greedy_output(
        "quoting with drafts",
        handle.model(),
        &prompt,
        &completion.tokens,
        max_tokens,
    );
}

#[tokio::test]
async fn concurrent_quoting_answers_are_drafted_together_and_stay_greedy() {
    let handle = start(EngineConfig {
        n_parallel: 3,
        ..EngineConfig::default()
    });
    let max_tokens = 64;
    let prompt: Vec<TokenId> = handle.model().tokenize(&quoting_prompt(), true);
    let streams: Vec<_> = (0..3)
        .map(|_| {
            handle
                .generate(quoting_request(max_tokens).with_sampling(SamplingParams::greedy()))
                .expect("accepted")
        })
        .collect();
    let mut completions = Vec::new();
    for stream in streams {
        completions.push(stream.collect().await.expect("completes"));
    }
    let stats = handle.stats();
    assert!(
        stats.draft_tokens_accepted >= 3 * max_tokens as u64 / 4,
        "three quoting answers decoded side by side are drafted: {} of {} drafted tokens \
         accepted",
        stats.draft_tokens_accepted,
        stats.draft_tokens,
    );
    for (index, completion) in completions.iter().enumerate() {
        assert_same_greedy_output(
            &format!("quoting answer {index} of 3 with drafts"),
            handle.model(),
            &prompt,
            &completion.tokens,
            max_tokens,
        );
    }
}

#[tokio::test]
async fn sampled_output_with_a_seed_is_the_same_with_and_without_drafts() {
    let sampling = SamplingParams {
        temperature: 0.7,
        seed: Some(1234),
        ..SamplingParams::default()
    };
    let mut outputs = Vec::new();
    for speculation in [false, true] {
        // A fresh scheduler each, so both start from the same empty cache.
        let handle = start(EngineConfig {
            n_parallel: 1,
            ..EngineConfig::default()
        });
        let completion = handle
            .generate(
                quoting_request(48)
                    .with_sampling(sampling.clone())
                    .with_speculation(speculation),
            )
            .expect("accepted")
            .collect()
            .await
            .expect("completes");
        let stats = handle.stats();
        if speculation {
            assert!(stats.draft_tokens > 0, "drafts were tried");
        } else {
            assert_eq!(stats.draft_tokens, 0, "a request can turn drafting off");
        }
        outputs.push(completion.text);
    }
    // One random draw per emitted token, in order, from the logits of its true prefix: the
    // same seed gives the same text whether or not positions came from drafts.
    assert_eq!(outputs[0], outputs[1]);
}

#[tokio::test]
async fn ignore_eos_generates_up_to_max_tokens() {
    let handle = start(EngineConfig {
        n_parallel: 1,
        ..EngineConfig::default()
    });
    let end_of_turn = handle.model().tokenize("<end_of_turn>", false);
    assert!(
        end_of_turn.len() == 1 && handle.model().is_end_of_generation(end_of_turn[0]),
        "Gemma's end of turn is one end-of-generation token: {end_of_turn:?}"
    );
    // The end of turn pushed far up: a request ends at its first token.
    let eager_to_stop = || {
        greedy(
            "<start_of_turn>user\nSay yes.<end_of_turn>\n<start_of_turn>model\n",
            40,
        )
        .with_sampling(SamplingParams {
            logit_bias: vec![(end_of_turn[0], 100.0)],
            ..SamplingParams::greedy()
        })
    };
    let natural = handle
        .generate(eager_to_stop())
        .expect("accepted")
        .collect()
        .await
        .expect("completes");
    assert_eq!(natural.finish_reason, Some(FinishReason::Stop));
    assert_eq!(natural.usage.completion_tokens, 1);

    let forced = handle
        .generate(eager_to_stop().with_ignore_eos(true))
        .expect("accepted")
        .collect()
        .await
        .expect("completes");
    assert_eq!(forced.finish_reason, Some(FinishReason::Length));
    assert_eq!(forced.usage.completion_tokens, 40);
    assert!(
        forced
            .tokens
            .iter()
            .all(|&token| !handle.model().is_end_of_generation(token)),
        "no end-of-generation token was sampled"
    );
}
