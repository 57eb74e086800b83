//! Embedding behaviour of `EmbeddingModel`: shape, meaning, batching, truncation, edge inputs.

use crate::{dot, embed_one, largest_difference, load_model, norm, shared_model};

#[test]
fn vectors_have_384_dimensions_and_unit_length() {
    let model = shared_model();
    assert_eq!(model.dimensions(), 384);
    assert_eq!(model.max_tokens(), 256);

    let embeddings = model
        .embed(&["A man is eating food.", "Hello"])
        .expect("embedding");
    assert_eq!(embeddings.items.len(), 2);
    for item in &embeddings.items {
        assert_eq!(item.vector.len(), 384);
        assert!((norm(&item.vector) - 1.0).abs() < 1e-5, "not unit length");
        assert!(!item.truncated);
    }
}

#[test]
fn token_counts_include_the_cls_and_sep_tokens() {
    // [CLS] a man is eating food . [SEP]
    let embeddings = shared_model()
        .embed(&["A man is eating food.", "Hello"])
        .expect("embedding");
    let counts: Vec<usize> = embeddings.items.iter().map(|item| item.n_tokens).collect();
    assert_eq!(counts, [8, 3]);
    assert_eq!(embeddings.total_tokens(), 11);
}

#[test]
fn similar_sentences_are_closer_than_unrelated_ones() {
    let eating = embed_one("A man is eating food.");
    let bread = embed_one("A man is eating a piece of bread.");
    let market = embed_one("The stock market fell sharply today.");

    let similar = dot(&eating, &bread);
    assert!(
        similar > dot(&eating, &market) && similar > dot(&bread, &market),
        "eating·bread {similar} should beat eating·market {} and bread·market {}",
        dot(&eating, &market),
        dot(&bread, &market)
    );
    assert!(
        similar > 0.5,
        "paraphrases should be clearly similar: {similar}"
    );
}

#[test]
fn a_batch_gives_the_same_vectors_as_one_at_a_time() {
    // Lengths differ a lot, so the short inputs carry many padding tokens in the batch.
    let texts = [
        "Hi",
        "A man is eating a piece of bread.",
        "",
        "The quick brown fox jumps over the lazy dog while the farmer, who had been watching \
         from the porch since dawn, finally decided to put down his coffee and chase it away.",
        "Embeddings turn text into vectors.",
    ];
    let batch = shared_model().embed(&texts).expect("embedding the batch");
    assert_eq!(batch.items.len(), texts.len());
    for (text, item) in texts.iter().zip(&batch.items) {
        let alone = embed_one(text);
        let difference = largest_difference(&item.vector, &alone);
        assert!(
            difference < 1e-4,
            "{text:?} differs by {difference} between batch and alone: padding leaked in"
        );
    }
}

#[test]
fn long_input_is_truncated_to_max_tokens_not_rejected() {
    let long_text = "memory ".repeat(1000);
    let embeddings = shared_model()
        .embed(&[long_text.as_str(), "short"])
        .expect("a long input is embedded, not refused");
    let long = &embeddings.items[0];
    assert!(long.truncated);
    assert_eq!(long.n_tokens, 256);
    assert!((norm(&long.vector) - 1.0).abs() < 1e-5);
    assert!(!embeddings.items[1].truncated);

    // Only the first 256 tokens count: more text past the cut changes nothing.
    let longer_text = format!("{long_text} and then something else entirely");
    let longer = embed_one(&longer_text);
    assert!(largest_difference(&long.vector, &longer) < 1e-5);
}

#[test]
fn empty_string_gets_a_unit_vector() {
    let embeddings = shared_model()
        .embed(&[""])
        .expect("embedding an empty string");
    let item = &embeddings.items[0];
    assert_eq!(item.n_tokens, 2, "only [CLS] and [SEP]");
    assert_eq!(item.vector.len(), 384);
    assert!(item.vector.iter().all(|value| value.is_finite()));
    assert!((norm(&item.vector) - 1.0).abs() < 1e-5);
}

#[test]
fn empty_batch_gives_no_embeddings() {
    let embeddings = shared_model().embed(&[]).expect("embedding nothing");
    assert!(embeddings.items.is_empty());
    assert_eq!(embeddings.total_tokens(), 0);
}

#[test]
fn unicode_and_unknown_characters_are_embedded() {
    let embeddings = shared_model()
        .embed(&["Ça va? 日本語のテキスト 🔥🔥", "\u{0}\u{7}\t\n"])
        .expect("embedding unusual text");
    for item in &embeddings.items {
        assert!((norm(&item.vector) - 1.0).abs() < 1e-5);
    }
}

#[test]
fn a_long_input_runs_apart_from_short_ones_instead_of_padding_them() {
    // A model of its own, so that other tests' passes do not count.
    let model = load_model();
    let chunk = "Document chunks are much longer than the queries that look for them. ".repeat(15);
    let texts = ["first query", chunk.as_str(), "second query", "third query"];

    let embeddings = model.embed(&texts).expect("embedding");
    assert_eq!(
        model.forward_passes(),
        2,
        "the three queries share a pass, the chunk gets one of its own"
    );
    for (text, item) in texts.iter().zip(&embeddings.items) {
        assert!(largest_difference(&item.vector, &embed_one(text)) < 1e-4);
    }
}

/// The model reads word embeddings from the file row by row and builds the attention bias
/// itself; both must give what candle's own BERT gives with every weight in memory.
#[test]
fn vectors_match_candles_bert_with_all_weights_in_memory() {
    use candle_core::{DType, Device, Tensor};
    use candle_transformers::models::bert::{BertModel, Config};

    let dir = crate::model_dir();
    let config: Config = serde_json::from_str(
        &std::fs::read_to_string(dir.join("config.json")).expect("config.json"),
    )
    .expect("a BERT config");
    let weights = std::fs::read(dir.join("model.safetensors")).expect("weights");
    let weights =
        candle_nn::VarBuilder::from_buffered_safetensors(weights, DType::F32, &Device::Cpu)
            .expect("safetensors");
    let bert = BertModel::load(weights, &config).expect("candle's BERT");
    let mut tokenizer =
        tokenizers::Tokenizer::from_file(dir.join("tokenizer.json")).expect("tokenizer");
    tokenizer.with_padding(None);

    let texts = [
        "A man is eating food.",
        "Hi",
        "The stock market fell sharply today, and nobody on the trading floor could say why.",
    ];
    let ours = shared_model().embed(&texts).expect("embedding");
    let encodings: Vec<_> = texts
        .iter()
        .map(|text| tokenizer.encode(*text, true).expect("tokenizing"))
        .collect();
    let longest = encodings.iter().map(|e| e.len()).max().expect("inputs");
    let (mut ids, mut mask) = (Vec::new(), Vec::new());
    for encoding in &encodings {
        let padding = longest - encoding.len();
        ids.extend(
            encoding
                .get_ids()
                .iter()
                .copied()
                .chain(std::iter::repeat_n(0, padding)),
        );
        mask.extend(
            std::iter::repeat_n(1u32, encoding.len()).chain(std::iter::repeat_n(0, padding)),
        );
    }
    let shape = (texts.len(), longest);
    let ids = Tensor::from_vec(ids, shape, &Device::Cpu).expect("ids");
    let mask = Tensor::from_vec(mask, shape, &Device::Cpu).expect("mask");
    let hidden = bert
        .forward(&ids, &ids.zeros_like().expect("segments"), Some(&mask))
        .expect("candle's forward pass");
    let hidden = hidden.to_vec3::<f32>().expect("hidden states");

    for ((text, item), (rows, encoding)) in texts
        .iter()
        .zip(&ours.items)
        .zip(hidden.iter().zip(&encodings))
    {
        let real = &rows[..encoding.len()];
        let mut mean = vec![0f32; real[0].len()];
        for row in real {
            for (sum, value) in mean.iter_mut().zip(row) {
                *sum += value / real.len() as f32;
            }
        }
        let length = norm(&mean);
        let expected: Vec<f32> = mean.iter().map(|value| value / length).collect();
        let difference = largest_difference(&item.vector, &expected);
        assert!(
            difference < 1e-5,
            "{text:?} differs from candle's BERT by {difference}"
        );
    }
}

#[test]
fn long_text_splits_into_overlapping_chunks_the_model_reads_whole() {
    let model = shared_model();
    let sentence = "Zürich's 3 café owners—naïve, 😀 happy—met on 2024-05-01 to talk about \
                    aerodynamics of wings in a slipstream.\n";
    let text = sentence.repeat(40);
    let chunks = model.chunk(&text, 100, 20).expect("chunks");
    assert!(chunks.len() > 5, "{} chunks", chunks.len());
    // Each chunk fits the model: at most 100 tokens plus [CLS] and [SEP], so none is cut.
    let pieces: Vec<&str> = chunks.iter().map(|chunk| &text[chunk.clone()]).collect();
    let embedded = model.embed(&pieces).expect("embedding");
    for item in &embedded.items {
        assert!(!item.truncated);
        assert!(item.n_tokens <= 102, "{} tokens", item.n_tokens);
    }
    // Consecutive chunks overlap, and together they are the text, byte for byte.
    assert!(chunks.windows(2).all(|pair| pair[1].start < pair[0].end));
    assert_eq!(
        hearth_embed::rebuild(|range| text[range].to_string(), &chunks),
        text
    );
    // A text within one chunk is one chunk.
    let whole = model.chunk(sentence, 100, 20).expect("chunks");
    assert_eq!((whole.len(), whole[0].clone()), (1, 0..sentence.len()));
    assert!(model.chunk(sentence, 10, 10).is_err());
}
