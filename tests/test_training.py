import pytest
import torch

from bench.errors import StoreError
from models.pgd import pgd_linf
from models.spec import AdversarialTraining, TrainConfig, make_spec
from models.training import train_model

TINY = TrainConfig(epochs=1, n_train=256, batch_size=64, seed=5)


def test_training_is_deterministic_for_a_seed(mnist_test):
    train, test = mnist_test.subset(256, seed=0), mnist_test.subset(50, seed=1)
    spec = make_spec("mnist", "lmcl", "cnn", TINY)
    a = train_model(spec, train, test, progress=False).network.state_dict()
    b = train_model(spec, train, test, progress=False).network.state_dict()
    c = train_model(spec.with_train(seed=6), train, test, progress=False).network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_pgd_stays_in_the_eps_ball_and_the_pixel_box(mnist_small):
    spec = make_spec("mnist", "O:SOFTMAX:CE", "cnn", TINY)
    from models.network import build_loss, build_network

    torch.manual_seed(0)
    network, loss = build_network(spec, (1, 28, 28), 10), build_loss(spec)
    x, y = mnist_small.x[:16], mnist_small.y[:16]
    x_adv = pgd_linf(network, loss, x, y, eps=0.1, eps_step=0.03, max_iter=5)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert loss.per_example(network(x_adv), y).sum() > loss.per_example(network(x), y).sum()


def test_adversarial_training_runs_and_records_its_settings(mnist_test):
    adv = AdversarialTraining(eps=0.3, eps_step=0.1, max_iter=2)
    spec = make_spec("mnist", "hinge", "cnn", TrainConfig(epochs=1, n_train=128, batch_size=64, adversarial=adv))
    result = train_model(spec, mnist_test.subset(128, seed=0), mnist_test.subset(50, seed=1), progress=False)
    assert spec.name == "mnist/cnn+pgd_at/hinge"
    assert 0.0 <= result.clean_accuracy <= 1.0 and len(result.history) == 1


def test_densenet_trains_on_28_and_32_pixel_inputs():
    from models.network import build_network

    for shape in ((1, 28, 28), (3, 32, 32)):
        spec = make_spec("mnist", "R:TANH:MSE", "densenet", TINY, densenet_depth=10, densenet_growth=4)
        network = build_network(spec, shape, 10)
        assert network(torch.rand(2, *shape)).shape == (2, 10)
        assert network.raw_outputs(torch.rand(2, *shape)).shape == (2, 128)


def test_small_cnn_is_wong_et_als_network_under_a_zoo_head_and_as_a_whole_classifier(mnist_test):
    from models.architectures import small_cnn_classifier
    from models.network import build_network

    spec = make_spec("mnist", "hinge", "small_cnn", TINY)
    network = build_network(spec, (1, 28, 28), 10)
    # conv 4x4x16 stride 2, conv 4x4x32 stride 2, FC 1568 -> 100: Wong et al.'s layer shapes and parameter count
    assert sum(p.numel() for p in network.backbone.parameters()) == (16 * 16 + 16) + (32 * 16 * 16 + 32) + (
        32 * 7 * 7 * 100 + 100
    )
    assert network(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    whole = small_cnn_classifier()
    assert [tuple(p.shape) for p in whole.parameters()] == [tuple(p.shape) for p in network.backbone.parameters()] + [
        (10, 100),
        (10,),
    ]
    result = train_model(spec, mnist_test.subset(128, seed=0), mnist_test.subset(50, seed=1), progress=False)
    assert spec.name == "mnist/small_cnn/hinge" and 0.0 <= result.clean_accuracy <= 1.0


def test_an_interrupted_training_resumes_to_the_same_weights(mnist_test, tmp_path, monkeypatch):
    """A PGD training killed after its 5th step (of 2 epochs x 4) resumes from its checkpoint, mid-epoch and
    with the generator that draws PGD's random starts, and ends bit-identical to one never interrupted."""
    from models import checkpoint, training

    adv = AdversarialTraining(eps=0.3, eps_step=0.1, max_iter=2)
    spec = make_spec("mnist", "O:SOFTMAX:CE", "cnn", TrainConfig(epochs=2, n_train=128, batch_size=32, adversarial=adv))
    train, test = mnist_test.subset(128, seed=0), mnist_test.subset(50, seed=1)
    whole = train_model(spec, train, test, progress=False)

    real_save, saved_at = checkpoint.save, []

    def save_then_die(folder, key, network, optimizer, generator, order, progress):
        real_save(folder, key, network, optimizer, generator, order, progress)
        saved_at.append((progress.epoch, progress.batch))
        if len(saved_at) == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(training.checkpoint, "save", save_then_die)
    folder = tmp_path / "resume"
    with pytest.raises(KeyboardInterrupt):
        train_model(spec, train, test, progress=False, checkpoint_dir=folder, checkpoint_every=0)
    assert saved_at[-1] == (1, 1)  # killed inside the second epoch
    monkeypatch.setattr(training.checkpoint, "save", real_save)
    resumed = train_model(spec, train, test, progress=False, checkpoint_dir=folder, checkpoint_every=0)
    a, b = whole.network.state_dict(), resumed.network.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.history == whole.history and resumed.curve == whole.curve
    assert resumed.clean_accuracy == whole.clean_accuracy


def test_a_checkpoint_of_another_configuration_is_refused(mnist_test, tmp_path):
    spec = make_spec("mnist", "O:SOFTMAX:CE", "cnn", TrainConfig(epochs=2, n_train=64, batch_size=32))
    train, test = mnist_test.subset(64, seed=0), mnist_test.subset(20, seed=1)
    folder = tmp_path / "resume"
    from models import checkpoint
    from models import network as net_module

    torch.manual_seed(0)
    network = net_module.build_network(spec, (1, 28, 28), 10)
    optimizer = torch.optim.Adam(network.parameters())
    checkpoint.save(
        folder, "another-key", network, optimizer, torch.Generator(), torch.arange(3), checkpoint.Progress()
    )
    with pytest.raises(StoreError, match="another configuration"):
        train_model(spec, train, test, progress=False, checkpoint_dir=folder)
