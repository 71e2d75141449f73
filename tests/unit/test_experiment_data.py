"""Data loaders of the NLP and recommender experiments, on tiny files in their standard formats (`data.path`)."""

import pytest

from experiments import movielens_mf, rt_transformer
from raytune_suite.data import package_file
from raytune_suite.errors import ConfigError


def test_the_nlp_vocabulary_comes_from_the_training_split_only(tmp_path):
    # Each review carries a word of its own, twice (so it passes min_freq=2 when it lands in training).
    rows = [f"{'fresh' if i % 2 else 'rotten'},{'good' if i % 2 else 'bad'} film w{i} w{i}" for i in range(40)]
    path = tmp_path / "reviews.csv"
    path.write_text("category,text\nplot,a plot summary is dropped\n" + "\n".join(rows) + "\n")
    cfg = rt_transformer.DataConfig(path=str(path), val_size=0.25, max_len=8)
    data = rt_transformer.load_data(cfg, seed=0)
    assert (len(data.train_y), len(data.val_y)) == (30, 10)
    assert data.info["vocab_size"] == 2 + 3 + 30  # <pad>, <unk>, good/bad/film, one word per training review
    assert (data.val_x[:, 2:4] == rt_transformer.UNK).all(), "a validation-only word leaked into the vocabulary"
    assert 0.0 <= rt_transformer.bag_of_words_baseline(cfg, seed=0) <= 1.0


def test_movielens_reads_grouplens_u_data_without_a_header(tmp_path):
    path = tmp_path / "u.data"
    path.write_text("".join(f"{u}\t{i}\t{(u + i) % 5 + 1}\t88125{u}{i}\n" for u in range(1, 6) for i in range(1, 9)))
    data = movielens_mf.load_data(movielens_mf.DataConfig(path=str(path)), seed=0)
    assert (data.info["users"], data.info["items"]) == (5, 8)
    assert len(data.train_y) + len(data.val_y) == 40 and data.train_x.shape[1] == 2


def test_a_missing_data_package_names_its_install_command():
    with pytest.raises(ConfigError, match=r"run: pip install --no-deps nosuchpkg"):
        package_file("nosuchpkg_rts", "data.csv", "pip install --no-deps nosuchpkg")
