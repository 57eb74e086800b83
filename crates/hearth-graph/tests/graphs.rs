//! The graphs service against a real SQLite store and real collections, on a small fixture
//! graph with a cycle:
//!
//! ```text
//!   ada --knows--> bob --knows--> cid --knows--> ada      (a cycle of three)
//!   bob --works_at--> acme <--works_at-- dan
//!   cid --knows--> dan
//! ```
//!
//! The graphs' collections take the caller's embeddings (no embedding model here), and the
//! searches are keyword searches, which need none.

use std::sync::Arc;

use hearth_graph::{
    Direction, Expand, Follow, GraphSearch, Graphs, NeighborQuery, NewGraph, NewNode, NewRelation,
    PathQuery, SubgraphQuery,
};
use hearth_memory::{Filter, Memory, MemoryError, MemoryOptions, PageRequest, SearchMode};
use hearth_store::{IntegrityCheck, OpenOptions, Store};
use serde_json::json;

struct Fixture {
    _dir: tempfile::TempDir,
    graphs: Graphs,
}

const TENANT: &str = "tenant-a";

fn node(id: &str, kind: &str, content: &str) -> NewNode {
    NewNode {
        id: id.to_string(),
        node_type: kind.to_string(),
        title: id.to_string(),
        content: content.to_string(),
        properties: json!({"initial": &id[..1]}),
        embedding: Some(vec![1.0, id.len() as f32]),
    }
}

fn relation(source: &str, kind: &str, target: &str) -> NewRelation {
    NewRelation {
        id: None,
        source: source.to_string(),
        relation_type: kind.to_string(),
        target: target.to_string(),
        properties: json!({}),
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let options = OpenOptions {
        integrity_check: IntegrityCheck::Quick,
        run_migrations: true,
    };
    let store = Store::open(dir.path(), options).await.unwrap();
    let memory = Arc::new(Memory::new(
        store.clone(),
        dir.path(),
        MemoryOptions::default(),
    ));
    let graphs = Graphs::new(store, memory);
    graphs
        .create_graph(
            TENANT,
            NewGraph {
                name: "people".to_string(),
                dimensions: Some(2),
                ..NewGraph::default()
            },
        )
        .await
        .unwrap();
    graphs
        .upsert_nodes(
            TENANT,
            "people",
            vec![
                node("ada", "person", "Ada writes compilers and plays the cello."),
                node("bob", "person", "Bob repairs lighthouses."),
                node("cid", "person", "Cid grows tomatoes."),
                node("dan", "person", "Dan sells boats."),
                node("acme", "company", "Acme builds lighthouse lamps."),
            ],
        )
        .await
        .unwrap();
    graphs
        .upsert_relations(
            TENANT,
            "people",
            vec![
                relation("ada", "knows", "bob"),
                relation("bob", "knows", "cid"),
                relation("cid", "knows", "ada"),
                relation("bob", "works_at", "acme"),
                relation("dan", "works_at", "acme"),
                relation("cid", "knows", "dan"),
            ],
        )
        .await
        .unwrap();
    Fixture { _dir: dir, graphs }
}

fn follow(direction: Direction, types: &[&str]) -> Follow {
    Follow {
        direction,
        types: (!types.is_empty()).then(|| types.iter().map(|t| t.to_string()).collect()),
    }
}

fn path_ids(paths: &hearth_graph::Paths) -> Vec<Vec<String>> {
    paths
        .paths
        .iter()
        .map(|path| path.nodes.iter().map(|node| node.id.clone()).collect())
        .collect()
}

fn paths_query(from: &str, to: &str, max_depth: usize, follow: Follow) -> PathQuery {
    PathQuery {
        from: from.to_string(),
        to: to.to_string(),
        max_depth,
        follow,
        limit: 10,
    }
}

#[tokio::test]
async fn neighbors_follow_direction_and_type() {
    let fixture = fixture().await;
    let query = |direction, types: &[&str]| NeighborQuery {
        node: "bob".to_string(),
        follow: follow(direction, types),
        after: None,
        limit: 10,
    };
    let ids = |neighbors: hearth_graph::Neighbors| -> Vec<(String, String)> {
        neighbors
            .items
            .into_iter()
            .map(|n| (n.relation.relation_type, n.node.id))
            .collect()
    };
    let graphs = &fixture.graphs;
    let out = graphs
        .neighbors(TENANT, "people", &query(Direction::Out, &[]))
        .await
        .unwrap();
    assert_eq!(
        ids(out),
        [
            ("knows".into(), "cid".into()),
            ("works_at".into(), "acme".into())
        ]
    );
    let incoming = graphs
        .neighbors(TENANT, "people", &query(Direction::In, &[]))
        .await
        .unwrap();
    assert_eq!(ids(incoming), [("knows".into(), "ada".into())]);
    let both_knows = graphs
        .neighbors(TENANT, "people", &query(Direction::Both, &["knows"]))
        .await
        .unwrap();
    assert_eq!(
        ids(both_knows),
        [
            ("knows".into(), "ada".into()),
            ("knows".into(), "cid".into())
        ]
    );

    // Pages: one at a time, the cursor carrying on where the last page stopped.
    let mut page = query(Direction::Both, &[]);
    page.limit = 1;
    let first = graphs.neighbors(TENANT, "people", &page).await.unwrap();
    assert_eq!(first.items.len(), 1);
    page.after = first.next_cursor;
    let second = graphs.neighbors(TENANT, "people", &page).await.unwrap();
    assert_eq!(second.items.len(), 1);
    assert_ne!(first.items[0].relation.id, second.items[0].relation.id);

    let missing = graphs
        .neighbors(
            TENANT,
            "people",
            &NeighborQuery {
                node: "zed".to_string(),
                ..query(Direction::Out, &[])
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(missing, MemoryError::NotFound { .. }), "{missing}");
}

#[tokio::test]
async fn paths_are_simple_shortest_first_and_bounded_by_depth() {
    let fixture = fixture().await;
    let graphs = &fixture.graphs;
    let out = follow(Direction::Out, &[]);

    // ada → acme: through bob (2 relations), or around through cid and dan (4).
    let two = graphs
        .paths(
            TENANT,
            "people",
            &paths_query("ada", "acme", 2, out.clone()),
        )
        .await
        .unwrap();
    assert_eq!(path_ids(&two), [["ada", "bob", "acme"]]);
    let four = graphs
        .paths(
            TENANT,
            "people",
            &paths_query("ada", "acme", 4, out.clone()),
        )
        .await
        .unwrap();
    assert_eq!(
        path_ids(&four),
        [
            vec!["ada", "bob", "acme"],
            vec!["ada", "bob", "cid", "dan", "acme"]
        ]
    );
    let relations: Vec<&str> = four.paths[1]
        .relations
        .iter()
        .map(|relation| relation.relation_type.as_str())
        .collect();
    assert_eq!(relations, ["knows", "knows", "knows", "works_at"]);

    // The cycle never repeats a node, however deep the search may go.
    let around = graphs
        .paths(TENANT, "people", &paths_query("ada", "cid", 6, out.clone()))
        .await
        .unwrap();
    assert_eq!(path_ids(&around), [["ada", "bob", "cid"]]);

    // Against the arrows only when asked.
    let backwards = graphs
        .paths(
            TENANT,
            "people",
            &paths_query("acme", "ada", 3, out.clone()),
        )
        .await
        .unwrap();
    assert!(backwards.paths.is_empty());
    let either = graphs
        .paths(
            TENANT,
            "people",
            &paths_query("acme", "ada", 3, follow(Direction::Both, &[])),
        )
        .await
        .unwrap();
    assert_eq!(
        path_ids(&either),
        [
            vec!["acme", "bob", "ada"],
            vec!["acme", "bob", "cid", "ada"],
            vec!["acme", "dan", "cid", "ada"]
        ]
    );

    // Only the chosen relation types.
    let knows_only = graphs
        .paths(
            TENANT,
            "people",
            &paths_query("ada", "acme", 4, follow(Direction::Out, &["knows"])),
        )
        .await
        .unwrap();
    assert!(knows_only.paths.is_empty());

    // A limit of one keeps the shortest and says more may exist.
    let mut one = paths_query("ada", "acme", 4, out.clone());
    one.limit = 1;
    let limited = graphs.paths(TENANT, "people", &one).await.unwrap();
    assert_eq!(path_ids(&limited), [["ada", "bob", "acme"]]);
    assert!(limited.truncated);

    let too_deep = graphs
        .paths(TENANT, "people", &paths_query("ada", "acme", 7, out))
        .await
        .unwrap_err();
    assert!(
        matches!(&too_deep, MemoryError::Invalid { field, .. } if field == "max_depth"),
        "{too_deep}"
    );
}

#[tokio::test]
async fn deleting_a_node_removes_its_relations_from_every_query() {
    let fixture = fixture().await;
    let graphs = &fixture.graphs;
    let deleted = graphs
        .delete_nodes(TENANT, "people", &["bob".to_string()])
        .await
        .unwrap();
    assert_eq!((deleted.nodes, deleted.relations), (1, 3));
    let counts = graphs.graph(TENANT, "people").await.unwrap();
    assert_eq!((counts.nodes, counts.relations), (4, 3));

    let paths = graphs
        .paths(
            TENANT,
            "people",
            &paths_query("ada", "acme", 6, follow(Direction::Out, &[])),
        )
        .await
        .unwrap();
    assert!(paths.paths.is_empty(), "{:?}", path_ids(&paths));
    let incoming = graphs
        .neighbors(
            TENANT,
            "people",
            &NeighborQuery {
                node: "acme".to_string(),
                follow: follow(Direction::In, &[]),
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(incoming.items.len(), 1);
    assert_eq!(incoming.items[0].node.id, "dan");

    // Nor is it found by search any more.
    let hits = graphs
        .search(
            TENANT,
            "people",
            &GraphSearch {
                query: "repairs lighthouses".to_string(),
                mode: SearchMode::Keyword,
                top_k: 5,
                filter: None,
                expand: None,
            },
        )
        .await
        .unwrap();
    assert!(hits.hits.iter().all(|hit| hit.node.id != "bob"));

    let relation_to_gone = graphs
        .upsert_relations(TENANT, "people", vec![relation("ada", "knows", "bob")])
        .await
        .unwrap_err();
    assert!(
        matches!(&relation_to_gone, MemoryError::Invalid { field, .. } if field == "relations[0].target"),
        "{relation_to_gone}"
    );
}

#[tokio::test]
async fn a_subgraph_holds_the_nodes_within_its_depth_and_the_relations_among_them() {
    let fixture = fixture().await;
    let graphs = &fixture.graphs;
    let query = |depth, max_nodes| SubgraphQuery {
        node: "ada".to_string(),
        depth,
        follow: follow(Direction::Out, &[]),
        max_nodes,
    };
    let one = graphs
        .subgraph(TENANT, "people", &query(1, 100))
        .await
        .unwrap();
    let ids: Vec<&str> = one.nodes.iter().map(|node| node.id.as_str()).collect();
    assert_eq!(ids, ["ada", "bob"]);
    assert_eq!(one.relations.len(), 1);

    let two = graphs
        .subgraph(TENANT, "people", &query(2, 100))
        .await
        .unwrap();
    let ids: Vec<&str> = two.nodes.iter().map(|node| node.id.as_str()).collect();
    assert_eq!(ids, ["ada", "bob", "cid", "acme"]);
    // ada→bob, bob→cid, bob→acme, and cid→ada closing the cycle among them.
    assert_eq!(two.relations.len(), 4);
    assert!(!two.truncated);

    let capped = graphs
        .subgraph(TENANT, "people", &query(3, 2))
        .await
        .unwrap();
    assert_eq!(capped.nodes.len(), 2);
    assert!(capped.truncated);

    let zero = graphs
        .subgraph(TENANT, "people", &query(0, 10))
        .await
        .unwrap();
    assert_eq!(zero.nodes.len(), 1);
}

#[tokio::test]
async fn search_finds_nodes_and_expands_along_the_chosen_relations() {
    let fixture = fixture().await;
    let graphs = &fixture.graphs;
    let search = |query: &str, expand| GraphSearch {
        query: query.to_string(),
        mode: SearchMode::Keyword,
        top_k: 1,
        filter: None,
        expand,
    };
    let plain = graphs
        .search(TENANT, "people", &search("tomatoes", None))
        .await
        .unwrap();
    assert_eq!(plain.hits.len(), 1);
    assert_eq!(plain.hits[0].node.id, "cid");
    assert!(plain.reached.is_empty());

    let expanded = graphs
        .search(
            TENANT,
            "people",
            &search(
                "tomatoes",
                Some(Expand {
                    follow: follow(Direction::Out, &["knows"]),
                    depth: 2,
                    limit: 10,
                }),
            ),
        )
        .await
        .unwrap();
    let reached: Vec<(&str, &str, usize)> = expanded
        .reached
        .iter()
        .map(|r| (r.node.id.as_str(), r.from.as_str(), r.depth))
        .collect();
    assert_eq!(
        reached,
        [("ada", "cid", 1), ("dan", "cid", 1), ("bob", "ada", 2)]
    );

    // The filter language reads the node's type and properties.
    let companies = graphs
        .search(
            TENANT,
            "people",
            &GraphSearch {
                filter: Some(
                    Filter::parse(&json!({"key": "type", "type": "eq", "value": "company"}))
                        .unwrap(),
                ),
                top_k: 5,
                ..search("lighthouse lighthouses", None)
            },
        )
        .await
        .unwrap();
    let ids: Vec<&str> = companies.hits.iter().map(|h| h.node.id.as_str()).collect();
    assert_eq!(ids, ["acme"]);
}

#[tokio::test]
async fn graphs_belong_to_their_tenant_and_bad_nodes_name_their_field() {
    let fixture = fixture().await;
    let graphs = &fixture.graphs;
    let other = graphs.graph("tenant-b", "people").await.unwrap_err();
    assert!(matches!(other, MemoryError::NotFound { .. }));
    let listed = graphs
        .list_graphs("tenant-b", &PageRequest::first(10))
        .await
        .unwrap();
    assert!(listed.items.is_empty());

    let mut bad = node("eve", "person", "Eve");
    bad.properties = json!({"type": "spy"});
    let error = graphs
        .upsert_nodes(TENANT, "people", vec![node("fay", "person", "Fay"), bad])
        .await
        .unwrap_err();
    assert!(
        matches!(&error, MemoryError::Invalid { field, .. } if field == "nodes[1].properties.type"),
        "{error}"
    );
    let mut wrong_size = node("gus", "person", "Gus");
    wrong_size.embedding = Some(vec![1.0, 2.0, 3.0]);
    let error = graphs
        .upsert_nodes(TENANT, "people", vec![wrong_size])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("nodes[0]"), "{error}");
    // Neither batch wrote anything.
    let counts = graphs.graph(TENANT, "people").await.unwrap();
    assert_eq!(counts.nodes, 5);

    graphs.delete_graph(TENANT, "people").await.unwrap();
    assert!(matches!(
        graphs.graph(TENANT, "people").await.unwrap_err(),
        MemoryError::NotFound { .. }
    ));
}
