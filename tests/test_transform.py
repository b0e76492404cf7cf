"""Preprocessing against torchvision's GeneralizedRCNNTransform."""

import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from retina_lessons.transform import postprocess_boxes, preprocess


def test_batch_sizes_and_targets_equal_torchvision():
    generator = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 241, 333, generator=generator), torch.rand(3, 300, 199, generator=generator)]
    targets = [{"boxes": torch.tensor([[10.0, 20, 100, 150]]), "labels": torch.tensor([1])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64)}]
    tv = GeneralizedRCNNTransform(320, 480, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]).eval()
    image_list, tv_targets = tv(images, [dict(t) for t in targets])
    batch, sizes, new_targets = preprocess(images, targets, min_size=320, max_size=480)
    torch.testing.assert_close(batch, image_list.tensors, rtol=0, atol=0)
    assert batch.shape[-1] % 32 == 0 and batch.shape[-2] % 32 == 0
    assert sizes == [tuple(s) for s in image_list.image_sizes]
    for ours, theirs in zip(new_targets, tv_targets):
        torch.testing.assert_close(ours["boxes"], theirs["boxes"])


def test_an_image_already_at_size_is_not_resampled():
    image = torch.rand(3, 128, 128)
    batch, sizes, _ = preprocess([image], min_size=128, max_size=128)
    assert sizes == [(128, 128)]
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    torch.testing.assert_close(batch[0], (image - mean) / std)


def test_boxes_map_back_to_the_original_pixels():
    detections = [{"boxes": torch.tensor([[32.0, 16, 64, 48]])}]
    back = postprocess_boxes(detections, [(64, 128)], [(128, 256)])
    torch.testing.assert_close(back[0]["boxes"], torch.tensor([[64.0, 32, 128, 96]]))
