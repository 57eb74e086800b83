//! Rows of knowledge graphs: graphs, their typed nodes and the typed, directed relations
//! between nodes, scoped by tenant through the graph. The text search over nodes lives in the
//! memory tables (each graph has a collection); these tables say what exists and how it
//! connects. Lists of keys travel as JSON arrays (`json_each`), so one statement serves a
//! whole frontier of a traversal.

use crate::{Store, StoreError};

/// One graph.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GraphRow {
    pub key: i64,
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    /// The name of the memory collection holding the nodes' text.
    pub collection: String,
    /// A JSON object.
    pub metadata: String,
    pub created_at_ms: i64,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GraphNodeRow {
    pub key: i64,
    pub id: String,
    #[sqlx(rename = "type")]
    pub node_type: String,
    pub title: String,
    pub content: String,
    /// A JSON object.
    pub properties: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A node to insert or replace (by id, within its graph).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGraphNode {
    pub id: String,
    pub node_type: String,
    pub title: String,
    pub content: String,
    pub properties: String,
}

/// One relation, with the ids of the nodes at its ends.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct GraphRelationRow {
    pub key: i64,
    pub id: String,
    pub source: String,
    #[sqlx(rename = "type")]
    pub relation_type: String,
    pub target: String,
    /// A JSON object.
    pub properties: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

/// A relation to insert, or to update when its (source, type, target) exists already (then
/// `id` is not used: the relation keeps the id it has).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGraphRelation {
    pub id: String,
    pub source: String,
    pub relation_type: String,
    pub target: String,
    pub properties: String,
}

/// What an upsert of relations did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelationsWrite {
    Written(Vec<GraphRelationRow>),
    /// Nothing was written: relation `index` names a node the graph does not have, at its
    /// `source` end when `source` is true.
    MissingNode {
        index: usize,
        source: bool,
    },
    /// Nothing was written: relation `index` gives an id another relation of the graph (with
    /// other ends or type) has.
    IdTaken {
        index: usize,
    },
}

/// A relation as a traversal sees it: keys only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct GraphEdge {
    #[sqlx(rename = "key")]
    pub relation_key: i64,
    pub source_key: i64,
    pub target_key: i64,
}

/// Which relations of a node a traversal follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeDirection {
    /// Relations the node is the source of.
    Out,
    /// Relations the node is the target of.
    In,
    Both,
}

/// A relation of a node together with the node at its other end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborRow {
    pub relation: GraphRelationRow,
    pub node: GraphNodeRow,
}

/// What deleting nodes removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodesDeleted {
    pub nodes: u64,
    pub relations: u64,
}

/// The most keys one traversal statement takes; longer lists are split.
const KEYS_PER_STATEMENT: usize = 5_000;

const NODE_COLUMNS: &str =
    "key, id, type, title, content, properties, created_at_ms, updated_at_ms";
const RELATION_COLUMNS: &str = "r.key, r.id, s.id AS source, r.type, t.id AS target, \
     r.properties, r.created_at_ms, r.updated_at_ms";
const RELATION_JOINS: &str = "FROM graph_relations r JOIN graph_nodes s ON s.key = r.source_key \
     JOIN graph_nodes t ON t.key = r.target_key";

fn json_keys(keys: &[i64]) -> String {
    let mut text = String::with_capacity(keys.len() * 8 + 2);
    text.push('[');
    for (index, key) in keys.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        text.push_str(&key.to_string());
    }
    text.push(']');
    text
}

fn json_strings(values: &[String]) -> String {
    let mut text = String::from("[");
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        json_string(&mut text, value);
    }
    text.push(']');
    text
}

/// One JSON string literal.
fn json_string(text: &mut String, value: &str) {
    text.push('"');
    for character in value.chars() {
        match character {
            '"' => text.push_str("\\\""),
            '\\' => text.push_str("\\\\"),
            c if (c as u32) < 0x20 => text.push_str(&format!("\\u{:04x}", c as u32)),
            c => text.push(c),
        }
    }
    text.push('"');
}

/// Relations as the JSON array the upsert reads: `{"id", "source", "type", "target",
/// "properties"}` each, the properties as the JSON text to store.
fn relations_json(relations: &[NewGraphRelation]) -> String {
    let mut text = String::from("[");
    for (index, relation) in relations.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        for (position, (name, value)) in [
            ("id", &relation.id),
            ("source", &relation.source),
            ("type", &relation.relation_type),
            ("target", &relation.target),
            ("properties", &relation.properties),
        ]
        .into_iter()
        .enumerate()
        {
            text.push(if position == 0 { '{' } else { ',' });
            json_string(&mut text, name);
            text.push(':');
            json_string(&mut text, value);
        }
        text.push('}');
    }
    text.push(']');
    text
}

/// `types` as the JSON text the traversal statements filter by (`NULL`: every type).
fn types_filter(types: Option<&[String]>) -> Option<String> {
    types.map(json_strings)
}

impl Store {
    /// Inserts a graph; `false` when the tenant already has one of that name.
    pub async fn insert_graph(&self, row: &GraphRow) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO graphs (id, tenant_id, name, collection, metadata, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, name) DO NOTHING",
        )
        .bind(&row.id)
        .bind(&row.tenant_id)
        .bind(&row.name)
        .bind(&row.collection)
        .bind(&row.metadata)
        .bind(row.created_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn graph(&self, tenant_id: &str, name: &str) -> Result<Option<GraphRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, id, tenant_id, name, collection, metadata, created_at_ms FROM graphs \
             WHERE tenant_id = $1 AND name = $2",
        )
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// The name of the tenant's graph whose nodes `collection` holds, if any.
    pub async fn graph_of_collection(
        &self,
        tenant_id: &str,
        collection: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT name FROM graphs WHERE tenant_id = $1 AND collection = $2")
                .bind(tenant_id)
                .bind(collection)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// A tenant's graphs by name, those after `after_name` when given, at most `limit`.
    pub async fn graphs(
        &self,
        tenant_id: &str,
        after_name: Option<&str>,
        limit: i64,
    ) -> Result<Vec<GraphRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, id, tenant_id, name, collection, metadata, created_at_ms FROM graphs \
             WHERE tenant_id = $1 AND ($2 IS NULL OR name > $2) ORDER BY name LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after_name)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes a graph with its nodes and relations; `false` when it was not there.
    pub async fn delete_graph(&self, key: i64) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM graphs WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// How many nodes and relations a graph holds.
    pub async fn graph_counts(&self, key: i64) -> Result<(i64, i64), StoreError> {
        Ok(sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM graph_nodes WHERE graph_key = $1), \
             (SELECT COUNT(*) FROM graph_relations WHERE graph_key = $1)",
        )
        .bind(key)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Inserts or replaces nodes by id in one transaction; returns them as stored, in order.
    /// A replaced node keeps its key, its creation time and its relations.
    pub async fn upsert_graph_nodes(
        &self,
        graph_key: i64,
        nodes: &[NewGraphNode],
        now_ms: i64,
    ) -> Result<Vec<GraphNodeRow>, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut stored = Vec::with_capacity(nodes.len());
        for node in nodes {
            let row: GraphNodeRow = sqlx::query_as(&format!(
                "INSERT INTO graph_nodes (graph_key, id, type, title, content, properties, \
                 created_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (graph_key, id) DO UPDATE SET type = excluded.type, \
                 title = excluded.title, content = excluded.content, \
                 properties = excluded.properties, updated_at_ms = excluded.updated_at_ms \
                 RETURNING {NODE_COLUMNS}"
            ))
            .bind(graph_key)
            .bind(&node.id)
            .bind(&node.node_type)
            .bind(&node.title)
            .bind(&node.content)
            .bind(&node.properties)
            .bind(now_ms)
            .fetch_one(&mut *transaction)
            .await?;
            stored.push(row);
        }
        transaction.commit().await?;
        Ok(stored)
    }

    /// A graph's nodes with these ids (those it has), in no particular order.
    pub async fn graph_nodes_by_id(
        &self,
        graph_key: i64,
        ids: &[String],
    ) -> Result<Vec<GraphNodeRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {NODE_COLUMNS} FROM graph_nodes WHERE graph_key = $1 \
             AND id IN (SELECT value FROM json_each($2))"
        ))
        .bind(graph_key)
        .bind(json_strings(ids))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The key of a graph's node `id`, if it has one (what a traversal starts from).
    pub async fn graph_node_key(
        &self,
        graph_key: i64,
        id: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT key FROM graph_nodes WHERE graph_key = $1 AND id = $2")
                .bind(graph_key)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Nodes by key, in no particular order.
    pub async fn graph_nodes_by_key(&self, keys: &[i64]) -> Result<Vec<GraphNodeRow>, StoreError> {
        let mut rows = Vec::with_capacity(keys.len());
        for part in keys.chunks(KEYS_PER_STATEMENT) {
            let found: Vec<GraphNodeRow> = sqlx::query_as(&format!(
                "SELECT {NODE_COLUMNS} FROM graph_nodes \
                 WHERE key IN (SELECT value FROM json_each($1))"
            ))
            .bind(json_keys(part))
            .fetch_all(&self.pool)
            .await?;
            rows.extend(found);
        }
        Ok(rows)
    }

    /// A graph's nodes in id order, of one type when given, after `after_id`, at most `limit`.
    pub async fn graph_nodes(
        &self,
        graph_key: i64,
        node_type: Option<&str>,
        after_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<GraphNodeRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {NODE_COLUMNS} FROM graph_nodes WHERE graph_key = $1 \
             AND ($2 IS NULL OR type = $2) AND ($3 IS NULL OR id > $3) ORDER BY id LIMIT $4"
        ))
        .bind(graph_key)
        .bind(node_type)
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Deletes nodes by id, and with them every relation that starts or ends at one, in one
    /// transaction.
    pub async fn delete_graph_nodes(
        &self,
        graph_key: i64,
        ids: &[String],
    ) -> Result<NodesDeleted, StoreError> {
        let ids = json_strings(ids);
        let mut transaction = self.begin_write().await?;
        let relations: i64 = sqlx::query_scalar(
            "WITH doomed AS (SELECT key FROM graph_nodes WHERE graph_key = $1 \
               AND id IN (SELECT value FROM json_each($2))) \
             SELECT COUNT(*) FROM graph_relations WHERE source_key IN (SELECT key FROM doomed) \
               OR target_key IN (SELECT key FROM doomed)",
        )
        .bind(graph_key)
        .bind(&ids)
        .fetch_one(&mut *transaction)
        .await?;
        let nodes = sqlx::query(
            "DELETE FROM graph_nodes WHERE graph_key = $1 \
             AND id IN (SELECT value FROM json_each($2))",
        )
        .bind(graph_key)
        .bind(&ids)
        .execute(&mut *transaction)
        .await?
        .rows_affected();
        transaction.commit().await?;
        Ok(NodesDeleted {
            nodes,
            relations: relations as u64,
        })
    }

    /// Inserts relations, or updates the properties of those whose (source, type, target)
    /// exists, in one transaction: all or none. The whole batch is one JSON array that three
    /// statements read (the first missing end, the upsert, the rows back in request order),
    /// not a round trip per relation.
    pub async fn upsert_graph_relations(
        &self,
        graph_key: i64,
        relations: &[NewGraphRelation],
        now_ms: i64,
    ) -> Result<RelationsWrite, StoreError> {
        let batch = relations_json(relations);
        let ends = "FROM json_each($2) j \
             JOIN graph_nodes s ON s.graph_key = $1 AND s.id = json_extract(j.value, '$.source') \
             JOIN graph_nodes t ON t.graph_key = $1 AND t.id = json_extract(j.value, '$.target')";
        let mut transaction = self.begin_write().await?;
        let missing: Option<(i64, bool)> = sqlx::query_as(
            "SELECT CAST(j.key AS INTEGER), s.key IS NULL FROM json_each($2) j \
             LEFT JOIN graph_nodes s ON s.graph_key = $1 \
               AND s.id = json_extract(j.value, '$.source') \
             LEFT JOIN graph_nodes t ON t.graph_key = $1 \
               AND t.id = json_extract(j.value, '$.target') \
             WHERE s.key IS NULL OR t.key IS NULL ORDER BY j.key LIMIT 1",
        )
        .bind(graph_key)
        .bind(&batch)
        .fetch_optional(&mut *transaction)
        .await?;
        if let Some((index, source)) = missing {
            return Ok(RelationsWrite::MissingNode {
                index: index as usize,
                source,
            });
        }
        // An id given for a new triple that another relation of the graph already has.
        let taken: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT CAST(j.key AS INTEGER) {ends} \
             JOIN graph_relations r ON r.graph_key = $1 AND r.id = json_extract(j.value, '$.id') \
             WHERE NOT (r.source_key = s.key AND r.target_key = t.key \
               AND r.type = json_extract(j.value, '$.type')) ORDER BY j.key LIMIT 1"
        ))
        .bind(graph_key)
        .bind(&batch)
        .fetch_optional(&mut *transaction)
        .await?;
        if let Some(index) = taken {
            return Ok(RelationsWrite::IdTaken {
                index: index as usize,
            });
        }
        // `WHERE true` tells SQLite's parser the upsert clause is not part of a join.
        sqlx::query(&format!(
            "INSERT INTO graph_relations (graph_key, id, source_key, type, target_key, \
             properties, created_at_ms, updated_at_ms) \
             SELECT $1, json_extract(j.value, '$.id'), s.key, json_extract(j.value, '$.type'), \
             t.key, json_extract(j.value, '$.properties'), $3, $3 {ends} WHERE true \
             ORDER BY j.key \
             ON CONFLICT (source_key, type, target_key) DO UPDATE SET \
             properties = excluded.properties, updated_at_ms = excluded.updated_at_ms"
        ))
        .bind(graph_key)
        .bind(&batch)
        .bind(now_ms)
        .execute(&mut *transaction)
        .await?;
        let rows: Vec<GraphRelationRow> = sqlx::query_as(&format!(
            "SELECT r.key, r.id, s.id AS source, r.type, t.id AS target, r.properties, \
             r.created_at_ms, r.updated_at_ms {ends} \
             JOIN graph_relations r ON r.source_key = s.key AND r.target_key = t.key \
               AND r.type = json_extract(j.value, '$.type') ORDER BY j.key"
        ))
        .bind(graph_key)
        .bind(&batch)
        .fetch_all(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(RelationsWrite::Written(rows))
    }

    /// A graph's relations with these ids (those it has), in no particular order.
    pub async fn graph_relations_by_id(
        &self,
        graph_key: i64,
        ids: &[String],
    ) -> Result<Vec<GraphRelationRow>, StoreError> {
        Ok(sqlx::query_as(&format!(
            "SELECT {RELATION_COLUMNS} {RELATION_JOINS} WHERE r.graph_key = $1 \
             AND r.id IN (SELECT value FROM json_each($2))"
        ))
        .bind(graph_key)
        .bind(json_strings(ids))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Relations by key, in no particular order.
    pub async fn graph_relations_by_key(
        &self,
        keys: &[i64],
    ) -> Result<Vec<GraphRelationRow>, StoreError> {
        let mut rows = Vec::with_capacity(keys.len());
        for part in keys.chunks(KEYS_PER_STATEMENT) {
            let found: Vec<GraphRelationRow> = sqlx::query_as(&format!(
                "SELECT {RELATION_COLUMNS} {RELATION_JOINS} \
                 WHERE r.key IN (SELECT value FROM json_each($1))"
            ))
            .bind(json_keys(part))
            .fetch_all(&self.pool)
            .await?;
            rows.extend(found);
        }
        Ok(rows)
    }

    /// Deletes relations by id; returns how many were deleted.
    pub async fn delete_graph_relations(
        &self,
        graph_key: i64,
        ids: &[String],
    ) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM graph_relations WHERE graph_key = $1 \
             AND id IN (SELECT value FROM json_each($2))",
        )
        .bind(graph_key)
        .bind(json_strings(ids))
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// The relations of node `node_key` in `direction`, of the given types (all when `None`),
    /// in key order after `after_key`, at most `limit`, each with the node at its other end.
    pub async fn graph_neighbors(
        &self,
        node_key: i64,
        direction: EdgeDirection,
        types: Option<&[String]>,
        after_key: Option<i64>,
        limit: i64,
    ) -> Result<Vec<NeighborRow>, StoreError> {
        let chosen = match direction {
            EdgeDirection::Out => "r.source_key = $1",
            EdgeDirection::In => "r.target_key = $1",
            EdgeDirection::Both => "(r.source_key = $1 OR r.target_key = $1)",
        };
        let rows: Vec<NeighborJoined> = sqlx::query_as(&format!(
            "SELECT {RELATION_COLUMNS}, n.key AS n_key, n.id AS n_id, n.type AS n_type, \
             n.title AS n_title, n.content AS n_content, n.properties AS n_properties, \
             n.created_at_ms AS n_created_at_ms, n.updated_at_ms AS n_updated_at_ms \
             {RELATION_JOINS} JOIN graph_nodes n ON n.key = \
             (CASE WHEN r.source_key = $1 THEN r.target_key ELSE r.source_key END) \
             WHERE {chosen} AND ($2 IS NULL OR r.type IN (SELECT value FROM json_each($2))) \
             AND ($3 IS NULL OR r.key > $3) ORDER BY r.key LIMIT $4"
        ))
        .bind(node_key)
        .bind(types_filter(types))
        .bind(after_key)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(NeighborJoined::split).collect())
    }

    /// The relations that leave (or, `In`, reach; `Both`: either) any of `node_keys`, of the
    /// given types: one step of a traversal, for a whole frontier at once.
    pub async fn graph_edges(
        &self,
        node_keys: &[i64],
        direction: EdgeDirection,
        types: Option<&[String]>,
    ) -> Result<Vec<GraphEdge>, StoreError> {
        let types = types_filter(types);
        let mut edges = Vec::new();
        let ends: &[&str] = match direction {
            EdgeDirection::Out => &["source_key"],
            EdgeDirection::In => &["target_key"],
            EdgeDirection::Both => &["source_key", "target_key"],
        };
        for part in node_keys.chunks(KEYS_PER_STATEMENT) {
            let keys = json_keys(part);
            for end in ends {
                let found: Vec<GraphEdge> = sqlx::query_as(&format!(
                    "SELECT key, source_key, target_key FROM graph_relations \
                     WHERE {end} IN (SELECT value FROM json_each($1)) \
                     AND ($2 IS NULL OR type IN (SELECT value FROM json_each($2)))"
                ))
                .bind(&keys)
                .bind(&types)
                .fetch_all(&self.pool)
                .await?;
                edges.extend(found);
            }
        }
        if direction == EdgeDirection::Both {
            // A relation between two frontier nodes is found from both ends.
            edges.sort_unstable_by_key(|edge| edge.relation_key);
            edges.dedup_by_key(|edge| edge.relation_key);
        }
        Ok(edges)
    }

    /// The relations, of the given types, whose both ends are among `node_keys`: the edges of
    /// the subgraph those nodes induce.
    pub async fn graph_edges_within(
        &self,
        node_keys: &[i64],
        types: Option<&[String]>,
    ) -> Result<Vec<GraphEdge>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT key, source_key, target_key FROM graph_relations \
             WHERE source_key IN (SELECT value FROM json_each($1)) \
             AND target_key IN (SELECT value FROM json_each($1)) \
             AND ($2 IS NULL OR type IN (SELECT value FROM json_each($2))) ORDER BY key",
        )
        .bind(json_keys(node_keys))
        .bind(types_filter(types))
        .fetch_all(&self.pool)
        .await?)
    }
}

/// A neighbour row as the join reads it: the relation's columns, then the node's prefixed.
#[derive(sqlx::FromRow)]
struct NeighborJoined {
    #[sqlx(flatten)]
    relation: GraphRelationRow,
    n_key: i64,
    n_id: String,
    n_type: String,
    n_title: String,
    n_content: String,
    n_properties: String,
    n_created_at_ms: i64,
    n_updated_at_ms: i64,
}

impl NeighborJoined {
    fn split(self) -> NeighborRow {
        NeighborRow {
            relation: self.relation,
            node: GraphNodeRow {
                key: self.n_key,
                id: self.n_id,
                node_type: self.n_type,
                title: self.n_title,
                content: self.n_content,
                properties: self.n_properties,
                created_at_ms: self.n_created_at_ms,
                updated_at_ms: self.n_updated_at_ms,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let options = crate::OpenOptions {
            integrity_check: crate::IntegrityCheck::Quick,
            run_migrations: true,
        };
        let store = Store::open(dir.path(), options).await.unwrap();
        (dir, store)
    }

    async fn graph(store: &Store, tenant: &str, name: &str) -> GraphRow {
        let row = GraphRow {
            key: 0,
            id: format!("graph_{tenant}_{name}"),
            tenant_id: tenant.to_string(),
            name: name.to_string(),
            collection: format!("graph_{tenant}_{name}"),
            metadata: "{}".to_string(),
            created_at_ms: 1,
        };
        assert!(store.insert_graph(&row).await.unwrap());
        store.graph(tenant, name).await.unwrap().unwrap()
    }

    fn node(id: &str) -> NewGraphNode {
        NewGraphNode {
            id: id.to_string(),
            node_type: "thing".to_string(),
            title: id.to_uppercase(),
            content: String::new(),
            properties: "{}".to_string(),
        }
    }

    fn relation(source: &str, kind: &str, target: &str) -> NewGraphRelation {
        NewGraphRelation {
            id: format!("rel-{source}-{kind}-{target}"),
            source: source.to_string(),
            relation_type: kind.to_string(),
            target: target.to_string(),
            properties: "{}".to_string(),
        }
    }

    fn written(write: RelationsWrite) -> Vec<GraphRelationRow> {
        match write {
            RelationsWrite::Written(rows) => rows,
            other => panic!("expected a write, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn ids_with_quotes_and_backslashes_travel_through_the_json_lists() {
        let (_dir, store) = store().await;
        let g = graph(&store, "t1", "g").await;
        let odd = ["plain", "quote\"d", "back\\slash", "tab\there", "ünïcode"];
        let nodes: Vec<NewGraphNode> = odd.iter().map(|id| node(id)).collect();
        store.upsert_graph_nodes(g.key, &nodes, 5).await.unwrap();
        let ids: Vec<String> = odd.iter().map(|id| id.to_string()).collect();
        let mut found: Vec<String> = store
            .graph_nodes_by_id(g.key, &ids)
            .await
            .unwrap()
            .into_iter()
            .map(|row| row.id)
            .collect();
        found.sort();
        let mut expected = ids.clone();
        expected.sort();
        assert_eq!(found, expected);
    }

    #[tokio::test]
    async fn a_relation_is_unique_per_triple_and_needs_both_nodes_in_its_graph() {
        let (_dir, store) = store().await;
        let g = graph(&store, "t1", "g").await;
        let other = graph(&store, "t1", "other").await;
        store
            .upsert_graph_nodes(g.key, &[node("a"), node("b")], 5)
            .await
            .unwrap();
        store
            .upsert_graph_nodes(other.key, &[node("c")], 5)
            .await
            .unwrap();
        let first = written(
            store
                .upsert_graph_relations(g.key, &[relation("a", "knows", "b")], 6)
                .await
                .unwrap(),
        );
        let mut again = relation("a", "knows", "b");
        again.id = "another-id".to_string();
        again.properties = r#"{"since": 2020}"#.to_string();
        let second = written(
            store
                .upsert_graph_relations(g.key, &[again], 7)
                .await
                .unwrap(),
        );
        assert_eq!(second[0].id, first[0].id, "the triple keeps its first id");
        assert_eq!(second[0].properties, r#"{"since": 2020}"#);
        assert_eq!((second[0].created_at_ms, second[0].updated_at_ms), (6, 7));
        assert_eq!(store.graph_counts(g.key).await.unwrap(), (2, 1));

        // `c` is another graph's node: nothing of the batch is written.
        let refused = store
            .upsert_graph_relations(
                g.key,
                &[relation("b", "knows", "a"), relation("a", "knows", "c")],
                8,
            )
            .await
            .unwrap();
        assert_eq!(
            refused,
            RelationsWrite::MissingNode {
                index: 1,
                source: false
            }
        );
        assert_eq!(store.graph_counts(g.key).await.unwrap(), (2, 1));
    }

    #[tokio::test]
    async fn a_batch_comes_back_in_request_order_and_a_taken_id_writes_nothing() {
        let (_dir, store) = store().await;
        let g = graph(&store, "t1", "g").await;
        store
            .upsert_graph_nodes(g.key, &[node("a"), node("b"), node("c")], 5)
            .await
            .unwrap();
        let mut quoted = relation("c", "knows", "a");
        quoted.properties = r#"{"note": "say \"hi\""}"#.to_string();
        let rows = written(
            store
                .upsert_graph_relations(
                    g.key,
                    &[
                        relation("b", "knows", "c"),
                        quoted,
                        relation("a", "knows", "b"),
                        relation("b", "knows", "c"),
                    ],
                    6,
                )
                .await
                .unwrap(),
        );
        let order: Vec<(&str, &str)> = rows
            .iter()
            .map(|row| (row.source.as_str(), row.target.as_str()))
            .collect();
        assert_eq!(order, [("b", "c"), ("c", "a"), ("a", "b"), ("b", "c")]);
        assert_eq!(
            rows[0].key, rows[3].key,
            "the same triple twice is one relation"
        );
        assert_eq!(rows[1].properties, r#"{"note": "say \"hi\""}"#);
        assert_eq!(store.graph_counts(g.key).await.unwrap(), (3, 3));

        let mut taken = relation("c", "likes", "b");
        taken.id = rows[2].id.clone();
        let refused = store
            .upsert_graph_relations(g.key, &[relation("a", "likes", "c"), taken], 7)
            .await
            .unwrap();
        assert_eq!(refused, RelationsWrite::IdTaken { index: 1 });
        assert_eq!(store.graph_counts(g.key).await.unwrap(), (3, 3));
    }

    #[tokio::test]
    async fn deleting_a_node_deletes_its_relations_in_both_directions() {
        let (_dir, store) = store().await;
        let g = graph(&store, "t1", "g").await;
        store
            .upsert_graph_nodes(g.key, &[node("a"), node("b"), node("c")], 5)
            .await
            .unwrap();
        written(
            store
                .upsert_graph_relations(
                    g.key,
                    &[
                        relation("a", "knows", "b"),
                        relation("c", "knows", "a"),
                        relation("b", "knows", "c"),
                    ],
                    6,
                )
                .await
                .unwrap(),
        );
        let deleted = store
            .delete_graph_nodes(g.key, &["a".to_string(), "missing".to_string()])
            .await
            .unwrap();
        assert_eq!(
            deleted,
            NodesDeleted {
                nodes: 1,
                relations: 2
            }
        );
        assert_eq!(store.graph_counts(g.key).await.unwrap(), (2, 1));
        assert!(store.delete_graph(g.key).await.unwrap());
        assert_eq!(store.graph_counts(g.key).await.unwrap(), (0, 0));
    }

    #[tokio::test]
    async fn neighbors_and_edges_follow_the_asked_direction_and_types() {
        let (_dir, store) = store().await;
        let g = graph(&store, "t1", "g").await;
        let nodes = store
            .upsert_graph_nodes(g.key, &[node("a"), node("b"), node("c")], 5)
            .await
            .unwrap();
        let key = |id: &str| nodes.iter().find(|row| row.id == id).unwrap().key;
        written(
            store
                .upsert_graph_relations(
                    g.key,
                    &[
                        relation("a", "knows", "b"),
                        relation("c", "likes", "a"),
                        relation("a", "likes", "a"),
                    ],
                    6,
                )
                .await
                .unwrap(),
        );
        let names = |rows: Vec<NeighborRow>| -> Vec<(String, String)> {
            rows.into_iter()
                .map(|row| (row.relation.relation_type, row.node.id))
                .collect()
        };
        let out = store
            .graph_neighbors(key("a"), EdgeDirection::Out, None, None, 10)
            .await
            .unwrap();
        assert_eq!(
            names(out),
            [("knows".into(), "b".into()), ("likes".into(), "a".into())]
        );
        let likes = ["likes".to_string()];
        let incoming = store
            .graph_neighbors(key("a"), EdgeDirection::In, Some(&likes), None, 10)
            .await
            .unwrap();
        assert_eq!(
            names(incoming),
            [("likes".into(), "c".into()), ("likes".into(), "a".into())]
        );
        let both = store
            .graph_neighbors(key("a"), EdgeDirection::Both, None, None, 2)
            .await
            .unwrap();
        assert_eq!(both.len(), 2, "the limit holds");
        let rest = store
            .graph_neighbors(
                key("a"),
                EdgeDirection::Both,
                None,
                Some(both[1].relation.key),
                10,
            )
            .await
            .unwrap();
        assert_eq!(rest.len(), 1, "the self-loop is listed once");

        let edges = store
            .graph_edges(&[key("a"), key("c")], EdgeDirection::Both, None)
            .await
            .unwrap();
        assert_eq!(
            edges.len(),
            3,
            "each relation once, though both ends are asked"
        );
        let within = store
            .graph_edges_within(&[key("a"), key("b")], None)
            .await
            .unwrap();
        assert_eq!(within.len(), 2);
    }
}
