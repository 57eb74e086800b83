//! Retrieval for generation: found passages become numbered sources placed in the prompt
//! within a token budget, and the `[n]` markers a model writes become citations of the
//! passages that were placed. Knows nothing of HTTP or of any API's shapes.

/// A passage that may be placed in a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Where it came from (a file id, a document id).
    pub id: String,
    /// What the model is shown as its name (a filename).
    pub name: String,
    pub score: f32,
    pub text: String,
}

/// The sources that fit `budget_tokens`, best first (as given), each counted by
/// `count_tokens` with its heading; a passage that does not fit whole is cut to what fits when
/// at least a quarter of it does, and otherwise left out (as is everything after it).
pub fn fit_sources(
    sources: Vec<Source>,
    budget_tokens: usize,
    count_tokens: impl Fn(&str) -> usize,
) -> Vec<Source> {
    let mut placed = Vec::with_capacity(sources.len());
    let mut left = budget_tokens;
    for mut source in sources {
        let number = placed.len() + 1;
        let cost = count_tokens(&source_block(number, &source));
        if cost <= left {
            left -= cost;
            placed.push(source);
            continue;
        }
        // Cut by characters in proportion, checking each cut, so the budget holds.
        let total_chars = source.text.chars().count();
        let mut keep_chars = total_chars;
        let mut cost = cost;
        while cost > left && keep_chars * 4 >= total_chars && keep_chars > 0 {
            keep_chars = (keep_chars * left / cost.max(1)).min(keep_chars - 1);
            let cut: String = source.text.chars().take(keep_chars).collect();
            cost = count_tokens(&source_block(
                number,
                &Source {
                    text: cut,
                    ..source.clone()
                },
            ));
        }
        if cost <= left && keep_chars * 4 >= total_chars && keep_chars > 0 {
            source.text = source.text.chars().take(keep_chars).collect();
            placed.push(source);
        }
        break;
    }
    placed
}

fn source_block(number: usize, source: &Source) -> String {
    format!("[{number}] {}\n{}\n\n", source.name, source.text.trim())
}

/// The user's question with the numbered sources before it, as the user turn the model
/// answers: `Sources:`, the numbered passages, `Question: …` and `Answer:`. Context right
/// before the question, and an answer to continue, is what even a base model (the sample
/// Gemma 3 270M) answers from; an instruction to cite, in a system message or before the
/// sources, it only repeated back (tried on the sample, temperature 0). Models that write
/// `[n]` markers get them read as citations.
pub fn with_sources(question: &str, sources: &[Source]) -> String {
    let mut prompt = String::from("Sources:\n\n");
    for (index, source) in sources.iter().enumerate() {
        prompt.push_str(&source_block(index + 1, source));
    }
    prompt.push_str("Question: ");
    prompt.push_str(question);
    prompt.push_str("\nAnswer:");
    prompt
}

/// A citation found in generated text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Citation {
    /// Character index in the text just after the `[n]` marker.
    pub index: usize,
    /// Which source: 0-based into the placed sources.
    pub source: usize,
}

/// The `[n]` (and `[n, m]`) markers of `text` that name one of `sources` placed sources, in
/// order. Numbers outside 1..=sources are not citations.
pub fn citations(text: &str, sources: usize) -> Vec<Citation> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut position = 0;
    while position < chars.len() {
        if chars[position] != '[' {
            position += 1;
            continue;
        }
        let Some(close) = chars[position..].iter().position(|&c| c == ']') else {
            break;
        };
        let inside: String = chars[position + 1..position + close].iter().collect();
        let numbers: Option<Vec<usize>> = inside
            .split(',')
            .map(|part| part.trim().parse::<usize>().ok())
            .collect();
        let end = position + close + 1;
        if let Some(numbers) = numbers {
            for number in numbers {
                if (1..=sources).contains(&number) {
                    found.push(Citation {
                        index: end,
                        source: number - 1,
                    });
                }
            }
        }
        position = end;
    }
    found
}

/// Words in a row an answer must share with a source to be read as quoting it.
pub const QUOTE_WORDS: usize = 6;

/// The placed sources (0-based) that `text` quotes: sharing a run of [`QUOTE_WORDS`] words
/// (compared without case or punctuation). For answers that cite no source by number, which
/// is how models that were never taught to cite use their sources.
pub fn quoted_sources(text: &str, sources: &[Source]) -> Vec<usize> {
    fn words(text: &str) -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric())
            .filter(|word| !word.is_empty())
            .map(str::to_lowercase)
            .collect()
    }
    let answer = words(text);
    if answer.len() < QUOTE_WORDS {
        return Vec::new();
    }
    let runs: std::collections::HashSet<&[String]> = answer.windows(QUOTE_WORDS).collect();
    sources
        .iter()
        .enumerate()
        .filter(|(_, source)| {
            words(&source.text)
                .windows(QUOTE_WORDS)
                .any(|run| runs.contains(run))
        })
        .map(|(index, _)| index)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(id: &str, text: &str) -> Source {
        Source {
            id: id.into(),
            name: format!("{id}.txt"),
            score: 1.0,
            text: text.into(),
        }
    }

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    #[test]
    fn sources_fill_the_budget_in_order_and_a_long_one_is_cut() {
        let sources = vec![
            source("a", "one two three"),
            source("b", "four five six seven eight nine ten eleven"),
            source("c", "twelve"),
        ];
        // "[1] a.txt one two three" is 5 words; the second block is 10 words.
        let placed = fit_sources(sources.clone(), 100, words);
        assert_eq!(placed.len(), 3);
        let placed = fit_sources(sources.clone(), 12, words);
        assert_eq!(placed.len(), 2);
        assert!(words(&source_block(2, &placed[1])) <= 7);
        assert!(placed[1].text.starts_with("four"));
        // Less than a quarter of the second fits: it and the rest are left out.
        let placed = fit_sources(sources, 6, words);
        assert_eq!(
            placed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
    }

    #[test]
    fn markers_become_citations_of_placed_sources_only() {
        let text = "Paris [1]. Also Rome [2, 3] and [7] and [x] and [1";
        let found = citations(text, 3);
        assert_eq!(
            found,
            [
                Citation {
                    index: 9,
                    source: 0
                },
                Citation {
                    index: 27,
                    source: 1
                },
                Citation {
                    index: 27,
                    source: 2
                },
            ]
        );
        assert!(citations("no markers", 2).is_empty());
    }

    #[test]
    fn an_answer_quotes_the_sources_it_repeats() {
        let sources = [
            source("a", "The keeper of the lighthouse is named Miriel Quandt."),
            source("b", "Tomato soup is best served hot."),
        ];
        assert_eq!(
            quoted_sources("Its KEEPER of the lighthouse, is named Miriel!", &sources),
            [0]
        );
        assert!(quoted_sources("Nobody knows.", &sources).is_empty());
    }

    #[test]
    fn the_prompt_numbers_the_sources_before_the_question() {
        let prompt = with_sources("Why?", &[source("a", "alpha"), source("b", "beta")]);
        assert!(prompt.contains("[1] a.txt\nalpha"));
        assert!(prompt.contains("[2] b.txt\nbeta"));
        assert!(prompt.ends_with("Question: Why?\nAnswer:"));
    }
}
