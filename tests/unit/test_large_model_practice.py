"""The large-model training switches of TrainConfig: gradient accumulation, clipping, mixed precision, loss scaling."""

import pytest
import torch

from raytune_suite.train.trainable import (
    accumulate_gradients,
    evaluate,
    make_scaler,
    resolve_precision,
    restore_checkpoint,
    save_checkpoint,
    steps_per_epoch,
    train_epoch,
)
from tests.unit.test_trainable import _Dir, digits_trial, fresh

# No dropout, batch norm or augmentation: the gradient is then a deterministic function of the examples.
DETERMINISTIC = ["model.arch=mlp", "model.dropout=0.0", "model.shift=0"]


def gradient(model) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in model.parameters()])


def global_norm(model) -> float:
    return gradient(model).norm().item()


def test_accumulating_k_micro_batches_gives_the_gradient_of_one_k_times_larger_batch(mnist_yaml):
    one = digits_trial(mnist_yaml, DETERMINISTIC, batch_size=64, l2=0.5, optimizer="sgd")
    accum = digits_trial(mnist_yaml, DETERMINISTIC, batch_size=16, grad_accum_steps=4, l2=0.5, optimizer="sgd")
    idx = torch.arange(64)
    grads = []
    for trial, micro in ((one, 64), (accum, 16)):
        data, model, *_ = fresh(trial)
        accumulate_gradients(model, data, idx, micro, trial, "cpu", make_scaler("fp32", "cpu"), "fp32")
        grads.append(gradient(model))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-6)


def test_the_lr_schedule_advances_once_per_optimizer_step_not_per_micro_batch(mnist_yaml):
    trial = digits_trial(mnist_yaml, DETERMINISTIC, batch_size=16, grad_accum_steps=4, optimizer="sgd")
    data, model, opt, sched, gen = fresh(trial)
    n = len(data.train_y)
    assert steps_per_epoch(trial, n) == -(-n // 64)
    train_epoch(model, data, opt, sched, trial, gen, "cpu")
    assert sched.last_epoch == steps_per_epoch(trial, n)


def test_clipping_bounds_the_global_gradient_norm(mnist_yaml):
    norms = {}
    for clip in (None, 0.05):
        trial = digits_trial(mnist_yaml, DETERMINISTIC, optimizer="sgd", lr=1e-4, grad_clip_norm=clip)
        data, model, opt, sched, gen = fresh(trial)
        train_epoch(model, data, opt, sched, trial, gen, "cpu")
        norms[clip] = global_norm(model)  # the last step's gradient, as the optimizer used it
    assert norms[None] > 0.05, "the test needs gradients larger than the clip norm"
    assert norms[0.05] == pytest.approx(0.05, rel=1e-4)


def test_bf16_autocast_runs_on_cpu_and_trains(mnist_yaml):
    trial = digits_trial(mnist_yaml, DETERMINISTIC, precision="bf16", lr=3e-3)
    data, model, opt, sched, gen = fresh(trial)
    dtypes = set()
    model[-1].register_forward_hook(lambda mod, inp, out: dtypes.add(out.dtype))
    before = evaluate(model, data, trial, "cpu")["val_accuracy"]
    losses = [train_epoch(model, data, opt, sched, trial, gen, "cpu") for _ in range(3)]
    after = evaluate(model, data, trial, "cpu")["val_accuracy"]
    assert dtypes == {torch.bfloat16}, "the forward pass did not run in bf16"
    assert all(p.dtype == torch.float32 for p in model.parameters()), "master weights stay fp32"
    assert losses[-1] < losses[0] and after > max(before, 0.8)


def test_fp16_without_cuda_falls_back_to_bf16_with_a_warning():
    with pytest.warns(UserWarning, match="fp16 needs a CUDA device"):
        assert resolve_precision("fp16", "cpu") == "bf16"
    assert not make_scaler("bf16", "cpu").is_enabled()


def test_the_checkpoint_keeps_the_loss_scale(mnist_yaml, tmp_path):
    trial = digits_trial(mnist_yaml, DETERMINISTIC)
    _, model, opt, sched, gen = fresh(trial)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)  # an enabled scaler, as fp16 on CUDA has
    scaler.scale(torch.ones(()))  # the scale exists once a loss has been scaled
    scaler.update(new_scale=256.0)
    save_checkpoint(str(tmp_path), model, opt, sched, 1, gen, scaler)
    restored = torch.amp.GradScaler("cpu")
    assert restore_checkpoint(_Dir(str(tmp_path)), model, opt, sched, gen, restored) == 1
    assert restored.get_scale() == 256.0
