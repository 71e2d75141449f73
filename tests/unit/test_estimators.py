"""Estimator experiments without Ray: the cv section, what an estimator sweep refuses or warns about, and
cross-validation scores equal to GridSearchCV's on the same folds."""

import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, check_cv

from experiments.rt_logreg import penalty
from raytune_suite.cli import main
from raytune_suite.config import CvSettings, ignored_train_keys, load_config
from raytune_suite.errors import ConfigError
from raytune_suite.run.tuner import param_space, total_trials
from raytune_suite.track.tracking import result_metrics
from raytune_suite.train.estimators import SERIES, cross_validation, cv_splitter, fold_metric
from raytune_suite.train.kinds import kind_of
from tests.conftest import EXPERIMENTS

RT_LOGREG = EXPERIMENTS / "rt_logreg.yaml"


# -- the cv section ----------------------------------------------------------------------------------------------
def test_cv_defaults_are_five_shuffled_folds_scored_by_accuracy_seeded_by_the_split_seed():
    cv = CvSettings()
    assert (cv.folds, cv.scoring, cv.shuffle, cv.seed) == (5, "accuracy", True, None)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"folds": 1}, "greater than or equal to 2"),
        ({"scoring": "acuracy"}, "unknown scoring 'acuracy'; did you mean accuracy"),
        ({"scoring": "f1_macro_typo"}, "unknown scoring 'f1_macro_typo'"),
        ({"folds": 5, "k": 3}, "Extra inputs are not permitted"),
    ],
)
def test_bad_cv_settings_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        CvSettings.model_validate(values)


# -- what an estimator sweep is ----------------------------------------------------------------------------------
def test_the_shipped_estimator_sweep_is_the_eight_point_grid_with_fifo_and_mean_test_score():
    cfg = load_config(RT_LOGREG)
    assert kind_of(cfg).name == "estimator" and kind_of(cfg).max_steps(cfg) == 1
    assert (cfg.tune.metric, cfg.tune.mode, cfg.tune.scheduler) == ("mean_test_score", "max", "fifo")
    assert total_trials(cfg) == 8
    assert set(cfg.fixed_sections()) == {"data", "model"}  # no train section: nothing trains epoch by epoch
    assert param_space(cfg)["suite"]["cv"] == {"folds": 5, "scoring": "accuracy", "shuffle": True, "seed": None}
    assert ignored_train_keys(cfg) == []


def test_validate_prints_the_grid_size_and_the_cross_validation(capsys):
    assert main(["validate", str(RT_LOGREG)]) == 0
    out = capsys.readouterr().out
    assert "8 trial(s) (8 grid point(s) × num_samples 1)" in out
    assert "scheduler=fifo, metric=mean_test_score (max), 5-fold cross-validation (scoring=accuracy)" in out


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["tune.scheduler=asha"], "tune.scheduler: asha stops or mutates trials"),
        (["space.train={lr: {type: grid, values: [0.1]}}"], "space.train.lr: estimator experiment rt_logreg"),
        (["tune.workers_per_trial=2"], "tune.workers_per_trial: 2 splits a torch model"),
        (["tune.metric=val_accuracy"], "tune.metric: val_accuracy is not reported"),
        (["tune.mode=min"], "tune.mode: min, but scikit-learn scorers are greater-is-better"),
        (["model.solver=lbfgs"], "space.model.penalty: solver lbfgs fits only l2"),
    ],
)
def test_what_an_estimator_sweep_cannot_honour_is_a_one_line_error(overrides, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config(RT_LOGREG, overrides)
    assert "\n" not in str(err.value)


def test_an_explicit_fifo_and_the_objectives_own_names_are_accepted():
    cfg = load_config(RT_LOGREG, ["tune.scheduler=fifo", "tune.metric=mean_test_score", "tune.mode=max"])
    assert cfg.tune.scheduler == "fifo"


def test_a_cv_section_on_a_torch_experiment_is_an_error(mnist_yaml):
    with pytest.raises(ConfigError, match="cv: mnist_cnn trains a torch model"):
        load_config(mnist_yaml, ["cv.folds=3"])


def test_inert_torch_settings_are_one_warning_line_naming_them_all(capsys):
    overrides = ["train.epochs=3", "train.lr=0.1", "train.optimizer=sgd", "tune.asha.grace_period=1"]
    cfg = load_config(RT_LOGREG, overrides)
    (line,) = ignored_train_keys(cfg)
    assert line.startswith("warning: train.epochs, train.optimizer, train.lr, tune.asha mean nothing for estimator")
    assert main(["validate", str(RT_LOGREG), *(a for o in overrides for a in ("--set", o))]) == 0
    assert capsys.readouterr().err == line + "\n"


# -- the folds and the scores are GridSearchCV's -----------------------------------------------------------------
def test_unshuffled_folds_are_exactly_gridsearchcvs_own():
    x, y = load_breast_cancer(return_X_y=True)
    ours = cv_splitter(CvSettings(folds=4, shuffle=False), LogisticRegression(), y, seed=0)
    theirs = check_cv(4, y, classifier=True)
    assert [t.tolist() for _, t in ours.split(x, y)] == [t.tolist() for _, t in theirs.split(x, y)]


def test_a_classifier_gets_stratified_folds_a_regressor_plain_ones_seeded_by_cv_seed_else_the_split_seed():
    _, y = load_breast_cancer(return_X_y=True)
    splitter = cv_splitter(CvSettings(), LogisticRegression(), y, seed=7)
    assert isinstance(splitter, StratifiedKFold) and splitter.random_state == 7 and splitter.shuffle
    assert cv_splitter(CvSettings(seed=3), LogisticRegression(), y, seed=7).random_state == 3
    _, target = load_diabetes(return_X_y=True)
    assert type(cv_splitter(CvSettings(), Ridge(), target, seed=0)) is KFold


@pytest.mark.parametrize("scoring", ["accuracy", "roc_auc", "neg_log_loss"])
def test_cross_validation_scores_equal_gridsearchcvs_on_the_same_folds(scoring):
    x, y = load_breast_cancer(return_X_y=True)
    x = x[:, :8] / x[:, :8].max(axis=0)  # quick fits
    cv = CvSettings(folds=3, scoring=scoring, seed=1)
    grid = GridSearchCV(
        LogisticRegression(max_iter=500), {"C": [0.1, 10.0]}, cv=StratifiedKFold(3, shuffle=True, random_state=1),
        scoring=scoring,
    ).fit(x, y)  # fmt: skip
    for i, c in enumerate((0.1, 10.0)):
        ours = cross_validation(LogisticRegression(C=c, max_iter=500), x, y, cv, seed=0)
        for key in ("mean_test_score", "std_test_score", "split0_test_score", "split2_test_score"):
            assert ours[key] == pytest.approx(grid.cv_results_[key][i], abs=1e-12), key
        assert ours[SERIES] == {f"cv_{scoring}_fold": [ours[f"split{k}_test_score"] for k in range(3)]}


def test_a_fit_that_raises_fails_the_trial_instead_of_scoring_nan():
    x, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(ValueError):
        cross_validation(LogisticRegression(solver="lbfgs", **penalty("l1")), x, y, CvSettings(folds=2), seed=0)


def test_the_fold_scores_are_logged_one_step_per_fold_beside_the_step_one_metrics():
    result = {"mean_test_score": 0.5, SERIES: {fold_metric(CvSettings()): [0.25, 0.75]}}
    logged = result_metrics({"mean_test_score": 0.5}, result, epoch=1, now=0)
    assert [(m.key, m.step, m.value) for m in logged] == [
        ("mean_test_score", 1, 0.5),
        ("cv_accuracy_fold", 0, 0.25),
        ("cv_accuracy_fold", 1, 0.75),
    ]


# -- no torch ------------------------------------------------------------------------------------------------------
NO_TORCH = """
import sys
from raytune_suite.cli import main
assert main(["validate", sys.argv[1]]) == 0  # the preflight: schema, the experiment module, the smoke check
from raytune_suite.config import load_config
from raytune_suite.run.tuner import param_space, trainable_for
cfg = load_config(sys.argv[1], [])
trainable_for(cfg), param_space(cfg)  # what the driver builds its Tuner from
import raytune_suite.train.estimators, raytune_suite.train.trial_process  # what an estimator trial's process imports
print("torch imported:", "torch" in sys.modules)
"""


def test_an_estimator_experiments_checks_and_trials_never_import_torch():
    # They did (experiments.py, the optimizer registry, trainable.py): 1.6 s here for the check and for each trial
    # process before its first trial, ~6 s of a 12-point SVC grid's first result on a busy 2-CPU machine.
    import subprocess
    import sys

    from tests.conftest import REPO

    svc = REPO / "benchmarks" / "experiments" / "breast_cancer_svc.yaml"
    proc = subprocess.run([sys.executable, "-c", NO_TORCH, str(svc)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "torch imported: False" in proc.stdout
