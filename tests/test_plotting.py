"""The drawing helpers put images, boxes and feature maps where the image's pixels are."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from retina_lessons import plotting


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def test_to_display_is_hwc_and_clipped():
    image = torch.tensor([-1.0, 0.5, 2.0]).reshape(3, 1, 1).expand(3, 2, 4)
    shown = plotting.to_display(image)
    assert shown.shape == (2, 4, 3)
    np.testing.assert_allclose(shown[0, 0], [0.0, 0.5, 1.0])


def test_to_display_rejects_a_non_rgb_tensor():
    with pytest.raises(ValueError, match=r"image: expected shape \(3, H, W\), got \(1, 4, 4\)"):
        plotting.to_display(torch.zeros(1, 4, 4))


def test_show_image_uses_pixel_coordinates_or_the_given_size(ax):
    plotting.show_image(ax, torch.rand(3, 6, 4), title="photo")
    assert ax.images[0].get_extent() == [0, 4, 6, 0]
    assert ax.get_title() == "photo" and "pixels" in ax.get_xlabel()
    plotting.show_image(ax, torch.rand(3, 6, 4), size=(12, 8))
    assert ax.images[1].get_extent() == [0, 8, 12, 0]


def test_draw_boxes_draws_one_rectangle_per_box_with_labels(ax):
    boxes = torch.tensor([[1.0, 2.0, 5.0, 8.0], [0.0, 0.0, 3.0, 3.0]])
    patches = plotting.draw_boxes(ax, boxes, labels=["a", "b"])
    assert len(patches) == 2
    assert patches[0].get_xy() == (1.0, 2.0)
    assert (patches[0].get_width(), patches[0].get_height()) == (4.0, 6.0)
    assert [t.get_text() for t in ax.texts] == ["a", "b"]
    assert plotting.draw_boxes(ax, torch.zeros(0, 4)) == []


def test_draw_boxes_rejects_bad_input(ax):
    with pytest.raises(ValueError, match=r"boxes: expected shape \(M, 4\)"):
        plotting.draw_boxes(ax, torch.zeros(4))
    with pytest.raises(ValueError, match="labels: expected 1 labels"):
        plotting.draw_boxes(ax, torch.zeros(1, 4) + torch.tensor([0.0, 0.0, 1.0, 1.0]), labels=["a", "b"])


def test_normalize_map_spans_zero_to_one_and_handles_constant_maps():
    scaled = plotting.normalize_map(torch.tensor([[2.0, 4.0], [6.0, 10.0]]))
    torch.testing.assert_close(scaled, torch.tensor([[0.0, 0.25], [0.5, 1.0]]))
    assert torch.equal(plotting.normalize_map(torch.full((3, 3), 7.0)), torch.zeros(3, 3))
    with pytest.raises(ValueError, match=r"feature_map: expected shape \(H, W\)"):
        plotting.normalize_map(torch.zeros(1, 3, 3))


def test_show_map_covers_the_map_times_its_stride(ax):
    shown = plotting.show_map(ax, torch.rand(5, 3), stride=16, title="P4")
    assert shown.get_extent() == [0, 3 * 16, 5 * 16, 0]
    assert ax.get_title() == "P4"


def test_feature_map_grid_has_a_column_per_level_and_a_row_per_channel():
    maps = [torch.rand(1, 4, 8, 6), torch.rand(1, 4, 4, 3)]
    fig = plotting.feature_map_grid(maps, strides=(8, 16), names=("C3", "C4"), channels=(0, 2))
    axes = np.array(fig.axes).reshape(2, 2)
    assert axes[0, 0].get_title() == "C3: 8 x 6, stride 8"
    assert axes[0, 1].images[0].get_extent() == [0, 48, 64, 0]
    assert [t.get_text() for t in axes[1, 1].texts] == ["channel 2"]
    plt.close(fig)

    fig = plotting.feature_map_grid(maps, strides=(8, 16), names=("C3", "C4"), channels=[[1], [3]])
    assert [t.get_text() for ax in fig.axes for t in ax.texts] == ["channel 1", "channel 3"]
    plt.close(fig)


def test_feature_map_grid_rejects_mismatched_arguments():
    maps = [torch.rand(2, 4, 4)]
    with pytest.raises(ValueError, match="expected equal lengths"):
        plotting.feature_map_grid(maps, strides=(8, 16), names=("C3",))
    with pytest.raises(ValueError, match="channels: expected"):
        plotting.feature_map_grid(maps, strides=(8,), names=("C3",), channels=[[0], [1]])
