//! Choosing the next token of one sequence: the request's sampling settings become a llama.cpp
//! sampler chain owned by that sequence (with a grammar or penalties, the grammar's mask, the
//! biases and the penalties are applied here first, to the whole vocabulary or just the tokens
//! they concern), and log-probabilities are computed from the raw logits (before penalties and
//! biases), as OpenAI reports them.

use std::collections::{HashMap, VecDeque};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;

use crate::grammar::SequenceGrammar;
use crate::{EngineError, TokenId};

/// Most alternatives a request may ask for per token (OpenAI's limit).
pub const MAX_TOP_LOGPROBS: usize = 20;

/// How the next token is chosen. The defaults are neutral: temperature 1, nothing filtered,
/// no penalties.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 means greedy (always the most likely token).
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; 0 disables.
    pub top_k: u32,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `top_p`; 1 disables.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0 disables.
    pub min_p: f32,
    /// Seed of the random choice; the same seed and request give the same output. `None` draws one.
    pub seed: Option<u32>,
    /// Multiplicative penalty on tokens seen in the last `repeat_last_n` generated tokens; 1 disables.
    pub repeat_penalty: f32,
    pub repeat_last_n: u32,
    /// OpenAI's presence penalty: subtracted once from every token already generated.
    pub presence_penalty: f32,
    /// OpenAI's frequency penalty: subtracted per occurrence of a token already generated.
    pub frequency_penalty: f32,
    /// Added to the logit of the given token before sampling (-100 effectively bans it).
    pub logit_bias: Vec<(TokenId, f32)>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            seed: None,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            logit_bias: Vec::new(),
        }
    }
}

impl SamplingParams {
    /// Greedy decoding: the deterministic choice of the most likely token.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    pub(crate) fn validate(&self, vocabulary_size: usize) -> Result<(), EngineError> {
        let invalid = |message: String| Err(EngineError::InvalidRequest(message));
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return invalid(format!(
                "temperature must be a finite number >= 0, got {}",
                self.temperature
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return invalid(format!("top_p must be in (0, 1], got {}", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return invalid(format!("min_p must be in [0, 1], got {}", self.min_p));
        }
        if !self.repeat_penalty.is_finite() || self.repeat_penalty <= 0.0 {
            return invalid(format!(
                "repeat_penalty must be > 0, got {}",
                self.repeat_penalty
            ));
        }
        if !self.presence_penalty.is_finite() || !self.frequency_penalty.is_finite() {
            return invalid("presence_penalty and frequency_penalty must be finite".to_owned());
        }
        for &(token, bias) in &self.logit_bias {
            if token < 0 || token as usize >= vocabulary_size {
                return invalid(format!(
                    "logit_bias token {token} is outside the vocabulary (0..{vocabulary_size})"
                ));
            }
            if bias.is_nan() {
                return invalid(format!("logit_bias for token {token} is not a number"));
            }
        }
        Ok(())
    }

    fn has_penalties(&self) -> bool {
        self.repeat_last_n > 0
            && (self.repeat_penalty != 1.0
                || self.presence_penalty != 0.0
                || self.frequency_penalty != 0.0)
    }
}

/// The sampler chain of one running sequence. Stateful: penalties remember earlier tokens and
/// the random generator advances, so each sequence owns its own.
pub(crate) struct SequenceSampler {
    chain: LlamaSampler,
    /// The output's grammar, applied before the chain.
    grammar: Option<SequenceGrammar>,
    /// Biases and penalties, when the request has penalties; the chain then holds neither.
    adjustments: Option<SparseAdjustments>,
    /// For greedy requests with neither grammar nor penalties: the choice made by a scan of the
    /// logits, in place of the chain (which holds only stateless biases and greedy then).
    greedy_scan: Option<GreedyScan>,
}

impl SequenceSampler {
    /// `grammar`, when given, masks every token the output's grammar cannot continue with; it
    /// runs first so that penalties and the random choice only see allowed tokens.
    pub(crate) fn new(
        params: &SamplingParams,
        vocabulary_size: usize,
        grammar: Option<SequenceGrammar>,
    ) -> Self {
        let n_vocab = i32::try_from(vocabulary_size).unwrap_or(i32::MAX);
        let mut samplers = Vec::new();
        let adjustments = params
            .has_penalties()
            .then(|| SparseAdjustments::new(params));
        if adjustments.is_none() && !params.logit_bias.is_empty() {
            let biases: Vec<LlamaLogitBias> = params
                .logit_bias
                .iter()
                .map(|&(token, bias)| LlamaLogitBias::new(LlamaToken(token), bias))
                .collect();
            samplers.push(LlamaSampler::logit_bias(n_vocab, &biases));
        }
        if params.temperature <= 0.0 {
            samplers.push(LlamaSampler::greedy());
        } else {
            // Each filter is added only when it changes something: on a 262k-token vocabulary a
            // no-op top-k still sorts every candidate.
            if params.top_k > 0 {
                samplers.push(LlamaSampler::top_k(
                    i32::try_from(params.top_k).unwrap_or(i32::MAX),
                ));
            }
            if params.top_p < 1.0 {
                samplers.push(LlamaSampler::top_p(params.top_p, 1));
            }
            if params.min_p > 0.0 {
                samplers.push(LlamaSampler::min_p(params.min_p, 1));
            }
            samplers.push(LlamaSampler::temp(params.temperature));
            // llama.cpp draws a random seed for this value.
            const RANDOM_SEED: u32 = u32::MAX;
            samplers.push(LlamaSampler::dist(params.seed.unwrap_or(RANDOM_SEED)));
        }
        let greedy_scan = (params.temperature <= 0.0 && grammar.is_none() && adjustments.is_none())
            .then(|| GreedyScan::new(&params.logit_bias));
        Self {
            chain: LlamaSampler::chain_simple(samplers),
            grammar,
            adjustments,
            greedy_scan,
        }
    }

    /// Samples from the logits of batch row `batch_index` of the last decode, and records the
    /// choice for the penalties. `candidates` is scratch space shared by the sequences of a
    /// scheduler (one vocabulary's worth), used only by requests with a grammar or penalties.
    pub(crate) fn sample(
        &mut self,
        context: &LlamaContext<'_>,
        batch_index: i32,
        candidates: &mut LlamaTokenDataArray,
    ) -> TokenId {
        if let Some(scan) = &self.greedy_scan
            && let Some(token) = scan.choose(context.get_logits_ith(batch_index))
        {
            return token;
        }
        if self.grammar.is_none() && self.adjustments.is_none() {
            return self.chain.sample(context, batch_index).0;
        }
        // What `llama_sampler_sample` does, with the grammar's mask, the biases and the
        // penalties applied in between.
        let logits = context.get_logits_ith(batch_index);
        candidates.data.clear();
        candidates.data.extend(
            logits
                .iter()
                .enumerate()
                .map(|(token, &logit)| LlamaTokenData::new(LlamaToken(token as i32), logit, 0.0)),
        );
        candidates.selected = None;
        candidates.sorted = false;
        if let Some(grammar) = self.grammar.as_mut() {
            grammar.apply(&mut candidates.data);
        }
        if let Some(adjustments) = self.adjustments.as_ref() {
            adjustments.apply(&mut candidates.data);
        }
        candidates.apply_sampler(&mut self.chain);
        // The chain always ends in greedy or dist, which select a token; the first candidate
        // stands in should a future llama.cpp ever leave none selected.
        let token = candidates
            .selected_token()
            .or_else(|| candidates.data.first().map(LlamaTokenData::id))
            .unwrap_or(LlamaToken(0));
        self.chain.accept(token);
        if let Some(grammar) = self.grammar.as_mut() {
            grammar.accept(token.0.cast_unsigned());
        }
        if let Some(adjustments) = self.adjustments.as_mut() {
            adjustments.accept(token.0);
        }
        token.0
    }
}

/// Greedy choice straight from the logits. llama.cpp's sampler first copies the whole
/// vocabulary into a candidate array (262k entries for Gemma: about 0.4 ms a token, 7% of an
/// 8-sequence step on two cores, measured with the step-time metrics); a scan of the logits
/// picks the same token: the first of equal maxima, after the biases are added.
struct GreedyScan {
    /// The request's biases summed per token, in token order.
    biases: Vec<(TokenId, f32)>,
}

impl GreedyScan {
    fn new(logit_bias: &[(TokenId, f32)]) -> Self {
        let mut biases: Vec<(TokenId, f32)> = Vec::with_capacity(logit_bias.len());
        let mut sorted = logit_bias.to_vec();
        sorted.sort_by_key(|&(token, _)| token);
        for (token, bias) in sorted {
            match biases.last_mut() {
                Some(last) if last.0 == token => last.1 += bias,
                _ => biases.push((token, bias)),
            }
        }
        Self { biases }
    }

    fn is_biased(&self, token: usize) -> bool {
        self.biases
            .binary_search_by_key(&token, |&(biased, _)| biased as usize)
            .is_ok()
    }

    /// The greedy token, or `None` when the logits hold no number (the chain then decides).
    fn choose(&self, logits: &[f32]) -> Option<TokenId> {
        let (mut best, mut best_logit) = first_max(logits)?;
        if self.biases.is_empty() {
            return TokenId::try_from(best).ok();
        }
        if self.is_biased(best) {
            // The raw maximum is biased, so the best unbiased token needs a scan of its own
            // (once per turn for `ignore_eos`, whose end-of-turn token is usually the maximum
            // only when the answer is over).
            (best, best_logit) = (usize::MAX, f32::NEG_INFINITY);
            for (token, &logit) in logits.iter().enumerate() {
                if logit > best_logit && !self.is_biased(token) {
                    (best, best_logit) = (token, logit);
                }
            }
        }
        for &(token, bias) in &self.biases {
            let Some(&logit) = logits.get(token as usize) else {
                continue;
            };
            let logit = logit + bias;
            let index = token as usize;
            if logit > best_logit || (logit == best_logit && index < best) {
                (best, best_logit) = (index, logit);
            }
        }
        if best == usize::MAX {
            // Every token is biased to minus infinity: llama.cpp's greedy takes the first.
            best = 0;
        }
        TokenId::try_from(best).ok()
    }
}

/// The index and value of the first maximum of `values`; `None` if it is empty or all NaN.
/// Lane-wise maxima first, so the compiler vectorizes the scan of the vocabulary.
fn first_max(values: &[f32]) -> Option<(usize, f32)> {
    const LANES: usize = 16;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for (lane, &value) in lanes.iter_mut().zip(chunk) {
            *lane = lane.max(value);
        }
    }
    let max = lanes
        .iter()
        .chain(rest)
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    let index = values.iter().position(|&value| value == max)?;
    Some((index, max))
}

/// Logit biases, then repeat, frequency and presence penalties over the last `window`
/// generated tokens, applied to the few tokens they concern. llama.cpp's penalties sampler
/// instead looks each of the vocabulary's candidates up in a hash map for every token (262k
/// lookups for Gemma, about a millisecond), which the scheduler pays once per sequence per
/// step. The arithmetic is llama.cpp's, operation for operation, so the output is the same.
struct SparseAdjustments {
    logit_bias: Vec<(TokenId, f32)>,
    repeat: f32,
    frequency: f32,
    presence: f32,
    window: usize,
    recent: VecDeque<TokenId>,
    counts: HashMap<TokenId, u32>,
}

impl SparseAdjustments {
    fn new(params: &SamplingParams) -> Self {
        let window = params.repeat_last_n as usize;
        Self {
            logit_bias: params.logit_bias.clone(),
            repeat: params.repeat_penalty,
            frequency: params.frequency_penalty,
            presence: params.presence_penalty,
            window,
            recent: VecDeque::with_capacity(window.min(4096)),
            counts: HashMap::new(),
        }
    }

    /// `candidates` holds the whole vocabulary in token order.
    fn apply(&self, candidates: &mut [LlamaTokenData]) {
        for &(token, bias) in &self.logit_bias {
            if let Some(candidate) = candidates.get_mut(token as usize) {
                candidate.set_logit(candidate.logit() + bias);
            }
        }
        for (&token, &count) in &self.counts {
            let Some(candidate) = candidates.get_mut(token as usize) else {
                continue;
            };
            let mut logit = candidate.logit();
            // Dividing a negative logit would make the token more likely, so it is multiplied.
            if logit <= 0.0 {
                logit *= self.repeat;
            } else {
                logit /= self.repeat;
            }
            logit -= count as f32 * self.frequency + self.presence;
            candidate.set_logit(logit);
        }
    }

    fn accept(&mut self, token: TokenId) {
        if self.window == 0 {
            return;
        }
        *self.counts.entry(token).or_insert(0) += 1;
        if self.recent.len() >= self.window
            && let Some(oldest) = self.recent.pop_front()
            && let Some(count) = self.counts.get_mut(&oldest)
        {
            *count -= 1;
            if *count == 0 {
                self.counts.remove(&oldest);
            }
        }
        self.recent.push_back(token);
    }
}

/// The log-probability of the chosen token and the `top_n` most likely alternatives (most
/// likely first), from raw logits.
pub(crate) fn log_probabilities(
    logits: &[f32],
    chosen: TokenId,
    top_n: usize,
) -> (f32, Vec<(TokenId, f32)>) {
    let max_logit = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum_exp: f64 = logits
        .iter()
        .map(|&logit| f64::from(logit - max_logit).exp())
        .sum();
    let log_normalizer = max_logit + sum_exp.ln() as f32;
    let logprob_of = |token: usize| (logits[token] - log_normalizer).min(0.0);

    let chosen_logprob = usize::try_from(chosen)
        .ok()
        .filter(|&token| token < logits.len())
        .map_or(f32::NEG_INFINITY, logprob_of);

    let mut top: Vec<(TokenId, f32)> = Vec::with_capacity(top_n + 1);
    if top_n > 0 {
        // A running top-n list: one pass over the vocabulary, no full sort.
        for (token, &logit) in logits.iter().enumerate() {
            if top.len() == top_n && top.last().is_some_and(|&(_, smallest)| logit <= smallest) {
                continue;
            }
            let insert_at = top.partition_point(|&(_, existing)| existing >= logit);
            top.insert(insert_at, (token as TokenId, logit));
            top.truncate(top_n);
        }
        for entry in &mut top {
            entry.1 = logprob_of(entry.0 as usize);
        }
    }
    (chosen_logprob, top)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_probabilities_are_normalised_and_sorted() {
        let logits = [1.0_f32, 3.0, 2.0, -1.0];
        let (chosen, top) = log_probabilities(&logits, 2, 3);
        let total: f32 = logits.iter().map(|&logit| (logit - 3.0).exp()).sum();
        assert!((chosen - ((2.0 - 3.0) - total.ln())).abs() < 1e-5);
        assert_eq!(
            top.iter().map(|&(token, _)| token).collect::<Vec<_>>(),
            vec![1, 2, 0]
        );
        assert!(top.windows(2).all(|pair| pair[0].1 >= pair[1].1));
        assert!(top.iter().all(|&(_, logprob)| logprob <= 0.0));
    }

    /// llama.cpp's logit-bias sampler then its greedy sampler, over the whole vocabulary.
    fn naive_greedy(logits: &[f32], biases: &[(TokenId, f32)]) -> TokenId {
        let mut biased = logits.to_vec();
        for &(token, bias) in biases {
            if let Some(logit) = biased.get_mut(token as usize) {
                *logit += bias;
            }
        }
        let mut best = 0;
        for (token, &logit) in biased.iter().enumerate() {
            if logit > biased[best] {
                best = token;
            }
        }
        best as TokenId
    }

    #[test]
    fn the_greedy_scan_picks_what_llama_cpps_greedy_picks() {
        type Case<'a> = (&'a [f32], &'a [(TokenId, f32)]);
        let cases: [Case; 7] = [
            (&[0.5, 2.0, 2.0, 1.0], &[]),
            (&[0.5, 2.0, 2.0, 1.0], &[(1, -0.5)]),
            (&[0.5, 2.0, 2.0, 1.0], &[(3, 1.0)]),
            (&[0.5, 2.0, 2.0, 1.0], &[(3, 1.0), (3, -1.0), (0, 1.5)]),
            (&[3.0, 1.0], &[(0, f32::NEG_INFINITY)]),
            (
                &[3.0, 1.0],
                &[(0, f32::NEG_INFINITY), (1, f32::NEG_INFINITY)],
            ),
            (&[1.0, 2.0], &[(7, 5.0)]),
        ];
        for (logits, biases) in cases {
            assert_eq!(
                GreedyScan::new(biases).choose(logits),
                Some(naive_greedy(logits, biases)),
                "{logits:?} with {biases:?}"
            );
        }
        // A vocabulary's worth, with the maximum in the remainder of the lanes and a tie.
        let mut logits: Vec<f32> = (0..1_000)
            .map(|i| ((i * 7919) % 613) as f32 / 10.0)
            .collect();
        logits[995] = 99.0;
        logits[997] = 99.0;
        assert_eq!(GreedyScan::new(&[]).choose(&logits), Some(995));
        let biases = [(995, f32::NEG_INFINITY), (10, 30.0)];
        assert_eq!(
            GreedyScan::new(&biases).choose(&logits),
            Some(naive_greedy(&logits, &biases))
        );
        assert_eq!(GreedyScan::new(&[]).choose(&[]), None);
        assert_eq!(GreedyScan::new(&[]).choose(&[f32::NAN, f32::NAN]), None);
    }

    #[test]
    fn sampling_settings_out_of_range_are_rejected() {
        let bad = [
            SamplingParams {
                temperature: -1.0,
                ..SamplingParams::default()
            },
            SamplingParams {
                top_p: 0.0,
                ..SamplingParams::default()
            },
            SamplingParams {
                logit_bias: vec![(100, 1.0)],
                ..SamplingParams::default()
            },
            SamplingParams {
                repeat_penalty: 0.0,
                ..SamplingParams::default()
            },
        ];
        for params in bad {
            assert!(
                params.validate(100).is_err(),
                "{params:?} should be rejected"
            );
        }
        assert!(SamplingParams::default().validate(100).is_ok());
    }
}
