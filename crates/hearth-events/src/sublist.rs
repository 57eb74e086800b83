//! The subscription index: patterns in a trie of their tokens, with a `*` branch and a `>`
//! list at every node, so finding a topic's subscribers costs the topic's depth times the
//! wildcard branches taken, whatever the number of subscriptions.

use std::collections::HashMap;

use crate::{Pattern, Topic};

/// Subscribers (`T`: a subscription id, a sender) by pattern. A value inserted under several
/// patterns that match one topic is returned once per pattern, as NATS delivers once per
/// subscription.
#[derive(Debug, Clone)]
pub struct Sublist<T> {
    root: Node<T>,
    len: usize,
}

#[derive(Debug, Clone)]
struct Node<T> {
    literals: HashMap<String, Node<T>>,
    star: Option<Box<Node<T>>>,
    /// Subscribers whose pattern ends in `>` after this node's tokens.
    rest: Vec<T>,
    /// Subscribers whose pattern ends exactly here.
    here: Vec<T>,
}

impl<T> Default for Node<T> {
    fn default() -> Node<T> {
        Node {
            literals: HashMap::new(),
            star: None,
            rest: Vec::new(),
            here: Vec::new(),
        }
    }
}

impl<T> Node<T> {
    fn is_empty(&self) -> bool {
        self.literals.is_empty()
            && self.star.is_none()
            && self.rest.is_empty()
            && self.here.is_empty()
    }
}

impl<T> Default for Sublist<T> {
    fn default() -> Sublist<T> {
        Sublist {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<T: Clone + PartialEq> Sublist<T> {
    pub fn new() -> Sublist<T> {
        Sublist::default()
    }

    /// How many subscriptions it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Subscribes `value` to `pattern`.
    pub fn insert(&mut self, pattern: &Pattern, value: T) {
        let mut node = &mut self.root;
        for token in pattern.tokens() {
            node = match token {
                ">" => {
                    // Always the last token (the pattern checked it).
                    node.rest.push(value);
                    self.len += 1;
                    return;
                }
                "*" => node.star.get_or_insert_with(Box::default),
                literal => node.literals.entry(literal.to_string()).or_default(),
            };
        }
        node.here.push(value);
        self.len += 1;
    }

    /// Removes one subscription of `value` to `pattern`, and the trie nodes it leaves empty.
    /// False when there was none.
    pub fn remove(&mut self, pattern: &Pattern, value: &T) -> bool {
        let tokens: Vec<&str> = pattern.tokens().collect();
        let removed = remove_from(&mut self.root, &tokens, value);
        if removed {
            self.len -= 1;
        }
        removed
    }

    /// Every subscriber whose pattern matches `topic`.
    pub fn matches(&self, topic: &Topic) -> Vec<T> {
        let tokens: Vec<&str> = topic.tokens().collect();
        let mut found = Vec::new();
        collect(&self.root, &tokens, &mut found);
        found
    }
}

fn collect<T: Clone>(node: &Node<T>, tokens: &[&str], found: &mut Vec<T>) {
    let Some((first, rest)) = tokens.split_first() else {
        found.extend(node.here.iter().cloned());
        return;
    };
    // At least one token remains, which is what `>` needs.
    found.extend(node.rest.iter().cloned());
    if let Some(child) = node.literals.get(*first) {
        collect(child, rest, found);
    }
    if let Some(star) = &node.star {
        collect(star, rest, found);
    }
}

fn remove_one<T: PartialEq>(values: &mut Vec<T>, value: &T) -> bool {
    match values.iter().position(|candidate| candidate == value) {
        Some(position) => {
            values.swap_remove(position);
            true
        }
        None => false,
    }
}

fn remove_from<T: PartialEq>(node: &mut Node<T>, tokens: &[&str], value: &T) -> bool {
    let Some((first, rest)) = tokens.split_first() else {
        return remove_one(&mut node.here, value);
    };
    match *first {
        ">" => remove_one(&mut node.rest, value),
        "*" => {
            let Some(star) = node.star.as_deref_mut() else {
                return false;
            };
            let removed = remove_from(star, rest, value);
            if star.is_empty() {
                node.star = None;
            }
            removed
        }
        literal => {
            let Some(child) = node.literals.get_mut(literal) else {
                return false;
            };
            let removed = remove_from(child, rest, value);
            if child.is_empty() {
                node.literals.remove(literal);
            }
            removed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(text: &str) -> Pattern {
        Pattern::parse(text).unwrap()
    }

    fn topic(text: &str) -> Topic {
        Topic::parse(text).unwrap()
    }

    fn sorted(mut values: Vec<u32>) -> Vec<u32> {
        values.sort_unstable();
        values
    }

    #[test]
    fn literal_star_and_full_wildcards_find_their_subscribers() {
        let mut list = Sublist::new();
        list.insert(&pattern("agent.task.done"), 1);
        list.insert(&pattern("agent.*.done"), 2);
        list.insert(&pattern("agent.>"), 3);
        list.insert(&pattern(">"), 4);
        list.insert(&pattern("*.task.*"), 5);
        list.insert(&pattern("emotion.joy"), 6);
        assert_eq!(list.len(), 6);
        assert_eq!(
            sorted(list.matches(&topic("agent.task.done"))),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(sorted(list.matches(&topic("agent.job.done"))), [2, 3, 4]);
        assert_eq!(sorted(list.matches(&topic("agent"))), [4]);
        assert_eq!(sorted(list.matches(&topic("emotion.joy"))), [4, 6]);
        assert_eq!(sorted(list.matches(&topic("emotion.joy.big"))), [4]);
    }

    #[test]
    fn removing_takes_one_subscription_and_prunes_what_it_leaves_empty() {
        let mut list = Sublist::new();
        list.insert(&pattern("a.*.c"), 1);
        list.insert(&pattern("a.*.c"), 1);
        list.insert(&pattern("a.>"), 2);
        assert!(list.remove(&pattern("a.*.c"), &1));
        assert_eq!(sorted(list.matches(&topic("a.b.c"))), [1, 2]);
        assert!(list.remove(&pattern("a.*.c"), &1));
        assert!(!list.remove(&pattern("a.*.c"), &1));
        assert!(!list.remove(&pattern("x.y"), &1));
        assert_eq!(list.matches(&topic("a.b.c")), [2]);
        assert!(list.remove(&pattern("a.>"), &2));
        assert!(list.is_empty());
        assert!(
            list.root.is_empty(),
            "empty nodes are pruned: {:?}",
            list.root
        );
    }

    /// A small deterministic generator (SplitMix64), so the comparison below is the same on
    /// every run.
    struct Random(u64);

    impl Random {
        fn next(&mut self, below: usize) -> usize {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut mixed = self.0;
            mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((mixed ^ (mixed >> 31)) % below as u64) as usize
        }
    }

    #[test]
    fn the_trie_agrees_with_matching_each_pattern_on_its_own() {
        let mut random = Random(7);
        let words = ["a", "b", "c"];
        let mut patterns = Vec::new();
        let mut list = Sublist::new();
        for id in 0..300u32 {
            let length = 1 + random.next(4);
            let tokens: Vec<&str> = (0..length)
                .map(|position| match random.next(6) {
                    0 => "*",
                    1 if position == length - 1 => ">",
                    choice => words[choice % 3],
                })
                .collect();
            let parsed = pattern(&tokens.join("."));
            list.insert(&parsed, id);
            patterns.push(parsed);
        }
        // Remove a third, so pruning is part of what is compared.
        for id in (0..300u32).step_by(3) {
            assert!(list.remove(&patterns[id as usize], &id));
        }
        for _ in 0..500 {
            let length = 1 + random.next(5);
            let text: Vec<&str> = (0..length).map(|_| words[random.next(3)]).collect();
            let topic = topic(&text.join("."));
            let expected: Vec<u32> = (0..300u32)
                .filter(|id| id % 3 != 0 && patterns[*id as usize].matches(&topic))
                .collect();
            assert_eq!(sorted(list.matches(&topic)), expected, "{topic}");
        }
    }
}
