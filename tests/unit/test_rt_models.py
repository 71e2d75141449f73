"""The two model families of `rt_transformer`: the fastText-style n-gram bag beside the Transformer."""

import pytest
import torch

from experiments import rt_transformer as rt
from raytune_suite.experiments import TASKS

INFO = {"vocab_size": 50, "max_len": 6, "classes": 2}


def bag(**fields) -> torch.nn.Module:
    return rt.build_model(rt.ModelConfig(arch="embedding_bag", buckets=64, **fields), INFO)


def test_both_families_map_token_ids_to_class_logits():
    ids = torch.tensor([[5, 6, 7, 0, 0, 0], [8, 9, 10, 11, 12, 13], [rt.UNK, 0, 0, 0, 0, 0]])
    for arch in ("transformer", "embedding_bag"):
        model = rt.build_model(rt.ModelConfig(arch=arch, d_model=16, heads=2, embed_dim=4, buckets=64), INFO)
        assert model(ids).shape == (3, 2), arch


def test_bigrams_hash_deterministically_past_the_word_ids_and_skip_padding():
    ids = torch.tensor([[5, 6, 7, 0, 0], [5, 6, 0, 0, 0], [7, 5, 6, 9, 2]])
    first = rt.bigram_ids(ids, vocab_size=50, buckets=64)
    assert torch.equal(first, rt.bigram_ids(ids.clone(), vocab_size=50, buckets=64))  # same ids, same buckets
    assert first.shape == (3, 4)
    assert first[0, 0] == first[1, 0] == first[2, 1], "the bigram (5, 6) must get one bucket in every review"
    assert first[0, 1] != first[0, 0]
    assert (first[0, 2:] == rt.PAD).all() and (first[1, 1:] == rt.PAD).all(), "pairs with padding are no bigram"
    real = first[first != rt.PAD]
    assert ((real >= 50) & (real < 50 + 64)).all(), "bigram ids live in their own rows after the vocabulary"
    # A fixed value pins the hash itself, so a changed formula (or a process-salted hash) cannot pass unnoticed.
    assert int(first[0, 0]) == (5 * rt.BIGRAM_MULTIPLIER + 6) % 64 + 50


def test_the_bag_averages_only_real_ngrams_and_unigram_mode_ignores_bigrams():
    model = bag(embed_dim=3, dropout=0.0)
    with torch.no_grad():
        model.embed.weight.normal_()
        model.embed.weight[rt.PAD] = 0.0
    padded = torch.tensor([[5, 6, 0, 0, 0, 0]])
    assert torch.allclose(model(padded), model(padded[:, :2]), atol=1e-6), "padding changed the mean"
    unigram = bag(embed_dim=3, dropout=0.0, ngrams=1)
    assert unigram.embed.weight.shape[0] == INFO["vocab_size"]
    assert unigram.ngram_ids(padded).shape == padded.shape


def test_the_bag_trains_on_a_subset_and_its_loss_drops():
    cfg = rt.DataConfig(subset=300, max_len=24)
    data = rt.load_data(cfg, seed=0)
    torch.manual_seed(0)
    model = rt.build_model(rt.ModelConfig(arch="embedding_bag", embed_dim=8, buckets=4096), data.info)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss_fn = TASKS[rt.TASK].loss
    x, y = data.train_x, data.train_y
    with torch.no_grad():
        before = loss_fn(model(x), y).item()
    for _ in range(30):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()
    with torch.no_grad():
        after = loss_fn(model(x), y).item()
    assert after < 0.8 * before, (before, after)


def test_heads_must_divide_d_model_only_for_the_transformer():
    with pytest.raises(ValueError, match="heads"):
        rt.ModelConfig(arch="transformer", d_model=30, heads=4)
    assert rt.ModelConfig(arch="embedding_bag", d_model=30, heads=4).arch == "embedding_bag"
