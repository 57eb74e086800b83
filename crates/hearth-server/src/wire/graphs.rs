//! The JSON shapes of knowledge graphs under `/v1/graphs`, and their conversion into
//! `hearth-graph`'s domain types. Lists are `{"object": "list", "data": [...]}` with a cursor,
//! as the memory API's.

use hearth_graph::{
    Direction, Follow, Graph, GraphWithCounts, Neighbor, Node, NodeHit, Path, Reached, Relation,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::memory::{EmbeddingUsageOut, HybridIo, SearchMode};

/// Which way relations are followed from a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema, Default)]
#[serde(rename_all = "lowercase")]
pub enum DirectionIo {
    /// Relations the node is the source of (the default).
    #[default]
    Out,
    /// Relations the node is the target of.
    In,
    /// Either.
    Both,
}

impl From<DirectionIo> for Direction {
    fn from(direction: DirectionIo) -> Direction {
        match direction {
            DirectionIo::Out => Direction::Out,
            DirectionIo::In => Direction::In,
            DirectionIo::Both => Direction::Both,
        }
    }
}

/// `types` as a comma-separated query parameter: `None` (all types) when absent or empty.
pub fn types_of_query(types: Option<&str>) -> Option<Vec<String>> {
    let types: Vec<String> = types?
        .split(',')
        .map(str::trim)
        .filter(|kind| !kind.is_empty())
        .map(str::to_string)
        .collect();
    (!types.is_empty()).then_some(types)
}

/// A count the request gave, or `default`, as the domain takes it (saturating: the domain
/// refuses what is out of its range, naming the field).
pub fn size(value: Option<u64>, default: u64) -> usize {
    usize::try_from(value.unwrap_or(default)).unwrap_or(usize::MAX)
}

impl ExpandIn {
    /// The domain's expansion, with the defaults: depth 1, at most `default_limit` nodes.
    pub fn to_expand(&self, default_limit: u64) -> hearth_graph::Expand {
        hearth_graph::Expand {
            follow: follow(self.direction, self.types.clone()),
            depth: size(self.depth, 1),
            limit: size(self.limit, default_limit),
        }
    }
}

pub fn follow(direction: Option<DirectionIo>, types: Option<Vec<String>>) -> Follow {
    Follow {
        direction: direction.unwrap_or_default().into(),
        types,
    }
}

/// `POST /v1/graphs`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphIn {
    /// 1–128 ASCII letters, digits, `_`, `-` or `.`; unique in the tenant.
    pub name: String,
    /// The model that embeds node text (default: the server's embedding model).
    pub embedding_model: Option<String>,
    /// For nodes that carry their own `embedding`: its dimensions (no model then).
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub dimensions: Option<u64>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GraphOut {
    /// Always `graph`.
    pub object: &'static str,
    pub id: String,
    pub name: String,
    /// The collection (`/v1/collections/{collection}`) that embeds and searches the nodes.
    pub collection: String,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// Unix seconds.
    pub created_at: i64,
    /// Given when one graph is asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relation_count: Option<u64>,
}

impl From<Graph> for GraphOut {
    fn from(graph: Graph) -> GraphOut {
        GraphOut {
            object: "graph",
            id: graph.id,
            name: graph.name,
            collection: graph.collection,
            metadata: graph.metadata,
            created_at: graph.created_at_ms.div_euclid(1000),
            node_count: None,
            relation_count: None,
        }
    }
}

impl From<GraphWithCounts> for GraphOut {
    fn from(counted: GraphWithCounts) -> GraphOut {
        GraphOut {
            node_count: Some(counted.nodes),
            relation_count: Some(counted.relations),
            ..GraphOut::from(counted.graph)
        }
    }
}

/// One node to upsert.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeIn {
    /// 1–256 bytes; a stored node with this id is replaced (its relations stay).
    pub id: String,
    /// 1–64 ASCII letters, digits, `_`, `-`, `.` or `:`, e.g. `person`.
    #[serde(rename = "type")]
    pub node_type: String,
    /// One line, up to 1024 bytes.
    #[serde(default)]
    pub title: String,
    /// Searched with the title (long content is chunked like a document's text).
    #[serde(default)]
    pub content: String,
    /// A JSON object; filters read it, and the node's `type`.
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Value>,
    /// The node's vector, for a graph made with `dimensions`.
    pub embedding: Option<Vec<f32>>,
}

/// `POST /v1/graphs/{graph}/nodes`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodesIn {
    /// 1–1000 nodes, written all or none.
    pub nodes: Vec<NodeIn>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeOut {
    /// Always `graph.node`.
    pub object: &'static str,
    pub id: String,
    #[serde(rename = "type")]
    pub node_type: String,
    pub title: String,
    pub content: String,
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Node> for NodeOut {
    fn from(node: Node) -> NodeOut {
        NodeOut {
            object: "graph.node",
            id: node.id,
            node_type: node.node_type,
            title: node.title,
            content: node.content,
            properties: node.properties,
            created_at: node.created_at_ms.div_euclid(1000),
            updated_at: node.updated_at_ms.div_euclid(1000),
        }
    }
}

/// The nodes an upsert stored, in request order.
#[derive(Debug, Serialize, ToSchema)]
pub struct NodesOut {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<NodeOut>,
    pub usage: EmbeddingUsageOut,
}

/// One relation to upsert: one per (source, type, target); the same triple again replaces
/// its properties and keeps its id.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelationIn {
    /// Omitted: a new relation gets a made id.
    pub id: Option<String>,
    /// The id of the node it starts at.
    pub source: String,
    /// 1–64 ASCII letters, digits, `_`, `-`, `.` or `:`, e.g. `works_at`.
    #[serde(rename = "type")]
    pub relation_type: String,
    /// The id of the node it points to.
    pub target: String,
    #[schema(value_type = Option<Object>)]
    pub properties: Option<Value>,
}

/// `POST /v1/graphs/{graph}/relations`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelationsIn {
    /// 1–1000 relations, written all or none; both ends must be nodes of the graph.
    pub relations: Vec<RelationIn>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RelationOut {
    /// Always `graph.relation`.
    pub object: &'static str,
    pub id: String,
    pub source: String,
    #[serde(rename = "type")]
    pub relation_type: String,
    pub target: String,
    #[schema(value_type = Object)]
    pub properties: Map<String, Value>,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<Relation> for RelationOut {
    fn from(relation: Relation) -> RelationOut {
        RelationOut {
            object: "graph.relation",
            id: relation.id,
            source: relation.source,
            relation_type: relation.relation_type,
            target: relation.target,
            properties: relation.properties,
            created_at: relation.created_at_ms.div_euclid(1000),
            updated_at: relation.updated_at_ms.div_euclid(1000),
        }
    }
}

/// A list of relations, as an upsert stored them.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelationsOut {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<RelationOut>,
}

/// `?type=&after=&limit=` of a node list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeListQuery {
    /// Only nodes of this type.
    #[serde(rename = "type")]
    pub node_type: Option<String>,
    pub after: Option<String>,
    /// 1–1000; default 100.
    pub limit: Option<usize>,
}

/// `POST /v1/graphs/{graph}/nodes/delete` and `.../relations/delete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IdsIn {
    /// 1–1000 ids; those the graph does not have are skipped.
    pub ids: Vec<String>,
}

/// What a delete removed.
#[derive(Debug, Serialize, ToSchema)]
pub struct GraphDeletedOut {
    /// `graph.node.deleted`, `graph.relation.deleted` or `graph.deleted`.
    pub object: &'static str,
    pub deleted: u64,
    /// Relations that went with deleted nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relations_deleted: Option<u64>,
}

/// `?direction=&types=&after=&limit=` of a neighbour list.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NeighborQueryIn {
    pub direction: Option<DirectionIo>,
    /// Relation types, comma-separated (default: all).
    pub types: Option<String>,
    pub after: Option<String>,
    /// 1–1000; default 100.
    pub limit: Option<usize>,
}

/// A relation of the node and the node at its other end.
#[derive(Debug, Serialize, ToSchema)]
pub struct NeighborOut {
    pub relation: RelationOut,
    pub node: NodeOut,
}

impl From<Neighbor> for NeighborOut {
    fn from(neighbor: Neighbor) -> NeighborOut {
        NeighborOut {
            relation: neighbor.relation.into(),
            node: neighbor.node.into(),
        }
    }
}

/// `?depth=&direction=&types=&max_nodes=` of a subgraph.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubgraphQueryIn {
    /// 0–3 relations away; default 1.
    pub depth: Option<usize>,
    pub direction: Option<DirectionIo>,
    /// Relation types, comma-separated (default: all).
    pub types: Option<String>,
    /// 1–1000; default 100.
    pub max_nodes: Option<usize>,
}

/// Nodes and the relations among them.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubgraphOut {
    /// Always `graph.subgraph`.
    pub object: &'static str,
    /// The asked-for node first, then by distance.
    pub nodes: Vec<NodeOut>,
    pub relations: Vec<RelationOut>,
    /// `max_nodes` cut the walk short.
    pub truncated: bool,
}

/// `POST /v1/graphs/{graph}/paths`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PathsIn {
    pub from: String,
    pub to: String,
    /// 1–6 relations; default 3.
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub max_depth: Option<u64>,
    pub direction: Option<DirectionIo>,
    /// Relation types to follow (default: all).
    pub types: Option<Vec<String>>,
    /// 1–100 paths; default 10.
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub limit: Option<u64>,
}

/// One path: `relations[i]` joins `nodes[i]` and `nodes[i + 1]`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PathOut {
    pub nodes: Vec<NodeOut>,
    pub relations: Vec<RelationOut>,
}

impl From<Path> for PathOut {
    fn from(path: Path) -> PathOut {
        PathOut {
            nodes: path.nodes.into_iter().map(NodeOut::from).collect(),
            relations: path.relations.into_iter().map(RelationOut::from).collect(),
        }
    }
}

/// Paths, shortest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PathsOut {
    /// Always `list`.
    pub object: &'static str,
    pub data: Vec<PathOut>,
    /// The search stopped at `limit` (or its own bounds) before it saw every path.
    pub truncated: bool,
}

/// How a search grows its hits along relations.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpandIn {
    /// Relation types to follow (default: all).
    pub types: Option<Vec<String>>,
    pub direction: Option<DirectionIo>,
    /// 1–2 relations from a hit; default 1.
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub depth: Option<u64>,
    /// 1–100 nodes added; default 20.
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub limit: Option<u64>,
}

/// `POST /v1/graphs/{graph}/search`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphSearchIn {
    /// Matched against the nodes' titles and content.
    pub query: String,
    /// 1–1000; default 10.
    #[serde(default, deserialize_with = "super::integer::int64")]
    pub top_k: Option<u64>,
    /// An OpenAI metadata filter over the nodes' properties and `type`.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<Value>,
    /// Default `hybrid`.
    pub mode: Option<SearchMode>,
    pub hybrid: Option<HybridIo>,
    /// Also return the nodes the hits reach along relations.
    pub expand: Option<ExpandIn>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NodeHitOut {
    /// Higher is better (see the collection search).
    pub score: f32,
    pub node: NodeOut,
}

impl From<NodeHit> for NodeHitOut {
    fn from(hit: NodeHit) -> NodeHitOut {
        NodeHitOut {
            score: hit.score,
            node: hit.node.into(),
        }
    }
}

/// A node a hit's expansion reached.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReachedOut {
    pub node: NodeOut,
    /// The id of the node it was reached from (a hit, or a node reached before it).
    pub from: String,
    /// The relation that reached it.
    pub relation: RelationOut,
    /// Relations from the nearest hit.
    pub depth: usize,
}

impl From<Reached> for ReachedOut {
    fn from(reached: Reached) -> ReachedOut {
        ReachedOut {
            node: reached.node.into(),
            from: reached.from,
            relation: reached.via.into(),
            depth: reached.depth,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GraphSearchOut {
    /// Always `list`.
    pub object: &'static str,
    /// The nodes that matched, best first.
    pub data: Vec<NodeHitOut>,
    /// With `expand`: the nodes the hits reach, nearest first (none of them a hit).
    pub reached: Vec<ReachedOut>,
    pub usage: EmbeddingUsageOut,
}
