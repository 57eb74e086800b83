//! Knowledge graphs over the real router and a real SQLite store: a graph through its whole
//! life, queries along its relations, errors that name the field and write nothing, and
//! tenants and roles on every route. Nodes carry their vectors here (no embedding model), and
//! searches are keyword searches; the embedded path is the memory tests'.

use axum::http::{Method, StatusCode};
use hearth_gateway::LimitDefaults;
use serde_json::{Value, json};

use crate::gate::gated;
use crate::memory::{call, keyless};

fn node(id: &str, kind: &str, content: &str) -> Value {
    json!({"id": id, "type": kind, "title": id, "content": content,
           "properties": {"len": id.len()}, "embedding": [1.0, id.len() as f32]})
}

fn relation(source: &str, kind: &str, target: &str) -> Value {
    json!({"source": source, "type": kind, "target": target})
}

fn node_ids(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key}: {list}"))
        .iter()
        .map(|item| item["id"].as_str().expect("id").to_string())
        .collect()
}

/// The fixture graph `people`: a cycle ada → bob → cid → ada, bob and dan at acme, cid → dan.
async fn people(router: &axum::Router, key: Option<&str>, member: Option<&str>) {
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/graphs",
        Some(json!({"name": "people", "dimensions": 2})),
        key,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["object"], "graph");
    let nodes = json!({"nodes": [
        node("ada", "person", "Ada writes compilers."),
        node("bob", "person", "Bob repairs lighthouses."),
        node("cid", "person", "Cid grows tomatoes."),
        node("dan", "person", "Dan sells boats."),
        node("acme", "company", "Acme builds lighthouse lamps."),
    ]});
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/graphs/people/nodes",
        Some(nodes),
        member,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let relations = json!({"relations": [
        relation("ada", "knows", "bob"),
        relation("bob", "knows", "cid"),
        relation("cid", "knows", "ada"),
        relation("bob", "works_at", "acme"),
        relation("dan", "works_at", "acme"),
        relation("cid", "knows", "dan"),
    ]});
    let (status, body) = call(
        router,
        Method::POST,
        "/v1/graphs/people/relations",
        Some(relations),
        member,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_graph_is_built_queried_along_its_relations_and_deleted() {
    let server = keyless().await;
    let router = &server.router;
    people(router, None, None).await;

    let (status, graph) = call(router, Method::GET, "/v1/graphs/people", None, None).await;
    assert_eq!(status, StatusCode::OK, "{graph}");
    assert_eq!(
        (
            graph["node_count"].as_u64(),
            graph["relation_count"].as_u64()
        ),
        (Some(5), Some(6))
    );
    // Its nodes are searched through a collection of the same tenant, named in the graph.
    let collection = graph["collection"].as_str().expect("collection");
    let (status, _) = call(
        router,
        Method::GET,
        &format!("/v1/collections/{collection}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let (status, node) = call(
        router,
        Method::GET,
        "/v1/graphs/people/nodes/acme",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{node}");
    assert_eq!(node["type"], "company");
    assert_eq!(node["properties"], json!({"len": 4}));
    let (_, listed) = call(
        router,
        Method::GET,
        "/v1/graphs/people/nodes?type=person&limit=2",
        None,
        None,
    )
    .await;
    assert_eq!(node_ids(&listed, "data"), ["ada", "bob"]);
    assert_eq!(listed["has_more"], true);

    let (status, neighbors) = call(
        router,
        Method::GET,
        "/v1/graphs/people/nodes/acme/neighbors?direction=in",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{neighbors}");
    let reached: Vec<(&str, &str)> = neighbors["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|item| {
            (
                item["relation"]["type"].as_str().expect("type"),
                item["node"]["id"].as_str().expect("id"),
            )
        })
        .collect();
    assert_eq!(reached, [("works_at", "bob"), ("works_at", "dan")]);

    let (status, paths) = call(
        router,
        Method::POST,
        "/v1/graphs/people/paths",
        Some(json!({"from": "ada", "to": "acme", "max_depth": 4})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{paths}");
    let found: Vec<Vec<String>> = paths["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|path| node_ids(path, "nodes"))
        .collect();
    assert_eq!(
        found,
        [
            vec!["ada", "bob", "acme"],
            vec!["ada", "bob", "cid", "dan", "acme"]
        ]
    );

    let (status, subgraph) = call(
        router,
        Method::GET,
        "/v1/graphs/people/nodes/ada/subgraph?depth=2&types=knows",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{subgraph}");
    assert_eq!(node_ids(&subgraph, "nodes"), ["ada", "bob", "cid"]);
    assert_eq!(subgraph["relations"].as_array().map(Vec::len), Some(3));

    let (status, search) = call(
        router,
        Method::POST,
        "/v1/graphs/people/search",
        Some(json!({"query": "tomatoes", "mode": "keyword", "top_k": 1,
                    "expand": {"types": ["knows"], "depth": 1}})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{search}");
    assert_eq!(search["data"][0]["node"]["id"], "cid");
    let reached: Vec<&str> = search["reached"]
        .as_array()
        .expect("reached")
        .iter()
        .map(|item| item["node"]["id"].as_str().expect("id"))
        .collect();
    assert_eq!(reached, ["ada", "dan"]);
    assert_eq!(search["reached"][0]["from"], "cid");

    // The graph's collection is changed through the graph only.
    let (status, refused) = call(
        router,
        Method::DELETE,
        &format!("/v1/collections/{collection}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("graph `people`"),
        "{refused}"
    );
    let (status, _) = call(
        router,
        Method::PATCH,
        &format!("/v1/collections/{collection}"),
        Some(json!({"name": "renamed"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Deleting a node takes its relations in both directions.
    let (status, deleted) = call(
        router,
        Method::DELETE,
        "/v1/graphs/people/nodes/bob",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(
        (
            deleted["deleted"].as_u64(),
            deleted["relations_deleted"].as_u64()
        ),
        (Some(1), Some(3))
    );
    let (status, _) = call(
        router,
        Method::GET,
        "/v1/graphs/people/nodes/bob",
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, paths) = call(
        router,
        Method::POST,
        "/v1/graphs/people/paths",
        Some(json!({"from": "ada", "to": "acme", "max_depth": 6})),
        None,
    )
    .await;
    assert_eq!(paths["data"], json!([]), "{paths}");

    let (status, _) = call(router, Method::DELETE, "/v1/graphs/people", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(router, Method::GET, "/v1/graphs/people", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        router,
        Method::GET,
        &format!("/v1/collections/{collection}"),
        None,
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "the graph's collection goes with it"
    );
}

#[tokio::test]
async fn bad_nodes_and_relations_are_refused_by_field_and_write_nothing() {
    let server = keyless().await;
    let router = &server.router;
    people(router, None, None).await;
    let cases = [
        (
            "/v1/graphs/people/nodes",
            json!({"nodes": [node("eve", "person", "Eve"), node("fay", "not a type", "Fay")]}),
            "nodes[1].type",
        ),
        (
            "/v1/graphs/people/nodes",
            json!({"nodes": [{"id": "gus", "type": "person", "title": "Gus",
                              "properties": {"type": "spy"}, "embedding": [1.0, 1.0]}]}),
            "nodes[0].properties.type",
        ),
        (
            "/v1/graphs/people/nodes",
            json!({"nodes": [{"id": "hal", "type": "person", "title": "Hal", "embedding": [1.0]}]}),
            "nodes[0].embedding",
        ),
        (
            "/v1/graphs/people/relations",
            json!({"relations": [relation("ada", "likes", "cid"), relation("ada", "likes", "zed")]}),
            "relations[1].target",
        ),
        (
            "/v1/graphs/people/paths",
            json!({"from": "ada", "to": "cid", "max_depth": 7}),
            "max_depth",
        ),
    ];
    for (path, body, field) in cases {
        let (status, error) = call(router, Method::POST, path, Some(body), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {field}: {error}");
        assert_eq!(error["error"]["param"], field, "{error}");
    }
    let (_, graph) = call(router, Method::GET, "/v1/graphs/people", None, None).await;
    assert_eq!(
        (
            graph["node_count"].as_u64(),
            graph["relation_count"].as_u64()
        ),
        (Some(5), Some(6))
    );

    let (status, error) = call(
        router,
        Method::POST,
        "/v1/graphs/people/paths",
        Some(json!({"from": "ada", "to": "nobody"})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/graphs",
        Some(json!({"name": "people", "dimensions": 2})),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn tenants_never_reach_each_others_graphs_and_roles_decide_who_writes() {
    let gated = gated(LimitDefaults::default()).await;
    let keys = &gated.keys;
    let router = &gated.router;

    // Members write nodes and relations but do not create graphs; readers only read.
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/graphs",
        Some(json!({"name": "people", "dimensions": 2})),
        Some(&keys.acme_member),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    people(router, Some(&keys.acme_admin), Some(&keys.acme_member)).await;
    let (status, _) = call(
        router,
        Method::POST,
        "/v1/graphs/people/nodes",
        Some(json!({"nodes": [node("eve", "person", "Eve")]})),
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        router,
        Method::GET,
        "/v1/graphs/people/nodes/ada/neighbors",
        None,
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let globex = Some(keys.globex_admin.as_str());
    let routes = [
        (Method::GET, "/v1/graphs/people", None),
        (Method::DELETE, "/v1/graphs/people", None),
        (
            Method::POST,
            "/v1/graphs/people/nodes",
            Some(json!({"nodes": [node("eve", "person", "Eve")]})),
        ),
        (Method::GET, "/v1/graphs/people/nodes", None),
        (Method::GET, "/v1/graphs/people/nodes/ada", None),
        (Method::DELETE, "/v1/graphs/people/nodes/ada", None),
        (
            Method::POST,
            "/v1/graphs/people/nodes/delete",
            Some(json!({"ids": ["ada"]})),
        ),
        (Method::GET, "/v1/graphs/people/nodes/ada/neighbors", None),
        (Method::GET, "/v1/graphs/people/nodes/ada/subgraph", None),
        (
            Method::POST,
            "/v1/graphs/people/relations",
            Some(json!({"relations": [relation("ada", "knows", "dan")]})),
        ),
        (
            Method::POST,
            "/v1/graphs/people/paths",
            Some(json!({"from": "ada", "to": "bob"})),
        ),
        (
            Method::POST,
            "/v1/graphs/people/search",
            Some(json!({"query": "tomatoes", "mode": "keyword"})),
        ),
    ];
    for (method, path, body) in routes {
        let (status, error) = call(router, method.clone(), path, body, globex).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {error}");
    }
    let (_, listed) = call(router, Method::GET, "/v1/graphs", None, globex).await;
    assert_eq!(listed["data"], json!([]), "{listed}");
    // Nothing globex tried changed acme's graph.
    let (_, graph) = call(
        router,
        Method::GET,
        "/v1/graphs/people",
        None,
        Some(&keys.acme_reader),
    )
    .await;
    assert_eq!(
        (
            graph["node_count"].as_u64(),
            graph["relation_count"].as_u64()
        ),
        (Some(5), Some(6))
    );
}
