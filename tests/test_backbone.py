"""Backbone taps, frozen BatchNorm, trainable stages, and weights that load only when asked."""

import pytest
import torch
import torchvision
from torchvision.models.feature_extraction import create_feature_extractor
from torchvision.ops.misc import FrozenBatchNorm2d as TVFrozenBatchNorm2d

from retina_lessons.backbone import FrozenBatchNorm2d, ResNetTaps, load_imagenet_weights


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_taps_are_the_stage_outputs(name):
    taps = ResNetTaps(name).eval()
    reference = getattr(torchvision.models, name)(weights=None, norm_layer=TVFrozenBatchNorm2d)
    reference.load_state_dict(taps.state_dict(), strict=False)
    extractor = create_feature_extractor(reference, {"layer2": "c3", "layer3": "c4", "layer4": "c5"})
    x = torch.randn(1, 3, 96, 128)
    expected = extractor(x)
    c3, c4, c5 = taps(x)
    for got, key, stride in ((c3, "c3", 8), (c4, "c4", 16), (c5, "c5", 32)):
        torch.testing.assert_close(got, expected[key])
        assert got.shape[-2:] == (96 // stride, 128 // stride)
    assert [c3.shape[1], c4.shape[1], c5.shape[1]] == list(taps.out_channels)


def test_frozen_batchnorm_equals_torchvision_and_has_no_parameters():
    ours, theirs = FrozenBatchNorm2d(8), TVFrozenBatchNorm2d(8)
    for buffer in ("weight", "bias", "running_mean", "running_var"):
        value = torch.rand(8) + 0.5
        getattr(ours, buffer).copy_(value)
        getattr(theirs, buffer).copy_(value)
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(ours(x), theirs(x))
    assert list(ours.parameters()) == []


def test_a_training_step_changes_no_frozen_batchnorm_value():
    taps = ResNetTaps("resnet18", trainable_layers=5)
    before = {k: v.clone() for k, v in taps.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in taps.parameters() if p.requires_grad], lr=0.1)
    sum(c.mean() for c in taps(torch.randn(2, 3, 64, 64))).backward()
    optimizer.step()
    after = taps.state_dict()
    bn_keys = [k for k in before if "bn" in k or "downsample.1" in k]
    assert bn_keys and all(torch.equal(before[k], after[k]) for k in bn_keys)
    assert not torch.equal(before["layer4.0.conv1.weight"], after["layer4.0.conv1.weight"])


@pytest.mark.parametrize("trainable, first_trained", [(0, None), (1, "layer4"), (3, "layer2"), (5, "conv1")])
def test_trainable_layers(trainable, first_trained):
    taps = ResNetTaps("resnet18", trainable_layers=trainable)
    trained = {name.split(".")[0] for name, p in taps.named_parameters() if p.requires_grad}
    order = ["conv1", "layer1", "layer2", "layer3", "layer4"]
    expected = set() if first_trained is None else set(order[order.index(first_trained):])
    assert trained == expected


def test_trainable_norms_are_available_for_training_from_scratch():
    assert any(isinstance(m, torch.nn.GroupNorm) for m in ResNetTaps("resnet18", norm="group").modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in ResNetTaps("resnet18", norm="bn").modules())


def test_imagenet_weights_fail_offline_with_a_clear_message(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(RuntimeError, match="without internet"):
        load_imagenet_weights(ResNetTaps("resnet18"))


@pytest.mark.parametrize("kwargs", [{"name": "vgg16"}, {"trainable_layers": 6}, {"norm": "layer"}])
def test_bad_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        ResNetTaps(**kwargs)
