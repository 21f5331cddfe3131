//! "Did you mean …?": the nearest of a few known names to one the user typed.

/// The candidate nearest to `typed` by edit distance (case-insensitive), when it is close
/// enough to be what was meant: at most a third of the longer name's length, and at least
/// one edit away from every other candidate that is as close.
pub fn nearest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let typed = typed.to_ascii_lowercase();
    let mut best: Option<(&'a str, usize)> = None;
    let mut tie = false;
    for c in candidates {
        let d = edit_distance(&typed, &c.to_ascii_lowercase());
        match best {
            Some((_, b)) if d > b => {}
            Some((_, b)) if d == b => tie = true,
            _ => {
                best = Some((c, d));
                tie = false;
            }
        }
    }
    let (c, d) = best?;
    let longer = typed.chars().count().max(c.chars().count());
    (!tie && d > 0 && d * 3 <= longer.max(3)).then_some(c)
}

/// Levenshtein distance over characters: insertions, deletions and substitutions.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("ETH/USD", "ETH/USDT"), 1);
    }

    #[test]
    fn suggests_only_a_close_unambiguous_name() {
        let symbols = ["BTC/USD", "ETH/USD", "SOL/USD"];
        assert_eq!(nearest("ETH/USDT", symbols), Some("ETH/USD"));
        assert_eq!(nearest("BTCUSD", symbols), Some("BTC/USD"));
        assert_eq!(
            nearest("btc/usd", symbols),
            None,
            "the same name is no suggestion"
        );
        assert_eq!(nearest("DOGE/EUR", symbols), None);
        assert_eq!(
            nearest("max_risk_percnt", ["max_risk_percent", "min_confidence"]),
            Some("max_risk_percent")
        );
        assert_eq!(
            nearest("mlengine", ["auto_trade", "ml_engine"]),
            Some("ml_engine")
        );
        // XXX/USD is as near to BTC/USD as to ETH/USD and SOL/USD: no guess.
        assert_eq!(nearest("XXX/USD", symbols), None);
    }
}
