//! What requests cost: a price per million prompt and completion tokens, by target
//! (`primary/gpt-4o-mini`) or by model (`gpt-4o-mini`). Models without a price cost nothing,
//! which suits local models.

use std::collections::HashMap;

/// US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub prompt_per_million: f64,
    pub completion_per_million: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prices {
    by_name: HashMap<String, Price>,
}

impl Prices {
    pub fn new(entries: impl IntoIterator<Item = (String, Price)>) -> Prices {
        Prices {
            by_name: entries.into_iter().collect(),
        }
    }

    /// The cost in millionths of a US dollar of `prompt` and `completion` tokens served by
    /// `target` (`primary/gpt-4o-mini`, `local/gemma3:270m`).
    pub fn cost_micro_usd(&self, target: &str, prompt: u64, completion: u64) -> u64 {
        let model = target.split_once('/').map_or(target, |(_, model)| model);
        let Some(price) = self.by_name.get(target).or_else(|| self.by_name.get(model)) else {
            return 0;
        };
        // Dollars per million tokens are exactly millionths of a dollar per token.
        let cost = prompt as f64 * price.prompt_per_million
            + completion as f64 * price.completion_per_million;
        cost.round().clamp(0.0, u64::MAX as f64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_price_wins_over_the_model_price_and_unpriced_models_are_free() {
        let prices = Prices::new([
            (
                "gpt-4o-mini".to_string(),
                Price {
                    prompt_per_million: 0.15,
                    completion_per_million: 0.6,
                },
            ),
            (
                "backup/gpt-4o-mini".to_string(),
                Price {
                    prompt_per_million: 1.0,
                    completion_per_million: 2.0,
                },
            ),
        ]);
        // 1000 prompt tokens at $0.15/M and 100 completion tokens at $0.60/M: $0.00021.
        assert_eq!(prices.cost_micro_usd("primary/gpt-4o-mini", 1000, 100), 210);
        assert_eq!(prices.cost_micro_usd("backup/gpt-4o-mini", 1000, 100), 1200);
        assert_eq!(prices.cost_micro_usd("local/gemma3:270m", 1000, 100), 0);
    }
}
