"""How a run's training went (serlib.model_pages.training_status) and the best epoch when losses go NaN."""
from types import SimpleNamespace

from serlib.model_pages import training_status
from serlib.training.fitting import _best_epoch

NAN = float("nan")
SPREAD = [[3, 1], [1, 3]]      # two labels predicted
ONE_LABEL = [[4, 0], [4, 0]]   # every clip called the first emotion


def _run(loss, val_loss, *, weights="last epoch", best=None, confusion=SPREAD):
    return SimpleNamespace(history={"loss": loss, "val_loss": val_loss},
                           info={"weights": weights, "best_epoch": best}, metrics={"confusion": confusion})


def test_finite_training_reports_first_last_and_highest_loss():
    status = training_status(_run([2.0, 3.5, 1.25], [2.1, 2.0, 1.9]))
    assert status == "stayed finite (training loss 2.00 in the first epoch, 1.25 in the last, 3.5 at its highest)"


def test_divergence_after_a_checkpoint_names_the_kept_epoch():
    run = _run([2.0, 1.5, NAN, NAN], [2.0, 1.4, NAN, NAN], weights="best epoch by val_loss (checkpoint)", best=2)
    status = training_status(run)
    assert status.startswith("diverged in epoch 3 of 4")
    assert "a checkpoint had kept the weights of epoch 2" in status and "meaningless" not in status
    assert "same label" not in status


def test_divergence_with_the_final_weights_is_called_meaningless_and_a_collapse_is_named():
    run = _run([2.0, float("inf"), NAN], [2.0, 2.0, NAN], confusion=ONE_LABEL)
    status = training_status(run)
    assert status.startswith("diverged in epoch 2 of 3")
    assert "final weights" in status and "meaningless" in status
    assert status.endswith("the model gives every test clip the same label")


def test_a_validation_loss_alone_going_nan_counts_and_early_stopping_is_named():
    run = _run([2.0, 1.5, 1.2], [2.0, NAN, NAN], weights="best epoch by val_loss (early stopping)", best=1)
    assert training_status(run).startswith("diverged in epoch 2 of 3")
    assert "early stopping had kept the weights of epoch 1" in training_status(run)


def test_best_epoch_skips_nan_and_is_none_when_nothing_is_finite():
    assert _best_epoch({"val_loss": [2.0, 1.0, NAN, 0.5]}, "val_loss") == 4
    assert _best_epoch({"val_loss": [2.0, NAN, 3.0]}, "val_loss") == 1           # argmin alone would pick the NaN
    assert _best_epoch({"val_accuracy": [0.2, NAN, 0.3]}, "val_accuracy") == 3
    assert _best_epoch({"val_loss": [NAN, NAN]}, "val_loss") is None
    assert _best_epoch({}, "val_loss") is None
