//! `Model::tokenize` takes a faster path than llama.cpp's tokenizer for SentencePiece models;
//! it must give exactly llama.cpp's tokens, special tokens, whitespace runs and characters
//! outside the vocabulary included.

use hearth_engine::EngineConfig;
use hearth_engine::raw::{fast_tokenize, has_fast_tokenizer, llama_tokenize};

use crate::support::load_model;

/// Pieces the generated texts are made of: words, whitespace of every kind, the model's real
/// special tokens, text that only looks like one, and characters the vocabulary lacks.
const PIECES: &[&str] = &[
    "the",
    "The",
    " quick",
    "brown",
    "fox",
    "jumps",
    "über",
    "naïve",
    "café",
    "日本語",
    "中文",
    "한국어",
    "العربية",
    "🦀",
    "🔥",
    "👩‍👩‍👧",
    "123",
    "4.56",
    "$",
    "%",
    "(",
    ")",
    "{",
    "}",
    ";",
    ",",
    ".",
    "!",
    "?",
    "'",
    "\"",
    "-",
    "_",
    "/",
    "\\",
    " ",
    "  ",
    "   ",
    "    ",
    "\n",
    "\n\n",
    "\n\n\n",
    "\t",
    "\t\t",
    "\r\n",
    " \n ",
    "<start_of_turn>",
    "<end_of_turn>",
    "<bos>",
    "<eos>",
    "<pad>",
    "<unused0>",
    "<unused42>",
    "[multimodal]",
    "<start_of_image>",
    "<h1>",
    "</h1>",
    "<table>",
    "<",
    ">",
    "<start_of",
    "_turn>",
    "<0x0A>",
    "<0xFF>",
    "▁",
    "\u{0}",
    "\u{7f}",
    "\u{200b}",
    "model",
    "user",
    "fn main()",
    "println!",
    "https://example.com/a?b=c",
];

/// A small deterministic generator, so a failure names a text that can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % below as u64) as usize
    }
}

#[test]
fn the_sample_model_takes_the_fast_path() {
    let model = load_model(&EngineConfig::default());
    assert!(
        has_fast_tokenizer(&model),
        "the fast tokenizer was not used for the sample model: it disagreed with llama.cpp on a check text"
    );
}

#[test]
fn generated_texts_get_exactly_llama_cpps_tokens() {
    let model = load_model(&EngineConfig::default());
    assert!(has_fast_tokenizer(&model));
    let mut random = Lcg(7);
    let mut left_to_llama = 0;
    for case in 0..3000 {
        let pieces = 1 + random.next(24);
        let text: String = (0..pieces)
            .map(|_| PIECES[random.next(PIECES.len())])
            .collect();
        for add_special in [false, true] {
            let expected = llama_tokenize(&model, &text, add_special);
            match fast_tokenize(&model, &text, add_special) {
                Some(tokens) => assert_eq!(
                    tokens, expected,
                    "case {case}, add_special {add_special}: {text:?}"
                ),
                None => left_to_llama += 1,
            }
            assert_eq!(model.tokenize(&text, add_special), expected);
        }
    }
    // Only texts where special tokens of equal length overlap are left to llama.cpp.
    assert!(
        left_to_llama < 60,
        "{left_to_llama} of 6000 texts took the slow path"
    );
}

#[test]
fn long_prose_and_chat_prompts_get_exactly_llama_cpps_tokens() {
    let model = load_model(&EngineConfig::default());
    let prose = "It was the best of times, it was the worst of times, it was the age of wisdom, \
        it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity. "
        .repeat(40);
    let chat = format!(
        "<start_of_turn>user\nYou are terse.\n\n{prose}<end_of_turn>\n<start_of_turn>model\nSure.\
         <end_of_turn>\n<start_of_turn>user\nAnd then?<end_of_turn>\n<start_of_turn>model\n"
    );
    let code = "fn main() {\n    let values = vec![1, 2, 3];\n\tfor v in &values {\n        println!(\"{v}\");\n    }\n}\n".repeat(20);
    for text in [prose.as_str(), chat.as_str(), code.as_str()] {
        for add_special in [false, true] {
            assert_eq!(
                fast_tokenize(&model, text, add_special),
                Some(llama_tokenize(&model, text, add_special))
            );
        }
    }
}
