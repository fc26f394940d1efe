import torch

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
