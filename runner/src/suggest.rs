//! "Did you mean ...?": the known word a mistyped one most likely meant.

/// The candidate `word` most likely meant: the same ignoring case and `_`/`-`,
/// or within two edits.
pub fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let fold = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-'))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let folded = fold(word);
    candidates
        .map(|candidate| (edit_distance(&folded, &fold(candidate)), candidate))
        .filter(|(distance, candidate)| *distance <= 2 && *distance < candidate.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Up to `limit` candidates closest to `word`, ignoring case: those as few
/// edits away as the closest one, when that is within a third of its
/// length (at least two). For ids such as `Deployment/ns/web`, where a
/// typo can sit in any part.
pub fn nearest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
    limit: usize,
) -> Vec<&'a str> {
    let word = word.to_lowercase();
    let most = (word.chars().count() / 3).max(2);
    let mut ranked: Vec<(usize, &str)> = candidates
        .map(|c| (edit_distance(&word, &c.to_lowercase()), c))
        .filter(|(distance, _)| *distance <= most)
        .collect();
    ranked.sort();
    let best = ranked.first().map_or(0, |(distance, _)| *distance);
    ranked
        .into_iter()
        .take_while(|(distance, _)| *distance == best)
        .take(limit)
        .map(|(_, c)| c)
        .collect()
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_matches_case_and_separators_and_small_typos() {
        let keys = ["replicas", "nodePort", "image"];
        assert_eq!(closest("node_port", keys.into_iter()), Some("nodePort"));
        assert_eq!(closest("NODEPORT", keys.into_iter()), Some("nodePort"));
        assert_eq!(closest("imgae", keys.into_iter()), Some("image"));
        assert_eq!(closest("colour", keys.into_iter()), None);
    }

    #[test]
    fn nearest_ranks_close_ids_first() {
        let ids = [
            "ConfigMap/app/web-config",
            "Deployment/app/web",
            "Deployment/app/api",
            "Service/app/web",
        ];
        assert_eq!(
            nearest("deployment/app/wbe", ids.into_iter(), 3),
            ["Deployment/app/web"]
        );
        assert_eq!(
            nearest("Service/app/wab", ids.into_iter(), 3),
            ["Service/app/web"]
        );
        assert_eq!(
            nearest("Deployment/web", ids.into_iter(), 3),
            ["Deployment/app/web"]
        );
        assert_eq!(
            nearest("Secret/other/x", ids.into_iter(), 3),
            Vec::<&str>::new()
        );
    }
}
