//! The tokenizer: Unicode word segmentation (UAX #29, by `unicode-segmentation`), then
//! lowercase, then a cut at [`TERM_BYTES_MAX`] bytes on a character boundary.
//!
//! Indexing and querying use this one function, so a term always matches itself. A word is
//! what UAX #29 calls one and that holds a letter or digit: punctuation and spaces never
//! become terms; `don't`, `3.14` and `foo.bar` stay whole. No stemming and no stop words:
//! BM25's inverse document frequency already gives words in every document almost no
//! weight, and an agent's memory is full of identifiers and codes that a stemmer would mangle.

use std::borrow::Cow;

use unicode_segmentation::UnicodeSegmentation;

use super::limits::TERM_BYTES_MAX;

/// One token of a text: its normalized term and where the word starts and ends in the text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token<'text> {
    /// The term: the word lowercased and cut to [`TERM_BYTES_MAX`] bytes.
    pub term: Cow<'text, str>,
    /// Byte offset of the word in the text.
    pub start: usize,
    /// Byte offset just past the word.
    pub end: usize,
}

/// The tokens of `text`, in order.
pub fn tokens(text: &str) -> impl Iterator<Item = Token<'_>> {
    text.unicode_word_indices().map(|(start, word)| Token {
        term: normalize(word),
        start,
        end: start + word.len(),
    })
}

/// A word as a term: lowercased, then cut to at most [`TERM_BYTES_MAX`] bytes at a character
/// boundary.
pub fn normalize(word: &str) -> Cow<'_, str> {
    let lowered = if word.chars().any(char::is_uppercase) {
        Cow::Owned(word.to_lowercase())
    } else {
        Cow::Borrowed(word)
    };
    if lowered.len() <= TERM_BYTES_MAX {
        return lowered;
    }
    let cut = floor_char_boundary(&lowered, TERM_BYTES_MAX);
    match lowered {
        Cow::Borrowed(text) => Cow::Borrowed(text.get(..cut).unwrap_or_default()),
        Cow::Owned(mut text) => {
            text.truncate(cut);
            Cow::Owned(text)
        }
    }
}

/// The largest character boundary of `text` at or below `index`.
pub(crate) fn floor_char_boundary(text: &str, index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    (0..=index)
        .rev()
        .find(|&at| text.is_char_boundary(at))
        .unwrap_or(0)
}

/// The smallest character boundary of `text` at or above `index`.
pub(crate) fn ceil_char_boundary(text: &str, index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    (index..text.len())
        .find(|&at| text.is_char_boundary(at))
        .unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(text: &str) -> Vec<String> {
        tokens(text).map(|token| token.term.into_owned()).collect()
    }

    #[test]
    fn words_are_lowercased_and_punctuation_dropped() {
        assert_eq!(
            terms("Hello, World! The tool-call FAILED: timeout (3.5s)."),
            ["hello", "world", "the", "tool", "call", "failed", "timeout", "3.5s"]
        );
        assert_eq!(terms("  ...  "), Vec::<String>::new());
    }

    #[test]
    fn unicode_words_are_segmented_and_lowercased() {
        assert_eq!(terms("Größe ÜBER Straße"), ["größe", "über", "straße"]);
        assert_eq!(terms("naïve café"), ["naïve", "café"]);
    }

    #[test]
    fn offsets_point_at_the_words() {
        let text = "Die Größe passt";
        for token in tokens(text) {
            let word = text.get(token.start..token.end).expect("in bounds");
            assert_eq!(normalize(word), token.term);
        }
    }

    #[test]
    fn long_words_are_cut_at_a_character_boundary() {
        let long = "é".repeat(100);
        let term = normalize(&long);
        assert!(term.len() <= TERM_BYTES_MAX);
        assert_eq!(term.len(), TERM_BYTES_MAX);
        assert!(term.chars().all(|c| c == 'é'));
        let ascii = "A".repeat(70);
        assert_eq!(normalize(&ascii), "a".repeat(TERM_BYTES_MAX));
        // Three-byte characters: 64 is not a boundary, so the cut is at 63.
        let wide = "字".repeat(30);
        assert_eq!(normalize(&wide).len(), 63);
    }
}
