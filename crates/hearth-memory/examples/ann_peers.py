"""The peers of `ann_bench`: hnswlib and faiss-cpu on the same vectors, M=16, efConstruction=200,
one thread, so their numbers can be set beside Hearth's.

    python3 -m venv /tmp/annvenv && /tmp/annvenv/bin/pip install numpy faiss-cpu hnswlib
    cargo run --release -p hearth-memory --example ann_bench -- --n 100000 --dim 384 \
        --latent 256 --queries 1000 --dump /tmp/c100k
    /tmp/annvenv/bin/python crates/hearth-memory/examples/ann_peers.py /tmp/c100k hnswlib
    /tmp/annvenv/bin/python crates/hearth-memory/examples/ann_peers.py /tmp/c100k faiss --filters
    /tmp/chromavenv/bin/python crates/hearth-memory/examples/ann_peers.py /tmp/c100k chroma

Reads PREFIX.base.fvecs and PREFIX.query.fvecs (cosine: both are normalized, and inner product
is searched), caches the exact ground truth and each built index beside them (delete the files
to time a build again), and prints build time, RSS growth, and recall@10 with QPS (best of
three batch passes) for ef 16..256. `--filters` adds faiss's filtered search (IDSelectorBitmap)
at 1% and 10%; `--two-threads` also times hnswlib's build on two threads.
"""

import os
import sys
import time

import numpy as np


def fvecs(path):
    raw = np.fromfile(path, dtype=np.int32)
    dim = raw[0]
    return raw.reshape(-1, dim + 1)[:, 1:].copy().view(np.float32)


def rss():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) * 1024
    return 0


def best_of_three(search):
    seconds, result = float("inf"), None
    for _ in range(3):
        started = time.time()
        result = search()
        seconds = min(seconds, time.time() - started)
    return seconds, result


def main():
    prefix, which, flags = sys.argv[1], sys.argv[2], sys.argv[3:]
    base = fvecs(prefix + ".base.fvecs")
    queries = fvecs(prefix + ".query.fvecs")
    n, dim = base.shape
    base = np.ascontiguousarray(base / np.linalg.norm(base, axis=1, keepdims=True), np.float32)
    queries = np.ascontiguousarray(queries / np.linalg.norm(queries, axis=1, keepdims=True), np.float32)
    truth_path = prefix + ".gt.npy"
    if os.path.exists(truth_path):
        truth = np.load(truth_path)
    else:
        truth = np.argsort(-(queries @ base.T), axis=1)[:, :10]
        np.save(truth_path, truth)

    def recall(found, want=truth):
        return np.mean([len(set(found[i]) & set(want[i])) / 10 for i in range(len(queries))])

    efs = [16, 32, 64, 128, 256]
    if which == "hnswlib":
        import hnswlib

        path = prefix + ".hnswlib"
        index = hnswlib.Index(space="ip", dim=dim)
        if os.path.exists(path):
            index.load_index(path, max_elements=n)
        else:
            before = rss()
            index.init_index(max_elements=n, M=16, ef_construction=200, random_seed=100)
            index.set_num_threads(1)
            started = time.time()
            index.add_items(base)
            print(f"hnswlib build 1 thread {time.time() - started:.2f} s, RSS +{(rss() - before) / 1e6:.1f} MB")
            index.save_index(path)
        index.set_num_threads(1)
        for ef in efs:
            index.set_ef(ef)
            seconds, (labels, _) = best_of_three(lambda: index.knn_query(queries, k=10))
            print(f"hnswlib ef {ef}: recall@10 {recall(labels):.4f}, {len(queries) / seconds:.0f} QPS")
        if "--two-threads" in flags:
            other = hnswlib.Index(space="ip", dim=dim)
            other.init_index(max_elements=n, M=16, ef_construction=200, random_seed=100)
            other.set_num_threads(2)
            started = time.time()
            other.add_items(base)
            print(f"hnswlib build 2 threads {time.time() - started:.2f} s")
    elif which == "chroma":
        chroma(base, queries, truth, recall)
    else:
        import faiss

        faiss.omp_set_num_threads(1)
        path = prefix + ".faiss"
        if os.path.exists(path):
            index = faiss.read_index(path)
        else:
            before = rss()
            index = faiss.IndexHNSWFlat(dim, 16, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 200
            started = time.time()
            index.add(base)
            print(f"faiss build 1 thread {time.time() - started:.2f} s, RSS +{(rss() - before) / 1e6:.1f} MB")
            faiss.write_index(index, path)
        for ef in efs:
            index.hnsw.efSearch = ef
            seconds, (_, labels) = best_of_three(lambda: index.search(queries, 10))
            print(f"faiss ef {ef}: recall@10 {recall(labels):.4f}, {len(queries) / seconds:.0f} QPS")
        if "--filters" in flags:
            ids = np.arange(n)
            for modulus in [100, 10]:
                allowed = ids[ids % modulus == 0]
                want = allowed[np.argsort(-(queries @ base[allowed].T), axis=1)[:, :10]]
                bitmap = np.zeros((n + 7) // 8, dtype=np.uint8)
                np.bitwise_or.at(bitmap, allowed >> 3, (1 << (allowed & 7)).astype(np.uint8))
                selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
                for ef in [16, 64]:
                    params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef)
                    seconds, (_, labels) = best_of_three(lambda: index.search(queries, 10, params=params))
                    print(
                        f"faiss filter {100 / modulus:.0f}% ef {ef}: recall@10 {recall(labels, want):.4f}, "
                        f"{len(queries) / seconds:.0f} QPS"
                    )


def chroma(base, queries, truth, recall):
    """Chroma in process, as its users run it: its default collection (HNSW, M 16,
    ef_construction 100, ef_search 100, its own build threads), metadata `bucket` = id % 100,
    one query per call. Filters are its `where` clauses on that metadata."""
    import chromadb

    n = len(base)
    client = chromadb.EphemeralClient()
    collection = client.create_collection("gcide")
    before = rss()
    started = time.time()
    for start in range(0, n, 5000):
        ids = range(start, min(start + 5000, n))
        collection.add(
            ids=[str(i) for i in ids],
            embeddings=base[start : start + len(ids)],
            metadatas=[{"bucket": i % 100} for i in ids],
        )
    print(f"chroma build {time.time() - started:.2f} s, RSS +{(rss() - before) / 1e6:.1f} MB")

    def run(where, want):
        def search():
            found = []
            for query in queries:
                answer = collection.query(query_embeddings=[query], n_results=10, where=where, include=[])
                found.append([int(i) for i in answer["ids"][0]])
            return found

        seconds, found = best_of_three(search)
        return recall(found, want), len(queries) / seconds

    found_recall, qps = run(None, truth)
    print(f"chroma ef 100: recall@10 {found_recall:.4f}, {qps:.0f} QPS")
    ids = np.arange(n)
    for modulus in [100, 10]:
        allowed = ids[ids % modulus == 0]
        want = allowed[np.argsort(-(queries @ base[allowed].T), axis=1)[:, :10]]
        where = {"bucket": 0} if modulus == 100 else {"bucket": {"$in": list(range(0, 100, 10))}}
        found_recall, qps = run(where, want)
        print(f"chroma filter {100 / modulus:.0f}% ef 100: recall@10 {found_recall:.4f}, {qps:.0f} QPS")


if __name__ == "__main__":
    main()
