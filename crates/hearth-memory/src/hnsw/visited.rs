//! Per-search scratch space: a generation-stamped visited set and the two heaps, pooled by the
//! index so a search allocates nothing once warm.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// A node and its distance to the query; ordered by distance, then id.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    pub(crate) distance: f32,
    pub(crate) id: u32,
}

impl Eq for Candidate {}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        self.distance
            .total_cmp(&other.distance)
            .then(self.id.cmp(&other.id))
    }
}

/// Marks nodes visited by stamping them with the current generation; clearing is one
/// increment, and the array is zeroed only when the 16-bit generation wraps.
#[derive(Debug, Default)]
pub(crate) struct VisitedSet {
    marks: Vec<u16>,
    generation: u16,
}

impl VisitedSet {
    /// Starts a new search over ids below `capacity`.
    pub(crate) fn reset(&mut self, capacity: usize) {
        if self.marks.len() < capacity {
            self.marks.resize(capacity, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.fill(0);
            self.generation = 1;
        }
    }

    /// Marks `id`; returns true when it was not visited before in this search.
    #[inline(always)]
    pub(crate) fn insert(&mut self, id: u32) -> bool {
        let mark = &mut self.marks[id as usize];
        let new = *mark != self.generation;
        *mark = self.generation;
        new
    }

    /// Whether `id` was visited in this search.
    #[inline(always)]
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.marks[id as usize] == self.generation
    }
}

/// Everything one search or insert needs besides the index.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    pub(crate) visited: VisitedSet,
    /// Nodes still to expand, closest first.
    pub(crate) candidates: BinaryHeap<Reverse<Candidate>>,
    /// The best nodes found, farthest on top.
    pub(crate) results: BinaryHeap<Candidate>,
    /// Neighbour ids copied out of a node's list.
    pub(crate) neighbours: Vec<u32>,
    /// Allowed nodes one or two hops away, in a filtered search.
    pub(crate) reachable: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_visited_set_forgets_at_reset_and_survives_generation_wrap() {
        let mut visited = VisitedSet::default();
        for _round in 0..70_000u32 {
            visited.reset(10);
            assert!(!visited.contains(3));
            assert!(visited.insert(3));
            assert!(!visited.insert(3));
            assert!(visited.contains(3) && !visited.contains(4));
        }
        // Growing keeps working for ids past the old size.
        visited.reset(100);
        assert!(visited.insert(99));
    }

    #[test]
    fn candidates_order_by_distance_then_id() {
        let near = Candidate {
            distance: 0.1,
            id: 9,
        };
        let far = Candidate {
            distance: 0.5,
            id: 1,
        };
        let tie = Candidate {
            distance: 0.1,
            id: 2,
        };
        let mut sorted = vec![far, near, tie];
        sorted.sort();
        assert_eq!(sorted, [tie, near, far]);
    }
}
