//! Okapi BM25, as pure functions: the inverse document frequency of a term and one term's
//! contribution to a document's score.
//!
//! ```text
//! score(D, Q) = sum over distinct query terms t in D of
//!               idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * |D| / avgdl))
//! idf(t)      = ln(1 + (N - df + 0.5) / (df + 0.5))
//! ```
//!
//! with `k1 = 1.2` and `b = 0.75`, the values of Robertson's experiments and the defaults of
//! Lucene, Elasticsearch and SQLite FTS5. The idf is Lucene's: it stays positive for a term in
//! every document, where the classic form goes negative for `df > N / 2` (FTS5 clamps that to
//! a tiny constant instead). `N` is the number of documents in the searched scope, `df` the
//! number of them holding `t`, `|D|` the document's length and `avgdl` the scope's mean
//! length, both in tokens.

/// Term-frequency saturation.
pub const K1: f64 = 1.2;

/// Length normalization.
pub const B: f64 = 0.75;

/// A count as a float. Counts here stay far below 2^53, where `f64` is exact.
#[expect(
    clippy::cast_precision_loss,
    reason = "document and token counts stay far below 2^53, where f64 is exact"
)]
pub fn count(value: u64) -> f64 {
    value as f64
}

/// The inverse document frequency of a term in `df` of `documents` documents (`df <=
/// documents`).
pub fn idf(documents: u64, df: u64) -> f64 {
    debug_assert!(df <= documents);
    let (n, df) = (count(documents), count(df));
    ((n - df + 0.5) / (df + 0.5)).ln_1p()
}

/// One term's contribution: `idf · tf·(k1 + 1) / (tf + k1·(1 − b + b·doc_len / avg_len))`.
pub fn term_score(idf: f64, term_frequency: u32, doc_len: u32, avg_len: f64) -> f64 {
    let tf = f64::from(term_frequency);
    let norm = 1.0 - B + B * f64::from(doc_len) / avg_len;
    idf * tf * (K1 + 1.0) / (tf + K1 * norm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idf_is_positive_and_falls_with_document_frequency() {
        assert!(idf(100, 100) > 0.0);
        assert!(idf(100, 1) > idf(100, 2));
        assert!((idf(10, 1) - (1.0_f64 + 9.5 / 1.5).ln()).abs() < 1e-12);
    }

    #[test]
    fn term_score_saturates_and_normalizes_by_length() {
        let one = term_score(1.0, 1, 10, 10.0);
        assert!(
            (one - 1.0).abs() < 1e-12,
            "tf 1 at average length scores idf"
        );
        assert!(term_score(1.0, 2, 10, 10.0) > one);
        assert!(term_score(1.0, 100, 10, 10.0) < K1 + 1.0);
        assert!(term_score(1.0, 1, 5, 10.0) > term_score(1.0, 1, 20, 10.0));
    }
}
