//! Walks along relations, a frontier at a time: each step reads the relations of every node at
//! the current distance in one statement (both directions are indexed), so a depth-3 query is
//! a handful of statements however many nodes it touches. Node and relation rows are read
//! once, at the end, for what the answer holds.

use std::collections::{HashMap, HashSet};

use hearth_memory::MemoryError;
use hearth_store::{GraphEdge, GraphNodeRow};

use crate::{
    Direction, Expand, Follow, Graphs, NodeHit, Path, PathQuery, Paths, Reached, Relation,
    Subgraph, SubgraphQuery, node_of, relation_of,
};

/// Partial paths kept while searching; past this the search stops and says it was truncated.
const MAX_PARTIAL_PATHS: usize = 100_000;

fn reversed(direction: Direction) -> Direction {
    match direction {
        Direction::Out => Direction::In,
        Direction::In => Direction::Out,
        Direction::Both => Direction::Both,
    }
}

/// The node at the other end of `edge` from `node`, walking in `direction`.
fn across(edge: &GraphEdge, node: i64, direction: Direction) -> Option<i64> {
    match direction {
        Direction::Out => (edge.source_key == node).then_some(edge.target_key),
        Direction::In => (edge.target_key == node).then_some(edge.source_key),
        Direction::Both if edge.source_key == node => Some(edge.target_key),
        Direction::Both if edge.target_key == node => Some(edge.source_key),
        Direction::Both => None,
    }
}

/// The relations of a frontier, by the node they were reached from.
type Adjacency = HashMap<i64, Vec<(i64, i64)>>;

/// Reads the relations of the nodes in `frontier` that `adjacency` lacks into it, as
/// (relation, node across) pairs.
async fn extend(
    graphs: &Graphs,
    adjacency: &mut Adjacency,
    frontier: &[i64],
    follow: &Follow,
    direction: Direction,
) -> Result<(), MemoryError> {
    let missing: Vec<i64> = frontier
        .iter()
        .copied()
        .filter(|node| !adjacency.contains_key(node))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let edges = graphs
        .store()
        .graph_edges(&missing, direction, follow.types.as_deref())
        .await?;
    for &node in &missing {
        adjacency.entry(node).or_default();
    }
    let wanted: HashSet<i64> = missing.iter().copied().collect();
    for edge in &edges {
        for end in [edge.source_key, edge.target_key] {
            if !wanted.contains(&end) {
                continue;
            }
            if let Some(other) = across(edge, end, direction) {
                let list = adjacency.entry(end).or_default();
                // A self-loop seen from both ends under `Both` is one relation.
                if !list.contains(&(edge.relation_key, other)) {
                    list.push((edge.relation_key, other));
                }
            }
            if edge.source_key == edge.target_key {
                break;
            }
        }
    }
    Ok(())
}

/// Node and relation rows for the keys an answer names.
struct Rows {
    nodes: HashMap<i64, GraphNodeRow>,
    relations: HashMap<i64, Relation>,
}

impl Rows {
    async fn read(graphs: &Graphs, nodes: &[i64], relations: &[i64]) -> Result<Rows, MemoryError> {
        let nodes = graphs
            .store()
            .graph_nodes_by_key(nodes)
            .await?
            .into_iter()
            .map(|row| (row.key, row))
            .collect();
        let relations = graphs
            .store()
            .graph_relations_by_key(relations)
            .await?
            .into_iter()
            .map(|row| Ok((row.key, relation_of(row)?)))
            .collect::<Result<_, MemoryError>>()?;
        Ok(Rows { nodes, relations })
    }

    fn node(&self, key: i64) -> Result<crate::Node, MemoryError> {
        // A node deleted while the query ran: its rows are gone, and so is the answer's.
        let row = self.nodes.get(&key).cloned().ok_or_else(|| {
            MemoryError::Conflict("the graph changed during the query; ask again".to_string())
        })?;
        node_of(row)
    }

    fn relation(&self, key: i64) -> Result<Relation, MemoryError> {
        self.relations.get(&key).cloned().ok_or_else(|| {
            MemoryError::Conflict("the graph changed during the query; ask again".to_string())
        })
    }
}

/// Simple paths from `from` to `to`, shortest first. A backward walk from `to` (half the
/// depth) gives each nearby node its distance to `to`; the forward walk then extends a
/// partial path only to nodes that can still reach `to` within the depth, so a depth-3 query
/// reads the relations of `from`'s neighbours and of `to`'s, not of everything within 3.
pub(crate) async fn paths(
    graphs: &Graphs,
    from: i64,
    to: i64,
    query: &PathQuery,
) -> Result<Paths, MemoryError> {
    let direction = query.follow.direction;
    let max_depth = query.max_depth;
    if from == to {
        let rows = Rows::read(graphs, &[from], &[]).await?;
        return Ok(Paths {
            paths: vec![Path {
                nodes: vec![rows.node(from)?],
                relations: Vec::new(),
            }],
            truncated: false,
        });
    }

    // Distances to `to`, walking relations backwards, up to half the depth.
    let backward_depth = max_depth / 2;
    let mut to_target: HashMap<i64, usize> = HashMap::from([(to, 0)]);
    let mut backward = Adjacency::new();
    let mut frontier = vec![to];
    for distance in 1..=backward_depth {
        extend(
            graphs,
            &mut backward,
            &frontier,
            &query.follow,
            reversed(direction),
        )
        .await?;
        let mut next = Vec::new();
        for node in &frontier {
            for &(_, other) in &backward[node] {
                if let std::collections::hash_map::Entry::Vacant(entry) = to_target.entry(other) {
                    entry.insert(distance);
                    next.push(other);
                }
            }
        }
        frontier = next;
    }
    // No node beyond the backward walk is nearer to `to` than one more step.
    let at_least = |node: i64| to_target.get(&node).copied().unwrap_or(backward_depth + 1);

    let mut forward = Adjacency::new();
    let mut partial: Vec<(Vec<i64>, Vec<i64>)> = vec![(vec![from], Vec::new())];
    let mut found: Vec<(Vec<i64>, Vec<i64>)> = Vec::new();
    let mut truncated = false;
    for depth in 0..max_depth {
        if partial.is_empty() || found.len() >= query.limit {
            break;
        }
        let ends: Vec<i64> = partial
            .iter()
            .filter_map(|(nodes, _)| nodes.last().copied())
            .collect();
        extend(graphs, &mut forward, &ends, &query.follow, direction).await?;
        let mut next = Vec::new();
        'paths: for (nodes, relations) in &partial {
            let Some(&end) = nodes.last() else { continue };
            for &(relation, other) in &forward[&end] {
                if nodes.contains(&other) || depth + 1 + at_least(other) > max_depth {
                    continue;
                }
                let mut longer_nodes = nodes.clone();
                longer_nodes.push(other);
                let mut longer_relations = relations.clone();
                longer_relations.push(relation);
                if other == to {
                    found.push((longer_nodes, longer_relations));
                } else {
                    if next.len() >= MAX_PARTIAL_PATHS {
                        truncated = true;
                        break 'paths;
                    }
                    next.push((longer_nodes, longer_relations));
                }
            }
        }
        partial = next;
    }
    if found.len() > query.limit {
        found.truncate(query.limit);
        truncated = true;
    } else if found.len() == query.limit && !partial.is_empty() {
        truncated = true;
    }

    let node_keys: Vec<i64> = found
        .iter()
        .flat_map(|(nodes, _)| nodes.iter().copied())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let relation_keys: Vec<i64> = found
        .iter()
        .flat_map(|(_, relations)| relations.iter().copied())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let rows = Rows::read(graphs, &node_keys, &relation_keys).await?;
    let paths = found
        .into_iter()
        .map(|(nodes, relations)| {
            Ok(Path {
                nodes: nodes
                    .into_iter()
                    .map(|key| rows.node(key))
                    .collect::<Result<_, MemoryError>>()?,
                relations: relations
                    .into_iter()
                    .map(|key| rows.relation(key))
                    .collect::<Result<_, MemoryError>>()?,
            })
        })
        .collect::<Result<_, MemoryError>>()?;
    Ok(Paths { paths, truncated })
}

/// The nodes within `depth` of `start` (breadth first, at most `max_nodes`) and every
/// followed relation among them.
pub(crate) async fn subgraph(
    graphs: &Graphs,
    start: i64,
    query: &SubgraphQuery,
) -> Result<Subgraph, MemoryError> {
    let direction = query.follow.direction;
    let mut order = vec![start];
    let mut seen: HashSet<i64> = HashSet::from([start]);
    let mut adjacency = Adjacency::new();
    let mut frontier = vec![start];
    let mut truncated = false;
    'walk: for _ in 0..query.depth {
        if frontier.is_empty() {
            break;
        }
        extend(graphs, &mut adjacency, &frontier, &query.follow, direction).await?;
        let mut next = Vec::new();
        for node in &frontier {
            for &(_, other) in &adjacency[node] {
                if seen.contains(&other) {
                    continue;
                }
                if order.len() >= query.max_nodes {
                    truncated = true;
                    break 'walk;
                }
                seen.insert(other);
                order.push(other);
                next.push(other);
            }
        }
        frontier = next;
    }
    let edges = graphs
        .store()
        .graph_edges_within(&order, query.follow.types.as_deref())
        .await?;
    let relation_keys: Vec<i64> = edges.iter().map(|edge| edge.relation_key).collect();
    let rows = Rows::read(graphs, &order, &relation_keys).await?;
    Ok(Subgraph {
        nodes: order
            .into_iter()
            .map(|key| rows.node(key))
            .collect::<Result<_, MemoryError>>()?,
        relations: relation_keys
            .into_iter()
            .map(|key| rows.relation(key))
            .collect::<Result<_, MemoryError>>()?,
        truncated,
    })
}

/// The nodes a search's hits reach along the followed relations (none of them a hit),
/// nearest first, at most `expand.limit`.
pub(crate) async fn expand(
    graphs: &Graphs,
    hit_keys: &[i64],
    hits: &[NodeHit],
    expand: &Expand,
) -> Result<Vec<Reached>, MemoryError> {
    let direction = expand.follow.direction;
    let mut seen: HashSet<i64> = hit_keys.iter().copied().collect();
    // Each reached node: (node, from node, relation, depth).
    let mut reached: Vec<(i64, i64, i64, usize)> = Vec::new();
    let mut adjacency = Adjacency::new();
    let mut frontier = hit_keys.to_vec();
    'walk: for depth in 1..=expand.depth {
        if frontier.is_empty() {
            break;
        }
        extend(graphs, &mut adjacency, &frontier, &expand.follow, direction).await?;
        let mut next = Vec::new();
        for node in &frontier {
            for &(relation, other) in &adjacency[node] {
                if !seen.insert(other) {
                    continue;
                }
                if reached.len() >= expand.limit {
                    break 'walk;
                }
                reached.push((other, *node, relation, depth));
                next.push(other);
            }
        }
        frontier = next;
    }
    let node_keys: Vec<i64> = reached.iter().map(|&(node, ..)| node).collect();
    let relation_keys: Vec<i64> = reached
        .iter()
        .map(|&(_, _, relation, _)| relation)
        .collect();
    let rows = Rows::read(graphs, &node_keys, &relation_keys).await?;
    let mut ids: HashMap<i64, String> = hit_keys
        .iter()
        .zip(hits)
        .map(|(&key, hit)| (key, hit.node.id.clone()))
        .collect();
    for (key, row) in &rows.nodes {
        ids.insert(*key, row.id.clone());
    }
    reached
        .into_iter()
        .map(|(node, from, relation, depth)| {
            Ok(Reached {
                node: rows.node(node)?,
                from: ids.get(&from).cloned().unwrap_or_default(),
                via: rows.relation(relation)?,
                depth,
            })
        })
        .collect()
}
