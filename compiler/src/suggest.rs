//! "Did you mean …?" by edit distance.

/// Longest word, and most candidates, for which a close name is looked for: the search costs
/// the product of the lengths for each candidate, and a hostile file could otherwise ask for it
/// with huge names or thousands of them.
const MAX_WORD: usize = 64;
const MAX_CANDIDATES: usize = 256;

/// The candidate closest to `word`, if it is close enough to be a likely misspelling.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let length = word.chars().count();
    if length > MAX_WORD {
        return None;
    }
    let candidates: Vec<&str> = candidates.into_iter().take(MAX_CANDIDATES + 1).collect();
    if candidates.len() > MAX_CANDIDATES {
        return None;
    }
    let limit = (length / 3).max(1);
    let word = word.to_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        if c.chars().count().abs_diff(length) > limit {
            continue;
        }
        let d = distance(&word, &c.to_lowercase());
        if d <= limit && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

/// A help text: "did you mean `x`?" when one candidate is close, else the list of valid
/// names (or `None` when there are none).
pub fn help(word: &str, candidates: &[&str], quote: impl Fn(&str) -> String) -> Option<String> {
    if let Some(best) = did_you_mean(word, candidates.iter().copied()) {
        return Some(format!("did you mean {}?", quote(best)));
    }
    if candidates.is_empty() {
        return None;
    }
    let list: Vec<String> = candidates.iter().map(|c| quote(c)).collect();
    Some(format!("valid values are {}", list.join(", ")))
}

/// Optimal string alignment distance: Levenshtein plus transpositions.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_close_names_only() {
        assert_eq!(
            did_you_mean("regoin", ["region", "api_url"]),
            Some("region")
        );
        assert_eq!(
            did_you_mean("client_secert", ["client_id", "client_secret"]),
            Some("client_secret")
        );
        assert_eq!(did_you_mean("zzz", ["region", "api_url"]), None);
        assert_eq!(did_you_mean("URL", ["url"]), Some("url"));
    }
}
