"""The shared text-preprocessing specification (tf-idf), in Python: a copy of exportconf's own, kept by the app.

A "separate" sentiment export ships ``preprocessing.json``; every stack re-implements exactly this
(JavaScript/TypeScript in node_harness) so that all of them produce identical vectors:

1. lower-case the text (ASCII letters);
2. tokens are the maximal runs of ``[a-z0-9_]`` of length >= 2, in order;
3. count each token found in ``vocabulary`` (token -> column), ignore the rest;
4. multiply counts by ``idf[column]``; 5. divide by the L2 norm if it is non-zero; float32 out.

This is scikit-learn's ``TfidfVectorizer(token_pattern=TOKEN_PATTERN, norm="l2")`` on ASCII text.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

TOKEN_PATTERN = r"[a-z0-9_]{2,}"
_TOKEN = re.compile(TOKEN_PATTERN)


def _lower_ascii(text: str) -> str:
    return text.translate(_LOWER)


_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(_lower_ascii(text))


def apply_preprocessing(spec: dict[str, Any], texts: Any) -> np.ndarray:
    if spec.get("kind") != "tfidf":
        raise ValueError(f"unknown preprocessing kind {spec.get('kind')!r}; known: tfidf")
    vocab: dict[str, int] = spec["vocabulary"]
    idf = np.asarray(spec["idf"], dtype=np.float64)
    rows = [str(t) for t in np.asarray(texts, dtype=object).reshape(-1)]
    out = np.zeros((len(rows), len(idf)), dtype=np.float64)
    for i, text in enumerate(rows):
        for tok in tokens(text):
            j = vocab.get(tok)
            if j is not None:
                out[i, j] += 1.0
    out *= idf
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out.astype(np.float32)


def spec_from_sklearn(vectorizer: Any) -> dict[str, Any]:
    return {
        "kind": "tfidf",
        "version": 1,
        "token_pattern": TOKEN_PATTERN,
        "lowercase": True,
        "norm": "l2",
        "vocabulary": {k: int(v) for k, v in sorted(vectorizer.vocabulary_.items(), key=lambda kv: kv[1])},
        "idf": [float(x) for x in vectorizer.idf_],
    }
