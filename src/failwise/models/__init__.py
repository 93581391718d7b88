"""Model builders for text intent classification.

`tfidf_linear_model` is the light default (scikit-learn only); `SentenceEmbedder` wraps a
local sentence-transformers encoder (the `embeddings` extra) and `embedding_linear_model`
puts a logistic regression on its output.
"""

from __future__ import annotations

from failwise.models._embeddings import SentenceEmbedder
from failwise.models._text import embedding_linear_model, tfidf_linear_model

__all__ = ["SentenceEmbedder", "embedding_linear_model", "tfidf_linear_model"]
