//! Where pano-eks's block of security rules sits in the pre-rulebase, and the fewest `move`s of
//! *our* rules that put it there. Rules are evaluated top down, so order is policy; pano-eks
//! owns only its own rules and never moves anyone else's (a foreign rule can only be an anchor).
//!
//! The block is our rules in name order, contiguous, at the configured place: `top`, `bottom`,
//! right `before` or right `after` an anchor rule. Each of our rules is checked against its
//! neighbour in the block (the first against the place) and moved only when it is not already
//! there, so a rulebase in place yields no move (PAN-OS even refuses a move to where a rule
//! already is: "already at the top", code 14, facts §8). A missing anchor, or one that is ours,
//! is an error and nothing moves.

use crate::panorama::model::{Position, move_to};

/// `current`: every rule's name in rulebase order as it will be after this plan's creates (at
/// the bottom) and deletes. `ours`: our block in its order. → the moves, in order.
pub fn moves(current: &[String], ours: &[&str], place: &Position) -> Result<Vec<(String, Position)>, String> {
    if let Some(anchor) = place.dst() {
        if !current.iter().any(|r| r == anchor) {
            return Err(format!("placement {place}: there is no rule {anchor:?} in the pre-rulebase; pano-eks's rules are not moved"));
        }
        if ours.contains(&anchor) {
            return Err(format!("placement {place}: {anchor:?} is one of pano-eks's own rules; name a rule pano-eks does not own"));
        }
    }
    let mut list: Vec<String> = current.to_vec();
    let mut out = Vec::new();
    // Positions by name, rebuilt after a move: a rulebase in place (the usual case) costs one
    // pass, not one scan per rule of ours (16,000 of them in a large estate).
    let index = |list: &[String]| {
        let mut m: std::collections::HashMap<String, usize> = std::collections::HashMap::with_capacity(list.len());
        for (i, r) in list.iter().enumerate() {
            m.entry(r.clone()).or_insert(i);
        }
        m
    };
    let mut positions = index(&list);
    let bottom_up = matches!(place, Position::Bottom | Position::Before(_));
    let order: Vec<usize> = if bottom_up { (0..ours.len()).rev().collect() } else { (0..ours.len()).collect() };
    for (k, &i) in order.iter().enumerate() {
        let name = ours[i];
        let at = |name: &str| positions.get(name).copied();
        let Some(pos) = at(name) else { continue };
        let want = match (k, place) {
            (0, p) => p.clone(),
            (_, _) if bottom_up => Position::Before(ours[i + 1].to_owned()),
            _ => Position::After(ours[i - 1].to_owned()),
        };
        let in_place = match &want {
            Position::Top => pos == 0,
            Position::Bottom => pos + 1 == list.len(),
            Position::Before(d) => at(d) == Some(pos + 1),
            Position::After(d) => at(d).is_some_and(|a| a + 1 == pos),
        };
        if !in_place {
            move_to(&mut list, name, &want, |r| r.as_str());
            positions = index(&list);
            out.push((name.to_owned(), want));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    /// Applies the moves as Panorama would.
    fn after(current: &[String], moves: &[(String, Position)]) -> Vec<String> {
        let mut list = current.to_vec();
        for (n, p) in moves {
            move_to(&mut list, n, p, |r| r.as_str());
        }
        list
    }

    #[test]
    fn only_our_rules_move_and_only_when_out_of_place() {
        use Position::*;
        let a = |s: &str| After(s.to_owned());
        let b = |s: &str| Before(s.to_owned());
        // (rulebase now, our block, place, moves wanted, rulebase after)
        let table: &[(&str, &str, Position, usize, &str)] = &[
            // In place: nothing moves.
            ("o1 o2 f1 f2", "o1 o2", Top, 0, "o1 o2 f1 f2"),
            ("f1 f2 o1 o2", "o1 o2", Bottom, 0, "f1 f2 o1 o2"),
            ("f1 o1 o2 f2", "o1 o2", a("f1"), 0, "f1 o1 o2 f2"),
            ("f1 o1 o2 f2", "o1 o2", b("f2"), 0, "f1 o1 o2 f2"),
            // A new rule lands at the bottom: one move puts it after its neighbour.
            ("o1 o3 f1 f2 o2", "o1 o2 o3", Top, 1, "o1 o2 o3 f1 f2"),
            ("f1 o1 f2 o2", "o1 o2", a("f1"), 1, "f1 o1 o2 f2"),
            // Fresh block at the bottom, wanted at the top.
            ("f1 f2 o1 o2", "o1 o2", Top, 2, "o1 o2 f1 f2"),
            // The anchor moved (an admin moved f2 to the end): our block follows it.
            ("f1 o1 o2 f3 f2", "o1 o2", a("f2"), 2, "f1 f3 f2 o1 o2"),
            ("f2 f1 o1 o2", "o1 o2", b("f2"), 2, "o1 o2 f2 f1"),
            // A foreign rule slipped into our block: ours move round it, it stays.
            ("o1 f9 o2 f1", "o1 o2", Top, 1, "o1 o2 f9 f1"),
            // Empty block.
            ("f1 f2", "", Top, 0, "f1 f2"),
        ];
        for (now, ours, place, n, want) in table {
            let now = names(now);
            let ours_v = names(ours);
            let ours: Vec<&str> = ours_v.iter().map(String::as_str).collect();
            let moves = moves(&now, &ours, place).unwrap();
            assert_eq!(moves.len(), *n, "{now:?} {place}: {moves:?}");
            let got = after(&now, &moves);
            assert_eq!(got, names(want), "{now:?} {place}");
            // Moves name only our rules; the foreign rules keep their relative order.
            assert!(moves.iter().all(|(m, _)| ours.contains(&m.as_str())), "{moves:?}");
            let foreign = |l: &[String]| l.iter().filter(|r| !ours.contains(&r.as_str())).cloned().collect::<Vec<_>>();
            assert_eq!(foreign(&got), foreign(&now));
            // And the result is a fixed point: a resync moves nothing.
            assert!(super::moves(&got, &ours, place).unwrap().is_empty(), "{got:?}");
        }
    }

    #[test]
    fn a_missing_or_owned_anchor_is_an_error_and_nothing_moves() {
        let now = names("f1 o1 o2");
        let err = moves(&now, &["o1", "o2"], &Position::After("gone".into())).unwrap_err();
        assert!(err.contains("no rule \"gone\"") && err.contains("not moved"), "{err}");
        let err = moves(&now, &["o1", "o2"], &Position::Before("o1".into())).unwrap_err();
        assert!(err.contains("pano-eks's own rules"), "{err}");
    }
}
