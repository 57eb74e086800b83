//! Knowledge graphs under `/v1/graphs`: graphs, nodes, relations and the queries along them.
//! Each handler parses, calls one `hearth-graph` function in the caller's tenant scope, and
//! maps the result; another tenant's graph is a 404 like a missing one. Readers read, query
//! and search; members write nodes and relations; admins create and delete graphs (the gate's
//! route table).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use hearth_graph::{
    GraphSearch, Graphs, NeighborQuery, NewGraph, NewNode, NewRelation, PathQuery, SubgraphQuery,
};
use hearth_memory::PageRequest;
use serde_json::{Map, Value};

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery};
use crate::gate::{Meter, TenantScope};
use crate::routes::memory::count_embedding;
use crate::state::AppState;
use crate::wire::graphs::*;
use crate::wire::memory::{Deleted, EmbeddingUsageOut, PageQuery, Paged, SearchMode};

const DEFAULT_PAGE: usize = 100;
const DEFAULT_PATH_DEPTH: u64 = 3;
const DEFAULT_PATHS: u64 = 10;
const DEFAULT_TOP_K: u64 = 10;
const DEFAULT_EXPAND_NODES: u64 = 20;

fn graphs(state: &AppState) -> Result<Graphs, ApiError> {
    state
        .graphs
        .clone()
        .ok_or_else(|| ApiError::unavailable("graphs are not configured on this server"))
}

/// The graphs of the caller's tenant, by name.
#[utoipa::path(get, path = "/v1/graphs", tag = "memory",
    params(("after" = Option<String>, Query, description = "The previous page's next_cursor"),
           ("limit" = Option<usize>, Query, description = "1–1000, default 100")),
    responses(
        (status = 200, description = "A page of graphs", body = Paged<GraphOut>),
        (status = 400, description = "A bad limit", body = ErrorBody)))]
pub async fn list_graphs(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<Paged<GraphOut>>, ApiError> {
    let page = PageRequest {
        after: query.after,
        limit: query.limit.unwrap_or(DEFAULT_PAGE),
    };
    let page = graphs(&state)?.list_graphs(&tenant, &page).await?;
    Ok(Json(Paged::of(page, GraphOut::from)))
}

/// Creates a graph: its nodes are embedded by `embedding_model` (default: the server's), or
/// carry their own vectors of `dimensions`.
#[utoipa::path(post, path = "/v1/graphs", tag = "memory",
    request_body = GraphIn,
    responses(
        (status = 201, description = "The graph", body = GraphOut),
        (status = 400, description = "A bad field, named in param", body = ErrorBody),
        (status = 409, description = "The name is taken", body = ErrorBody)))]
pub async fn create_graph(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    ApiJson(request): ApiJson<GraphIn>,
) -> Result<(StatusCode, Json<GraphOut>), ApiError> {
    let new = NewGraph {
        name: request.name,
        embedding_model: request.embedding_model,
        dimensions: request
            .dimensions
            .map(|dimensions| size(Some(dimensions), 0)),
        metadata: request.metadata.unwrap_or(Value::Null),
    };
    let graph = graphs(&state)?.create_graph(&tenant, new).await?;
    Ok((StatusCode::CREATED, Json(graph.into())))
}

/// One graph, with how many nodes and relations it holds.
#[utoipa::path(get, path = "/v1/graphs/{graph}", tag = "memory",
    params(("graph" = String, Path, description = "The graph's name")),
    responses(
        (status = 200, description = "The graph", body = GraphOut),
        (status = 404, description = "No such graph in this tenant", body = ErrorBody)))]
pub async fn get_graph(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(graph): Path<String>,
) -> Result<Json<GraphOut>, ApiError> {
    Ok(Json(graphs(&state)?.graph(&tenant, &graph).await?.into()))
}

/// Deletes a graph with its nodes, relations and collection.
#[utoipa::path(delete, path = "/v1/graphs/{graph}", tag = "memory",
    params(("graph" = String, Path, description = "The graph's name")),
    responses(
        (status = 200, description = "Deleted", body = Deleted),
        (status = 404, description = "No such graph in this tenant", body = ErrorBody)))]
pub async fn delete_graph(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(graph): Path<String>,
) -> Result<Json<Deleted>, ApiError> {
    graphs(&state)?.delete_graph(&tenant, &graph).await?;
    Ok(Json(Deleted {
        id: graph,
        object: "graph.deleted",
        deleted: true,
    }))
}

/// Stores nodes, all or none, replacing those with the same ids (their relations stay).
/// Their title and content are embedded with the graph's model; its tokens count as usage.
#[utoipa::path(post, path = "/v1/graphs/{graph}/nodes", tag = "memory",
    params(("graph" = String, Path, description = "The graph's name")),
    request_body = NodesIn,
    responses(
        (status = 200, description = "The nodes as stored", body = NodesOut),
        (status = 400, description = "A bad node, named in param (`nodes[2].type`)", body = ErrorBody),
        (status = 404, description = "No such graph in this tenant", body = ErrorBody),
        (status = 413, description = "More than 1000 nodes", body = ErrorBody)))]
pub async fn upsert_nodes(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    meter: Meter,
    Path(graph): Path<String>,
    ApiJson(request): ApiJson<NodesIn>,
) -> Result<Json<NodesOut>, ApiError> {
    let nodes = request
        .nodes
        .into_iter()
        .map(|node| NewNode {
            id: node.id,
            node_type: node.node_type,
            title: node.title,
            content: node.content,
            properties: node.properties.unwrap_or_else(|| Value::Object(Map::new())),
            embedding: node.embedding,
        })
        .collect();
    let upserted = graphs(&state)?.upsert_nodes(&tenant, &graph, nodes).await?;
    metrics::counter!("hearth_graph_nodes_written_total").increment(upserted.nodes.len() as u64);
    count_embedding(
        &meter,
        upserted.embedding_model.as_deref(),
        upserted.embedding_tokens,
    );
    Ok(Json(NodesOut {
        object: "list",
        data: upserted.nodes.into_iter().map(NodeOut::from).collect(),
        usage: EmbeddingUsageOut::of(upserted.embedding_tokens),
    }))
}

/// A graph's nodes in id order, of one type when asked, a page at a time.
#[utoipa::path(get, path = "/v1/graphs/{graph}/nodes", tag = "memory",
    params(("graph" = String, Path, description = "The graph's name"),
           ("type" = Option<String>, Query, description = "Only nodes of this type"),
           ("after" = Option<String>, Query, description = "The previous page's next_cursor"),
           ("limit" = Option<usize>, Query, description = "1–1000, default 100")),
    responses(
        (status = 200, description = "A page of nodes", body = Paged<NodeOut>),
        (status = 404, description = "No such graph in this tenant", body = ErrorBody)))]
pub async fn list_nodes(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(graph): Path<String>,
    ApiQuery(query): ApiQuery<NodeListQuery>,
) -> Result<Json<Paged<NodeOut>>, ApiError> {
    let page = PageRequest {
        after: query.after,
        limit: query.limit.unwrap_or(DEFAULT_PAGE),
    };
    let page = graphs(&state)?
        .list_nodes(&tenant, &graph, query.node_type.as_deref(), &page)
        .await?;
    Ok(Json(Paged::of(page, NodeOut::from)))
}

/// One node.
#[utoipa::path(get, path = "/v1/graphs/{graph}/nodes/{id}", tag = "memory",
    params(("graph" = String, Path, description = "The graph's name"),
           ("id" = String, Path, description = "The node's id")),
    responses(
        (status = 200, description = "The node", body = NodeOut),
        (status = 404, description = "No such graph or node", body = ErrorBody)))]
pub async fn get_node(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((graph, id)): Path<(String, String)>,
) -> Result<Json<NodeOut>, ApiError> {
    Ok(Json(
        graphs(&state)?.node(&tenant, &graph, &id).await?.into(),
    ))
}

/// Deletes a node and every relation that starts or ends at it.
#[utoipa::path(delete, path = "/v1/graphs/{graph}/nodes/{id}", tag = "memory",
    params(("graph" = String, Path, description = "The graph's name"),
           ("id" = String, Path, description = "The node's id")),
    responses(
        (status = 200, description = "What was deleted", body = GraphDeletedOut),
        (status = 404, description = "No such graph or node", body = ErrorBody)))]
pub async fn delete_node(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((graph, id)): Path<(String, String)>,
) -> Result<Json<GraphDeletedOut>, ApiError> {
    let deleted = graphs(&state)?
        .delete_nodes(&tenant, &graph, std::slice::from_ref(&id))
        .await?;
    if deleted.nodes == 0 {
        return Err(ApiError::not_found(format!(
            "node `{id}` in graph `{graph}` not found"
        )));
    }
    Ok(Json(GraphDeletedOut {
        object: "graph.node.deleted",
        deleted: deleted.nodes,
        relations_deleted: Some(deleted.relations),
    }))
}

/// Deletes nodes by id (skipping those the graph does not have), with their relations.
#[utoipa::path(post, path = "/v1/graphs/{graph}/nodes/delete", tag = "memory",
    params(("graph" = String, Path, description = "The graph's name")),
    request_body = IdsIn,
    responses(
        (status = 200, description = "What was deleted", body = GraphDeletedOut),
        (status = 404, description = "No such graph in this tenant", body = ErrorBody)))]
pub async fn delete_nodes(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(graph): Path<String>,
    ApiJson(request): ApiJson<IdsIn>,
) -> Result<Json<GraphDeletedOut>, ApiError> {
    let deleted = graphs(&state)?
        .delete_nodes(&tenant, &graph, &request.ids)
        .await?;
    Ok(Json(GraphDeletedOut {
        object: "graph.node.deleted",
        deleted: deleted.nodes,
        relations_deleted: Some(deleted.relations),
    }))
}

/// The relations of a node, with the node at each one's other end, in the order they were
/// made, a page at a time.
#[utoipa::path(get, path = "/v1/graphs/{graph}/nodes/{id}/neighbors", tag = "memory",
    params(("graph" = String, Path, description = "The graph's name"),
           ("id" = String, Path, description = "The node's id"),
           ("direction" = Option<DirectionIo>, Query, description = "out (default), in or both"),
           ("types" = Option<String>, Query, description = "Relation types, comma-separated"),
           ("after" = Option<String>, Query, description = "The previous page's next_cursor"),
           ("limit" = Option<usize>, Query, description = "1–1000, default 100")),
    responses(
        (status = 200, description = "A page of neighbours", body = Paged<NeighborOut>),
        (status = 404, description = "No such graph or node", body = ErrorBody)))]
pub async fn neighbors(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((graph, id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<NeighborQueryIn>,
) -> Result<Json<Paged<NeighborOut>>, ApiError> {
    let query = NeighborQuery {
        node: id,
        follow: follow(query.direction, types_of_query(query.types.as_deref())),
        after: query.after,
        limit: query.limit.unwrap_or(DEFAULT_PAGE),
    };
    let found = graphs(&state)?.neighbors(&tenant, &graph, &query).await?;
    Ok(Json(Paged {
        object: "list",
        has_more: found.next_cursor.is_some(),
        next_cursor: found.next_cursor,
        data: found.items.into_iter().map(NeighborOut::from).collect(),
    }))
}

/// The nodes within `depth` relations of a node and every followed relation among them.
#[utoipa::path(get, path = "/v1/graphs/{graph}/nodes/{id}/subgraph", tag = "memory",
    params(("graph" = String, Path, description = "The graph's name"),
           ("id" = String, Path, description = "The node's id"),
           ("depth" = Option<usize>, Query, description = "0–3, default 1"),
           ("direction" = Option<DirectionIo>, Query, description = "out (default), in or both"),
           ("types" = Option<String>, Query, description = "Relation types, comma-separated"),
           ("max_nodes" = Option<usize>, Query, description = "1–1000, default 100")),
    responses(
        (status = 200, description = "The subgraph", body = SubgraphOut),
        (status = 404, description = "No such graph or node", body = ErrorBody)))]
pub async fn subgraph(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((graph, id)): Path<(String, String)>,
    ApiQuery(query): ApiQuery<SubgraphQueryIn>,
) -> Result<Json<SubgraphOut>, ApiError> {
    let query = SubgraphQuery {
        node: id,
        depth: query.depth.unwrap_or(1),
        follow: follow(query.direction, types_of_query(query.types.as_deref())),
        max_nodes: query.max_nodes.unwrap_or(DEFAULT_PAGE),
    };
    let found = graphs(&state)?.subgraph(&tenant, &graph, &query).await?;
    Ok(Json(SubgraphOut {
        object: "graph.subgraph",
        nodes: found.nodes.into_iter().map(NodeOut::from).collect(),
        relations: found.relations.into_iter().map(RelationOut::from).collect(),
        truncated: found.truncated,
    }))
}

/// Stores relations, all or none; the same (source, type, target) again replaces its
/// properties and keeps its id. Both ends must be nodes of the graph.
#[utoipa::path(post, path = "/v1/graphs/{graph}/relations", tag = "memory",
    params(("graph" = String, Path, description = "The graph's name")),
    request_body = RelationsIn,
    responses(
        (status = 200, description = "The relations as stored", body = RelationsOut),
        (status = 400, description = "A bad relation, or an end the graph lacks, named in param", body = ErrorBody),
        (status = 404, description = "No such graph in this tenant", body = ErrorBody)))]
pub async fn upsert_relations(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(graph): Path<String>,
    ApiJson(request): ApiJson<RelationsIn>,
) -> Result<Json<RelationsOut>, ApiError> {
    let relations = request
        .relations
        .into_iter()
        .map(|relation| NewRelation {
            id: relation.id,
            source: relation.source,
            relation_type: relation.relation_type,
            target: relation.target,
            properties: relation
                .properties
                .unwrap_or_else(|| Value::Object(Map::new())),
        })
        .collect();
    let stored = graphs(&state)?
        .upsert_relations(&tenant, &graph, relations)
        .await?;
    metrics::counter!("hearth_graph_relations_written_total").increment(stored.len() as u64);
    Ok(Json(RelationsOut {
        object: "list",
        data: stored.into_iter().map(RelationOut::from).collect(),
    }))
}

/// One relation.
#[utoipa::path(get, path = "/v1/graphs/{graph}/relations/{id}", tag = "memory",
    params(("graph" = String, Path, description = "The graph's name"),
           ("id" = String, Path, description = "The relation's id")),
    responses(
        (status = 200, description = "The relation", body = RelationOut),
        (status = 404, description = "No such graph or relation", body = ErrorBody)))]
pub async fn get_relation(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((graph, id)): Path<(String, String)>,
) -> Result<Json<RelationOut>, ApiError> {
    Ok(Json(
        graphs(&state)?.relation(&tenant, &graph, &id).await?.into(),
    ))
}

/// Deletes a relation.
#[utoipa::path(delete, path = "/v1/graphs/{graph}/relations/{id}", tag = "memory",
    params(("graph" = String, Path, description = "The graph's name"),
           ("id" = String, Path, description = "The relation's id")),
    responses(
        (status = 200, description = "Deleted", body = Deleted),
        (status = 404, description = "No such graph or relation", body = ErrorBody)))]
pub async fn delete_relation(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path((graph, id)): Path<(String, String)>,
) -> Result<Json<Deleted>, ApiError> {
    let deleted = graphs(&state)?
        .delete_relations(&tenant, &graph, std::slice::from_ref(&id))
        .await?;
    if deleted == 0 {
        return Err(ApiError::not_found(format!(
            "relation `{id}` in graph `{graph}` not found"
        )));
    }
    Ok(Json(Deleted {
        id,
        object: "graph.relation.deleted",
        deleted: true,
    }))
}

/// Simple paths (no node twice) from one node to another, shortest first.
#[utoipa::path(post, path = "/v1/graphs/{graph}/paths", tag = "memory",
    params(("graph" = String, Path, description = "The graph's name")),
    request_body = PathsIn,
    responses(
        (status = 200, description = "The paths found", body = PathsOut),
        (status = 400, description = "A bad field, named in param", body = ErrorBody),
        (status = 404, description = "No such graph, or no node `from` or `to`", body = ErrorBody)))]
pub async fn paths(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    Path(graph): Path<String>,
    ApiJson(request): ApiJson<PathsIn>,
) -> Result<Json<PathsOut>, ApiError> {
    let query = PathQuery {
        from: request.from,
        to: request.to,
        max_depth: size(request.max_depth, DEFAULT_PATH_DEPTH),
        follow: follow(request.direction, request.types),
        limit: size(request.limit, DEFAULT_PATHS),
    };
    let found = graphs(&state)?.paths(&tenant, &graph, &query).await?;
    Ok(Json(PathsOut {
        object: "list",
        data: found.paths.into_iter().map(PathOut::from).collect(),
        truncated: found.truncated,
    }))
}

/// The nodes that best match a query (hybrid by default, over title and content; the filter
/// over properties and `type`), and with `expand` the nodes they reach along relations.
#[utoipa::path(post, path = "/v1/graphs/{graph}/search", tag = "memory",
    params(("graph" = String, Path, description = "The graph's name")),
    request_body = GraphSearchIn,
    responses(
        (status = 200, description = "Hits, best first, and the nodes they reach", body = GraphSearchOut),
        (status = 400, description = "A bad field, named in param", body = ErrorBody),
        (status = 404, description = "No such graph in this tenant", body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    TenantScope(tenant): TenantScope,
    meter: Meter,
    Path(graph): Path<String>,
    ApiJson(request): ApiJson<GraphSearchIn>,
) -> Result<Json<GraphSearchOut>, ApiError> {
    let mode = crate::routes::memory::search_mode(
        request.mode.unwrap_or(SearchMode::Hybrid),
        request.hybrid,
    )?;
    let filter = request
        .filter
        .as_ref()
        .map(hearth_memory::Filter::parse)
        .transpose()?;
    let search = GraphSearch {
        query: request.query,
        mode,
        top_k: size(request.top_k, DEFAULT_TOP_K),
        filter,
        expand: request
            .expand
            .map(|expand| expand.to_expand(DEFAULT_EXPAND_NODES)),
    };
    let started = std::time::Instant::now();
    let found = graphs(&state)?.search(&tenant, &graph, &search).await?;
    metrics::histogram!("hearth_memory_search_duration_seconds", "mode" => "graph")
        .record(started.elapsed().as_secs_f64());
    count_embedding(
        &meter,
        found.embedding_model.as_deref(),
        found.embedding_tokens,
    );
    Ok(Json(GraphSearchOut {
        object: "list",
        data: found.hits.into_iter().map(NodeHitOut::from).collect(),
        reached: found.reached.into_iter().map(ReachedOut::from).collect(),
        usage: EmbeddingUsageOut::of(found.embedding_tokens),
    }))
}
