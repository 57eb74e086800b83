//! What callers send to a running model and what they get back: a request, a stream of events
//! (tokens, then a final summary), usage and timings.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use tokio::sync::mpsc;

use crate::chat::ChatMessage;
use crate::grammar::Constraint;
use crate::sampling::SamplingParams;
use crate::{EngineError, TokenId};

/// The input of a generation.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// Raw text, tokenized with the model's BOS token; control-token text is parsed.
    Text(String),
    /// Token ids as they are, for callers that tokenized themselves.
    Tokens(Vec<TokenId>),
    /// A conversation, formatted with the model's chat template.
    Chat(Vec<ChatMessage>),
}

/// One generation request.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationRequest {
    pub prompt: Prompt,
    /// Most tokens to generate. `None` allows the rest of the sequence's context window.
    pub max_tokens: Option<usize>,
    pub sampling: SamplingParams,
    /// Generation ends when the output contains one of these; the stop text itself is not emitted.
    pub stop: Vec<String>,
    /// `Some(n)`: report each token's log-probability and its `n` most likely alternatives.
    pub logprobs: Option<usize>,
    /// A grammar the output must follow (JSON, a JSON schema); `None` leaves it free.
    pub constraint: Option<Constraint>,
    /// Never end at an end-of-generation token (they are banned from sampling), only at
    /// `max_tokens` or a stop sequence; for benchmarks and fixed-length output.
    pub ignore_eos: bool,
    /// Whether prompt-lookup speculative decoding may draft tokens for this request (when the
    /// model's configuration allows it). The output is the same either way.
    pub speculation: bool,
}

impl GenerationRequest {
    /// A request with neutral sampling and no limits beyond the context window.
    pub fn new(prompt: Prompt) -> Self {
        Self {
            prompt,
            max_tokens: None,
            sampling: SamplingParams::default(),
            stop: Vec::new(),
            logprobs: None,
            constraint: None,
            ignore_eos: false,
            speculation: true,
        }
    }

    pub fn with_max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    pub fn with_sampling(mut self, sampling: SamplingParams) -> Self {
        self.sampling = sampling;
        self
    }

    pub fn with_stop(mut self, stop: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.stop = stop.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_logprobs(mut self, top_alternatives: usize) -> Self {
        self.logprobs = Some(top_alternatives);
        self
    }

    pub fn with_constraint(mut self, constraint: Constraint) -> Self {
        self.constraint = Some(constraint);
        self
    }

    pub fn with_ignore_eos(mut self, ignore_eos: bool) -> Self {
        self.ignore_eos = ignore_eos;
        self
    }

    pub fn with_speculation(mut self, speculation: bool) -> Self {
        self.speculation = speculation;
        self
    }
}

/// An alternative token at one position, with its log-probability.
#[derive(Debug, Clone, PartialEq)]
pub struct TopLogprob {
    pub token_id: TokenId,
    pub text: String,
    pub logprob: f32,
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its turn (EOS / end-of-turn token) or a stop sequence matched.
    Stop,
    /// `max_tokens` was reached, or the sequence's context window is full.
    Length,
}

/// Token counts of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: usize,
    /// Tokens sampled, including a final end-of-turn token.
    pub completion_tokens: usize,
    /// Prompt tokens whose KV-cache entries were reused from an earlier request.
    pub cached_prompt_tokens: usize,
}

/// Where the time of one request went.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Timings {
    /// From submission until a slot took the request.
    pub queued: Duration,
    /// From submission until the first token was sampled.
    pub time_to_first_token: Duration,
    /// From taking a slot until the first token (reading the prompt).
    pub prompt: Duration,
    /// From the first token until the end.
    pub generation: Duration,
    /// Completion tokens after the first, per second of `generation`.
    pub tokens_per_second: f64,
}

/// One event of a generation stream.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerationEvent {
    /// A sampled token. `text` is what became visible with it: empty while a multi-byte
    /// character is incomplete or while the text might be the start of a stop sequence.
    Token {
        text: String,
        token_id: TokenId,
        logprob: Option<f32>,
        top_logprobs: Vec<TopLogprob>,
    },
    /// Text released at the end that belongs to no new token (held back as a possible stop
    /// sequence until generation ended otherwise).
    Text { text: String },
    /// The last event of a successful generation.
    Done {
        finish_reason: FinishReason,
        usage: Usage,
        timings: Timings,
    },
}

/// The events of one generation, in order. Dropping it cancels the generation: the scheduler
/// notices at its next step and frees the slot.
#[derive(Debug)]
pub struct GenerationStream {
    pub(crate) receiver: mpsc::UnboundedReceiver<Result<GenerationEvent, EngineError>>,
    pub(crate) prompt_tokens: usize,
}

impl GenerationStream {
    /// The next event; `None` after `Done` or an error.
    pub async fn next(&mut self) -> Option<Result<GenerationEvent, EngineError>> {
        self.receiver.recv().await
    }

    /// Tokens in the prompt, known as soon as the request is accepted.
    pub fn prompt_tokens(&self) -> usize {
        self.prompt_tokens
    }

    /// Waits for the whole generation and gathers it (for non-streaming responses).
    pub async fn collect(self) -> Result<Completion, EngineError> {
        Completion::gather(self).await
    }
}

impl Completion {
    /// Gathers a whole generation from any stream of its events: a [`GenerationStream`], or
    /// one wrapped by a caller that watches the events go by.
    pub async fn gather<S>(mut events: S) -> Result<Completion, EngineError>
    where
        S: futures_core::Stream<Item = Result<GenerationEvent, EngineError>> + Unpin,
    {
        let mut completion = Completion::default();
        while let Some(event) =
            std::future::poll_fn(|context| Pin::new(&mut events).poll_next(context)).await
        {
            match event? {
                GenerationEvent::Token {
                    text,
                    token_id,
                    logprob,
                    top_logprobs,
                } => {
                    completion.text.push_str(&text);
                    completion.tokens.push(token_id);
                    if let Some(logprob) = logprob {
                        completion.logprobs.push(TokenLogprob {
                            token_id,
                            logprob,
                            top_logprobs,
                        });
                    }
                }
                GenerationEvent::Text { text } => completion.text.push_str(&text),
                GenerationEvent::Done {
                    finish_reason,
                    usage,
                    timings,
                } => {
                    completion.finish_reason = Some(finish_reason);
                    completion.usage = usage;
                    completion.timings = timings;
                    return Ok(completion);
                }
            }
        }
        Err(EngineError::SchedulerStopped)
    }
}

impl Stream for GenerationStream {
    type Item = Result<GenerationEvent, EngineError>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(context)
    }
}

/// The log-probability of one generated token.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    pub token_id: TokenId,
    pub logprob: f32,
    pub top_logprobs: Vec<TopLogprob>,
}

/// A whole generation, gathered from its stream.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Completion {
    pub text: String,
    /// Every token that produced a `Token` event (end-of-turn tokens produce none).
    pub tokens: Vec<TokenId>,
    /// One entry per token when the request asked for log-probabilities.
    pub logprobs: Vec<TokenLogprob>,
    pub finish_reason: Option<FinishReason>,
    pub usage: Usage,
    pub timings: Timings,
}
