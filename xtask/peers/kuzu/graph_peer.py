"""The graph benchmark's peer: Kùzu, in-process, loading the same graph from CSV with its bulk
COPY and answering the same queries through prepared statements. Prints one JSON object:
load seconds, and the milliseconds of each neighbours and paths query.

usage: graph_peer.py DATABASE NODES_CSV EDGES_CSV QUERIES_JSON
"""

import json
import sys
import time

import kuzu


def main():
    database, nodes_csv, edges_csv, queries_json = sys.argv[1:5]
    queries = json.load(open(queries_json))
    db = kuzu.Database(database)
    conn = kuzu.Connection(db)
    started = time.perf_counter()
    conn.execute("CREATE NODE TABLE N(id STRING, title STRING, PRIMARY KEY (id))")
    conn.execute("CREATE REL TABLE R(FROM N TO N, type STRING)")
    conn.execute(f"COPY N FROM '{nodes_csv}' (header=false)")
    conn.execute(f"COPY R FROM '{edges_csv}' (header=false)")
    load_s = time.perf_counter() - started

    neighbors = conn.prepare(
        "MATCH (a:N {id: $id})-[r:R]->(b:N) RETURN r.type, b.id, b.title LIMIT 100"
    )
    neighbors_ms = []
    for node in queries["neighbors"]:
        sent = time.perf_counter()
        result = conn.execute(neighbors, {"id": node})
        rows = result.get_all()
        neighbors_ms.append((time.perf_counter() - sent) * 1e3)
        assert rows is not None

    # ACYCLIC: no node twice on a path, as Hearth's paths.
    paths = conn.prepare(
        "MATCH p = (a:N {id: $from})-[:R* ACYCLIC 1..3]->(b:N {id: $to}) RETURN p LIMIT 10"
    )
    paths_ms = []
    found = 0
    for source, target in queries["paths"]:
        sent = time.perf_counter()
        result = conn.execute(paths, {"from": source, "to": target})
        rows = result.get_all()
        paths_ms.append((time.perf_counter() - sent) * 1e3)
        found += len(rows)

    print(
        json.dumps(
            {
                "load_s": load_s,
                "neighbors_ms": neighbors_ms,
                "paths_ms": paths_ms,
                "paths_found": found,
            }
        )
    )


if __name__ == "__main__":
    main()
