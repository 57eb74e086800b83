//! Hearth's knowledge graphs: typed nodes and typed, directed relations per tenant, searched
//! like documents and traversed along their relations. Nothing of HTTP here.
//!
//! A graph is two things kept in step. Its nodes and relations are rows in the store
//! (`hearth-store`'s graphs module), indexed from both ends of every relation, which the
//! traversals read a frontier at a time; and its nodes' text (title and content) is the
//! documents of a memory collection named by the graph's id, which embeds and searches them
//! (vector, keyword or hybrid, with the memory filter language over the nodes' properties and
//! `type`). The rows are the truth: a node is written to the collection first and then to the
//! store, so a node the store has is always searchable, and a search hit whose node the store
//! no longer has (a crash between the two deletes) is dropped.
//!
//! - [`Graphs`]: the service (graphs, nodes, relations, neighbours, paths, subgraphs, search
//!   that expands its hits along relations).

mod traverse;
mod types;
mod validate;

use std::collections::HashMap;
use std::sync::Arc;

use hearth_memory::{
    DocumentSelector, Memory, MemoryError, NewCollection, NewDocument, Page, PageRequest,
    SearchRequest,
};
use hearth_store::{GraphNodeRow, GraphRelationRow, GraphRow, RelationsWrite, Store};
use serde_json::{Map, Value};

pub use types::{
    Deleted, Direction, Expand, Follow, Graph, GraphSearch, GraphSearchResults, GraphWithCounts,
    Neighbor, NeighborQuery, Neighbors, NewGraph, NewNode, NewRelation, Node, NodeHit,
    NodesUpserted, Path, PathQuery, Paths, Reached, Relation, Subgraph, SubgraphQuery,
};

/// The most nodes or relations one upsert or delete takes.
pub const MAX_BATCH: usize = 1000;
/// The most items one page of graphs, nodes or neighbours holds.
pub const MAX_PAGE: usize = 1000;
/// The most relations a path query may follow.
pub const MAX_PATH_DEPTH: usize = 6;
/// The most paths one query returns.
pub const MAX_PATHS: usize = 100;
/// How far a subgraph reaches from its node.
pub const MAX_SUBGRAPH_DEPTH: usize = 3;
/// The most nodes one subgraph holds.
pub const MAX_SUBGRAPH_NODES: usize = 1000;
/// How far a search expands from its hits.
pub const MAX_EXPAND_DEPTH: usize = 2;
/// The most nodes a search's expansion adds.
pub const MAX_EXPAND_NODES: usize = 100;

/// The graphs service. Cheap to clone.
#[derive(Clone)]
pub struct Graphs {
    store: Store,
    memory: Arc<Memory>,
}

impl std::fmt::Debug for Graphs {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Graphs").finish_non_exhaustive()
    }
}

pub(crate) fn not_found(what: impl Into<String>) -> MemoryError {
    MemoryError::NotFound { what: what.into() }
}

pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> MemoryError {
    MemoryError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as i64)
        .unwrap_or(0)
}

fn object(text: &str) -> Result<Map<String, Value>, MemoryError> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(MemoryError::StoredData(format!(
            "graph properties are not a JSON object: {text}"
        ))),
    }
}

pub(crate) fn node_of(row: GraphNodeRow) -> Result<Node, MemoryError> {
    Ok(Node {
        properties: object(&row.properties)?,
        id: row.id,
        node_type: row.node_type,
        title: row.title,
        content: row.content,
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
    })
}

pub(crate) fn relation_of(row: GraphRelationRow) -> Result<Relation, MemoryError> {
    Ok(Relation {
        properties: object(&row.properties)?,
        id: row.id,
        source: row.source,
        relation_type: row.relation_type,
        target: row.target,
        created_at_ms: row.created_at_ms,
        updated_at_ms: row.updated_at_ms,
    })
}

fn graph_of(row: GraphRow) -> Result<Graph, MemoryError> {
    Ok(Graph {
        metadata: object(&row.metadata)?,
        id: row.id,
        name: row.name,
        collection: row.collection,
        created_at_ms: row.created_at_ms,
    })
}

/// The text a node is searched by: its title, then its content.
fn searchable_text(title: &str, content: &str) -> String {
    match (title.is_empty(), content.is_empty()) {
        (false, false) => format!("{title}\n\n{content}"),
        (false, true) => title.to_string(),
        _ => content.to_string(),
    }
}

/// Errors of the collection upsert name the request's nodes, not the documents they became.
fn as_node_error(error: MemoryError) -> MemoryError {
    let rename = |field: String| {
        field
            .replacen("documents", "nodes", 1)
            .replace(".text", ".content")
    };
    match error {
        MemoryError::Invalid { field, reason } => MemoryError::Invalid {
            field: rename(field),
            reason,
        },
        MemoryError::TooLarge { field, reason } => MemoryError::TooLarge {
            field: rename(field),
            reason,
        },
        MemoryError::Embedding { field, failure } => MemoryError::Embedding {
            field: rename(field),
            failure,
        },
        other => other,
    }
}

impl Graphs {
    pub fn new(store: Store, memory: Arc<Memory>) -> Graphs {
        Graphs { store, memory }
    }

    pub(crate) fn store(&self) -> &Store {
        &self.store
    }

    async fn row(&self, tenant_id: &str, name: &str) -> Result<GraphRow, MemoryError> {
        self.store
            .graph(tenant_id, name)
            .await?
            .ok_or_else(|| not_found(format!("graph `{name}`")))
    }

    // ----- Graphs. -----

    /// Creates a graph and the collection its nodes are searched in; a name the tenant
    /// already uses is a conflict.
    pub async fn create_graph(&self, tenant_id: &str, new: NewGraph) -> Result<Graph, MemoryError> {
        validate::name("name", &new.name)?;
        let metadata = match new.metadata {
            Value::Null => Map::new(),
            Value::Object(map) => map,
            _ => return Err(invalid("metadata", "must be a JSON object")),
        };
        if self.store.graph(tenant_id, &new.name).await?.is_some() {
            return Err(MemoryError::Conflict(format!(
                "a graph named `{}` already exists",
                new.name
            )));
        }
        let id = format!("graph_{}", uuid::Uuid::now_v7().simple());
        let mut collection = NewCollection::embedded(id.clone(), new.embedding_model);
        collection.dimensions = new.dimensions;
        collection.metadata = serde_json::json!({"graph": new.name});
        self.memory.create_collection(tenant_id, collection).await?;
        let row = GraphRow {
            key: 0,
            id: id.clone(),
            tenant_id: tenant_id.to_string(),
            name: new.name.clone(),
            collection: id.clone(),
            metadata: Value::Object(metadata).to_string(),
            created_at_ms: now_ms(),
        };
        if !self.store.insert_graph(&row).await? {
            // Another request made the same name in between: its graph stands, ours goes.
            let _ = self.memory.delete_collection(tenant_id, &id).await;
            return Err(MemoryError::Conflict(format!(
                "a graph named `{}` already exists",
                new.name
            )));
        }
        graph_of(self.row(tenant_id, &new.name).await?)
    }

    /// A tenant's graph, with how many nodes and relations it holds.
    pub async fn graph(&self, tenant_id: &str, name: &str) -> Result<GraphWithCounts, MemoryError> {
        let row = self.row(tenant_id, name).await?;
        let (nodes, relations) = self.store.graph_counts(row.key).await?;
        Ok(GraphWithCounts {
            graph: graph_of(row)?,
            nodes: nodes as u64,
            relations: relations as u64,
        })
    }

    /// A tenant's graphs by name, a page at a time.
    pub async fn list_graphs(
        &self,
        tenant_id: &str,
        page: &PageRequest,
    ) -> Result<Page<Graph>, MemoryError> {
        validate::within("limit", page.limit, 1..=MAX_PAGE)?;
        let mut rows = self
            .store
            .graphs(tenant_id, page.after.as_deref(), page.limit as i64 + 1)
            .await?;
        let next_cursor = if rows.len() > page.limit {
            rows.truncate(page.limit);
            rows.last().map(|row| row.name.clone())
        } else {
            None
        };
        Ok(Page {
            items: rows.into_iter().map(graph_of).collect::<Result<_, _>>()?,
            next_cursor,
        })
    }

    /// The graph whose nodes `collection` holds, if any: such a collection is changed through
    /// its graph only.
    pub async fn graph_of_collection(
        &self,
        tenant_id: &str,
        collection: &str,
    ) -> Result<Option<String>, MemoryError> {
        Ok(self
            .store
            .graph_of_collection(tenant_id, collection)
            .await?)
    }

    /// Deletes a graph, its nodes, its relations and its collection.
    pub async fn delete_graph(&self, tenant_id: &str, name: &str) -> Result<(), MemoryError> {
        let row = self.row(tenant_id, name).await?;
        if !self.store.delete_graph(row.key).await? {
            return Err(not_found(format!("graph `{name}`")));
        }
        match self
            .memory
            .delete_collection(tenant_id, &row.collection)
            .await
        {
            Ok(()) | Err(MemoryError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    // ----- Nodes. -----

    /// Inserts or replaces nodes by id, all or none. Their text is embedded and indexed before the
    /// rows are written, so a stored node is always searchable. Errors name the field, e.g.
    /// `nodes[3].properties`.
    pub async fn upsert_nodes(
        &self,
        tenant_id: &str,
        graph: &str,
        nodes: Vec<NewNode>,
    ) -> Result<NodesUpserted, MemoryError> {
        validate::batch("nodes", nodes.len())?;
        let mut rows = Vec::with_capacity(nodes.len());
        let mut documents = Vec::with_capacity(nodes.len());
        let mut seen = HashMap::with_capacity(nodes.len());
        for (index, node) in nodes.into_iter().enumerate() {
            let field = |name: &str| format!("nodes[{index}].{name}");
            validate::id(&field("id"), &node.id)?;
            if let Some(first) = seen.insert(node.id.clone(), index) {
                return Err(invalid(
                    field("id"),
                    format!("repeats nodes[{first}].id; send each node once"),
                ));
            }
            validate::kind(&field("type"), &node.node_type)?;
            validate::title(&field("title"), &node.title)?;
            if node.title.is_empty() && node.content.trim().is_empty() {
                return Err(invalid(
                    field("title"),
                    "a node needs a title or content to be searched by",
                ));
            }
            let properties = validate::properties(&field("properties"), node.properties, true)?;
            let mut metadata = properties.clone();
            metadata.insert("type".to_string(), Value::String(node.node_type.clone()));
            documents.push(NewDocument {
                id: Some(node.id.clone()),
                text: searchable_text(&node.title, &node.content),
                metadata: Value::Object(metadata),
                embedding: node.embedding,
            });
            rows.push(hearth_store::NewGraphNode {
                id: node.id,
                node_type: node.node_type,
                title: node.title,
                content: node.content,
                properties: Value::Object(properties).to_string(),
            });
        }
        let row = self.row(tenant_id, graph).await?;
        let upserted = self
            .memory
            .upsert_documents(tenant_id, &row.collection, documents)
            .await
            .map_err(as_node_error)?;
        let stored = self
            .store
            .upsert_graph_nodes(row.key, &rows, now_ms())
            .await?;
        Ok(NodesUpserted {
            nodes: stored.into_iter().map(node_of).collect::<Result<_, _>>()?,
            embedding_tokens: upserted.embedding_tokens,
            embedding_model: upserted.embedding_model,
        })
    }

    /// The nodes with these ids that the graph has, in the order asked.
    pub async fn nodes(
        &self,
        tenant_id: &str,
        graph: &str,
        ids: &[String],
    ) -> Result<Vec<Node>, MemoryError> {
        validate::batch("ids", ids.len())?;
        let row = self.row(tenant_id, graph).await?;
        let mut found: HashMap<String, GraphNodeRow> = self
            .store
            .graph_nodes_by_id(row.key, ids)
            .await?
            .into_iter()
            .map(|node| (node.id.clone(), node))
            .collect();
        ids.iter()
            .filter_map(|id| found.remove(id))
            .map(node_of)
            .collect()
    }

    /// One node; a missing one is not found.
    pub async fn node(&self, tenant_id: &str, graph: &str, id: &str) -> Result<Node, MemoryError> {
        self.nodes(tenant_id, graph, &[id.to_string()])
            .await?
            .pop()
            .ok_or_else(|| not_found(format!("node `{id}` in graph `{graph}`")))
    }

    /// A graph's nodes in id order, of one type when given, a page at a time.
    pub async fn list_nodes(
        &self,
        tenant_id: &str,
        graph: &str,
        node_type: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<Node>, MemoryError> {
        validate::within("limit", page.limit, 1..=MAX_PAGE)?;
        let row = self.row(tenant_id, graph).await?;
        let mut rows = self
            .store
            .graph_nodes(
                row.key,
                node_type,
                page.after.as_deref(),
                page.limit as i64 + 1,
            )
            .await?;
        let next_cursor = if rows.len() > page.limit {
            rows.truncate(page.limit);
            rows.last().map(|node| node.id.clone())
        } else {
            None
        };
        Ok(Page {
            items: rows.into_iter().map(node_of).collect::<Result<_, _>>()?,
            next_cursor,
        })
    }

    /// Deletes nodes by id, with every relation that starts or ends at one of them.
    pub async fn delete_nodes(
        &self,
        tenant_id: &str,
        graph: &str,
        ids: &[String],
    ) -> Result<Deleted, MemoryError> {
        validate::batch("ids", ids.len())?;
        let row = self.row(tenant_id, graph).await?;
        let deleted = self.store.delete_graph_nodes(row.key, ids).await?;
        // The rows went first: were this to fail, the leftover documents find no node and
        // searches drop them; deleting the same ids again removes them.
        match self
            .memory
            .delete_documents(
                tenant_id,
                &row.collection,
                &DocumentSelector::Ids(ids.to_vec()),
            )
            .await
        {
            Ok(_) | Err(MemoryError::NotFound { .. }) => {}
            Err(error) => return Err(error),
        }
        Ok(Deleted {
            nodes: deleted.nodes,
            relations: deleted.relations,
        })
    }

    // ----- Relations. -----

    /// Inserts relations, or replaces the properties of those whose (source, type, target)
    /// exists, all or none. Both ends must be nodes of the graph.
    pub async fn upsert_relations(
        &self,
        tenant_id: &str,
        graph: &str,
        relations: Vec<NewRelation>,
    ) -> Result<Vec<Relation>, MemoryError> {
        validate::batch("relations", relations.len())?;
        let mut rows = Vec::with_capacity(relations.len());
        let mut given_ids = HashMap::new();
        for (index, relation) in relations.into_iter().enumerate() {
            let field = |name: &str| format!("relations[{index}].{name}");
            let id = match relation.id {
                Some(id) => {
                    validate::id(&field("id"), &id)?;
                    if let Some(first) = given_ids.insert(id.clone(), index) {
                        return Err(invalid(
                            field("id"),
                            format!("repeats relations[{first}].id; give each relation its own"),
                        ));
                    }
                    id
                }
                None => format!("rel_{}", uuid::Uuid::now_v7().simple()),
            };
            validate::id(&field("source"), &relation.source)?;
            validate::id(&field("target"), &relation.target)?;
            validate::kind(&field("type"), &relation.relation_type)?;
            let properties =
                validate::properties(&field("properties"), relation.properties, false)?;
            rows.push(hearth_store::NewGraphRelation {
                id,
                source: relation.source,
                relation_type: relation.relation_type,
                target: relation.target,
                properties: Value::Object(properties).to_string(),
            });
        }
        let row = self.row(tenant_id, graph).await?;
        match self
            .store
            .upsert_graph_relations(row.key, &rows, now_ms())
            .await?
        {
            RelationsWrite::Written(stored) => stored.into_iter().map(relation_of).collect(),
            RelationsWrite::IdTaken { index } => Err(invalid(
                format!("relations[{index}].id"),
                format!(
                    "graph `{graph}` has a relation `{}` with other ends or type; leave the id \
                     out or choose another",
                    rows[index].id
                ),
            )),
            RelationsWrite::MissingNode { index, source } => {
                let (end, id) = if source {
                    ("source", &rows[index].source)
                } else {
                    ("target", &rows[index].target)
                };
                Err(invalid(
                    format!("relations[{index}].{end}"),
                    format!("graph `{graph}` has no node `{id}`; upsert the node first"),
                ))
            }
        }
    }

    /// One relation by id.
    pub async fn relation(
        &self,
        tenant_id: &str,
        graph: &str,
        id: &str,
    ) -> Result<Relation, MemoryError> {
        let row = self.row(tenant_id, graph).await?;
        let found = self
            .store
            .graph_relations_by_id(row.key, &[id.to_string()])
            .await?
            .pop()
            .ok_or_else(|| not_found(format!("relation `{id}` in graph `{graph}`")))?;
        relation_of(found)
    }

    /// Deletes relations by id; returns how many there were.
    pub async fn delete_relations(
        &self,
        tenant_id: &str,
        graph: &str,
        ids: &[String],
    ) -> Result<u64, MemoryError> {
        validate::batch("ids", ids.len())?;
        let row = self.row(tenant_id, graph).await?;
        Ok(self.store.delete_graph_relations(row.key, ids).await?)
    }

    // ----- Queries. -----

    /// The relations of a node in the asked direction and types, each with the node at its
    /// other end, in the order they were made, a page at a time.
    pub async fn neighbors(
        &self,
        tenant_id: &str,
        graph: &str,
        query: &NeighborQuery,
    ) -> Result<Neighbors, MemoryError> {
        validate::within("limit", query.limit, 1..=MAX_PAGE)?;
        validate::follow(&query.follow)?;
        let after = query
            .after
            .as_deref()
            .map(|cursor| {
                cursor
                    .parse::<i64>()
                    .map_err(|_| invalid("after", "not a cursor this list gave"))
            })
            .transpose()?;
        let row = self.row(tenant_id, graph).await?;
        let node = self.node_key(&row, &query.node, "node").await?;
        let mut rows = self
            .store
            .graph_neighbors(
                node,
                query.follow.direction,
                query.follow.types.as_deref(),
                after,
                query.limit as i64 + 1,
            )
            .await?;
        let next_cursor = if rows.len() > query.limit {
            rows.truncate(query.limit);
            rows.last().map(|row| row.relation.key.to_string())
        } else {
            None
        };
        let items = rows
            .into_iter()
            .map(|row| {
                Ok(Neighbor {
                    relation: relation_of(row.relation)?,
                    node: node_of(row.node)?,
                })
            })
            .collect::<Result<_, MemoryError>>()?;
        Ok(Neighbors { items, next_cursor })
    }

    /// The store key of node `id`; a missing node is not found, naming `field`.
    pub(crate) async fn node_key(
        &self,
        graph: &GraphRow,
        id: &str,
        field: &str,
    ) -> Result<i64, MemoryError> {
        self.store
            .graph_node_key(graph.key, id)
            .await?
            .ok_or_else(|| not_found(format!("node `{id}` (`{field}`) in graph `{}`", graph.name)))
    }

    /// Simple paths (no node twice) from one node to another of at most `max_depth`
    /// relations, shortest first.
    pub async fn paths(
        &self,
        tenant_id: &str,
        graph: &str,
        query: &PathQuery,
    ) -> Result<Paths, MemoryError> {
        validate::within("max_depth", query.max_depth, 1..=MAX_PATH_DEPTH)?;
        validate::within("limit", query.limit, 1..=MAX_PATHS)?;
        validate::follow(&query.follow)?;
        let row = self.row(tenant_id, graph).await?;
        let from = self.node_key(&row, &query.from, "from").await?;
        let to = self.node_key(&row, &query.to, "to").await?;
        traverse::paths(self, from, to, query).await
    }

    /// The nodes within `depth` relations of a node and the relations among them.
    pub async fn subgraph(
        &self,
        tenant_id: &str,
        graph: &str,
        query: &SubgraphQuery,
    ) -> Result<Subgraph, MemoryError> {
        validate::within("depth", query.depth, 0..=MAX_SUBGRAPH_DEPTH)?;
        validate::within("max_nodes", query.max_nodes, 1..=MAX_SUBGRAPH_NODES)?;
        validate::follow(&query.follow)?;
        let row = self.row(tenant_id, graph).await?;
        let start = self.node_key(&row, &query.node, "node").await?;
        traverse::subgraph(self, start, query).await
    }

    /// The nodes that best match a query (vector, keyword or hybrid over their title and
    /// content; the filter over their properties and `type`), one hit per node, then, when
    /// asked, the nodes those hits reach along the chosen relations.
    pub async fn search(
        &self,
        tenant_id: &str,
        graph: &str,
        search: &GraphSearch,
    ) -> Result<GraphSearchResults, MemoryError> {
        if let Some(expand) = &search.expand {
            validate::within("expand.depth", expand.depth, 1..=MAX_EXPAND_DEPTH)?;
            validate::within("expand.limit", expand.limit, 1..=MAX_EXPAND_NODES)?;
            validate::follow(&expand.follow)?;
        }
        validate::within("top_k", search.top_k, 1..=hearth_memory::MAX_TOP_K)?;
        let row = self.row(tenant_id, graph).await?;
        let request = SearchRequest {
            text: Some(search.query.clone()),
            vector: None,
            mode: search.mode,
            // A long node is several chunks: ask for more so that `top_k` nodes remain.
            top_k: (search.top_k * 2).clamp(1, hearth_memory::MAX_TOP_K),
            filter: search.filter.clone(),
            ef: None,
            include_embedding: false,
        };
        let found = self
            .memory
            .search(tenant_id, &row.collection, &request)
            .await?;
        let mut order: Vec<(String, f32)> = Vec::with_capacity(found.hits.len());
        for hit in found.hits {
            if !order.iter().any(|(id, _)| *id == hit.document.id) {
                order.push((hit.document.id, hit.score));
            }
        }
        order.truncate(search.top_k);
        let ids: Vec<String> = order.iter().map(|(id, _)| id.clone()).collect();
        let mut rows: HashMap<String, GraphNodeRow> = self
            .store
            .graph_nodes_by_id(row.key, &ids)
            .await?
            .into_iter()
            .map(|node| (node.id.clone(), node))
            .collect();
        let mut hit_keys = Vec::with_capacity(order.len());
        let mut hits = Vec::with_capacity(order.len());
        for (id, score) in order {
            // A document whose node is gone (see the crate's notes) is no hit.
            if let Some(node) = rows.remove(&id) {
                hit_keys.push(node.key);
                hits.push(NodeHit {
                    node: node_of(node)?,
                    score,
                });
            }
        }
        let reached = match &search.expand {
            Some(expand) => traverse::expand(self, &hit_keys, &hits, expand).await?,
            None => Vec::new(),
        };
        Ok(GraphSearchResults {
            hits,
            reached,
            embedding_tokens: found.embedding_tokens,
            embedding_model: found.embedding_model,
        })
    }
}
