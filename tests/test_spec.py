import re

import pytest

from bench.errors import ConfigError, UnknownNameError
from models.codebook import DEFAULT_KEY, make_codebook
from models.spec import AdversarialTraining, ModelSpec, TrainConfig, make_spec


def test_papers_names_and_aliases_give_the_same_spec():
    assert make_spec("mnist", "softmax_ce") == make_spec("mnist", "O:SOFTMAX:CE")
    assert make_spec("MNIST", "tanh_mse").model == "R:TANH:MSE"


def test_vu2018_lmcl_names_set_s_and_m():
    spec = make_spec("mnist", "lmcl_s10_m1.11")
    assert (spec.model, spec.lmcl_s, spec.lmcl_m) == ("lmcl", 10.0, 1.11)
    assert spec.loss_label == "lmcl_s10_m1.11"


def test_key_is_stable_and_changes_with_any_setting():
    base = make_spec("mnist", "O:SOFTMAX:CE")
    assert base.key() == make_spec("mnist", "O:SOFTMAX:CE").key()
    others = [
        make_spec("fashion_mnist", "O:SOFTMAX:CE"),
        make_spec("mnist", "O:SOFTMAX:MSE"),
        make_spec("mnist", "O:SOFTMAX:CE", "densenet"),
        base.with_train(seed=1),
        base.with_train(adversarial=AdversarialTraining()),
    ]
    assert len({base.key(), *(s.key() for s in others)}) == 1 + len(others)


def test_spec_round_trips_through_a_dict():
    spec = make_spec("mnist", "lmcl", train=TrainConfig(adversarial=AdversarialTraining(max_iter=7)))
    assert ModelSpec.from_dict(spec.to_dict()) == spec


def test_codebook_depends_only_on_the_key():
    a = make_codebook("secret", 10, 128)
    assert a.shape == (10, 128) and a.min() >= -1 and a.max() <= 1
    assert (make_codebook("secret", 10, 128) == a).all()
    assert not (make_codebook("other", 10, 128) == a).all()


def test_codebook_key_never_appears_in_the_spec():
    spec = make_spec("mnist", "R:TANH:MSE", codebook_key="hunter2-very-secret")
    assert "hunter2-very-secret" not in str(spec.to_dict())
    assert spec.codebook_default_key is False
    assert spec.codebook != make_spec("mnist", "R:TANH:MSE").codebook
    assert make_spec("mnist", "R:TANH:MSE", codebook_key=DEFAULT_KEY).codebook_default_key is True


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"model": "R:TANH:MSE", "codeword_length": 8}, "codeword length 8 is below the number of classes"),
        ({"model": "lmcl", "lmcl_s": -1.0}, "LMCL scale s=-1.0"),
        ({"model": "O:SOFTMAX:CE", "arch": "densenet", "densenet_depth": 23}, "depth 23 must be 6n + 4"),
    ],
)
def test_impossible_model_settings_are_refused(kwargs, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        make_spec("mnist", **kwargs)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: TrainConfig(lr=-0.1), "lr=-0.1 must be a positive"),
        (lambda: TrainConfig(epochs=0), "epochs=0"),
        (lambda: AdversarialTraining(eps=1.2), r"eps=1.2 is outside \[0, 1\]"),
        (lambda: AdversarialTraining(eps=-0.1), r"eps=-0.1 is outside \[0, 1\]"),
        (lambda: AdversarialTraining(max_iter=0), "max_iter=0"),
    ],
)
def test_impossible_training_settings_are_refused(make, fragment):
    with pytest.raises(ConfigError, match=fragment):
        make()


def test_unknown_model_and_architecture_list_the_valid_names():
    with pytest.raises(UnknownNameError, match="O:SOFTMAX:CE, O:SOFTMAX:MSE, R:TANH:MSE, hinge, lmcl"):
        make_spec("mnist", "softmax")
    with pytest.raises(UnknownNameError, match="expected one of: cnn, small_cnn, densenet"):
        make_spec("mnist", "O:SOFTMAX:CE", "resnet")
