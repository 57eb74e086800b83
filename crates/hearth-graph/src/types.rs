//! The domain types of graphs, nodes and relations, as the service takes and returns them.
//! None of them is a wire type: the server converts its JSON shapes into these.

use hearth_memory::{Filter, SearchMode};
use serde_json::{Map, Value};

pub use hearth_store::EdgeDirection as Direction;

/// What a new graph is made with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewGraph {
    pub name: String,
    /// The model that embeds node text; `None`: the memory service's default model (or, with
    /// `dimensions`, nodes carry their own embeddings).
    pub embedding_model: Option<String>,
    pub dimensions: Option<usize>,
    /// A JSON object (`Value::Null`: empty).
    pub metadata: Value,
}

/// A stored graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub id: String,
    pub name: String,
    /// The memory collection that embeds and searches the nodes.
    pub collection: String,
    pub metadata: Map<String, Value>,
    pub created_at_ms: i64,
}

/// A graph with how much it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphWithCounts {
    pub graph: Graph,
    pub nodes: u64,
    pub relations: u64,
}

/// A node to upsert by id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNode {
    pub id: String,
    pub node_type: String,
    pub title: String,
    pub content: String,
    /// A JSON object; `type` is not a property (it is the node's own field).
    pub properties: Value,
    /// The caller's embedding of the node's text; `None`: the graph's model embeds it.
    pub embedding: Option<Vec<f32>>,
}

/// A stored node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    pub node_type: String,
    pub title: String,
    pub content: String,
    pub properties: Map<String, Value>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// What an upsert of nodes stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NodesUpserted {
    pub nodes: Vec<Node>,
    pub embedding_tokens: u64,
    pub embedding_model: Option<String>,
}

/// A relation to upsert: one per (source, type, target); upserting an existing triple
/// replaces its properties and keeps its id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRelation {
    /// `None`: a new relation gets a made id.
    pub id: Option<String>,
    pub source: String,
    pub relation_type: String,
    pub target: String,
    /// A JSON object.
    pub properties: Value,
}

/// A stored relation.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    pub id: String,
    pub source: String,
    pub relation_type: String,
    pub target: String,
    pub properties: Map<String, Value>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// What deleting nodes removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deleted {
    pub nodes: u64,
    pub relations: u64,
}

/// Which relations a query follows: their direction from the node, and their types (`None`:
/// all).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Follow {
    pub direction: Direction,
    pub types: Option<Vec<String>>,
}

impl Default for Follow {
    fn default() -> Follow {
        Follow {
            direction: Direction::Out,
            types: None,
        }
    }
}

/// Which neighbours of a node to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborQuery {
    pub node: String,
    pub follow: Follow,
    /// The previous page's cursor.
    pub after: Option<String>,
    pub limit: usize,
}

/// One relation of the node and the node at its other end.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbor {
    pub relation: Relation,
    pub node: Node,
}

/// A page of neighbours.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbors {
    pub items: Vec<Neighbor>,
    pub next_cursor: Option<String>,
}

/// Which paths to find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathQuery {
    pub from: String,
    pub to: String,
    /// The most relations a path has (1 to [`crate::MAX_PATH_DEPTH`]).
    pub max_depth: usize,
    pub follow: Follow,
    /// The most paths returned (1 to [`crate::MAX_PATHS`]).
    pub limit: usize,
}

/// One path: `relations[i]` joins `nodes[i]` and `nodes[i + 1]` (in its own direction, which
/// may point backwards when the query follows both).
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    pub nodes: Vec<Node>,
    pub relations: Vec<Relation>,
}

/// The paths found, shortest first; `truncated` when the search stopped at its limits
/// before it had looked at every path.
#[derive(Debug, Clone, PartialEq)]
pub struct Paths {
    pub paths: Vec<Path>,
    pub truncated: bool,
}

/// Which subgraph to take around a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubgraphQuery {
    pub node: String,
    /// Relations away from the node (0 to [`crate::MAX_SUBGRAPH_DEPTH`]).
    pub depth: usize,
    pub follow: Follow,
    /// The most nodes returned (1 to [`crate::MAX_SUBGRAPH_NODES`]).
    pub max_nodes: usize,
}

/// Nodes around a node (it first, then by distance) and every relation among them of the
/// followed types; `truncated` when `max_nodes` cut the walk short.
#[derive(Debug, Clone, PartialEq)]
pub struct Subgraph {
    pub nodes: Vec<Node>,
    pub relations: Vec<Relation>,
    pub truncated: bool,
}

/// How a search grows its hits along relations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expand {
    pub follow: Follow,
    /// Relations away from a hit (1 to [`crate::MAX_EXPAND_DEPTH`]).
    pub depth: usize,
    /// The most nodes added over all hits.
    pub limit: usize,
}

/// A search over a graph's nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct GraphSearch {
    pub query: String,
    pub mode: SearchMode,
    pub top_k: usize,
    /// Over the nodes' properties and `type`.
    pub filter: Option<Filter>,
    pub expand: Option<Expand>,
}

/// A node the search found, with its score.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeHit {
    pub node: Node,
    pub score: f32,
}

/// A node reached from a hit: `via` is the relation that reached it from `from` (a hit, or
/// a node reached before it), `depth` relations from the nearest hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Reached {
    pub node: Node,
    pub from: String,
    pub via: Relation,
    pub depth: usize,
}

/// The hits of a graph search, best first, and the nodes their expansion reached (nearest
/// first, none of them a hit).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GraphSearchResults {
    pub hits: Vec<NodeHit>,
    pub reached: Vec<Reached>,
    pub embedding_tokens: u64,
    pub embedding_model: Option<String>,
}
