import io
import re

import numpy as np
import pytest
from matplotlib.collections import LineCollection
from PIL import Image

from retina_lessons.explorers.canvas import (
    Canvas,
    add_legend,
    box_outlines,
    check_choice,
    encode_image,
    error_html,
    html_table,
    png_bytes,
)


def test_png_bytes_round_trip():
    pixels = np.random.default_rng(0).integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(png_bytes(pixels))))
    np.testing.assert_array_equal(decoded, pixels)


def test_encode_image_png_is_lossless_and_jpeg_is_close():
    pixels = np.zeros((16, 24, 3), dtype=np.uint8)
    pixels[4:12, 6:18] = (0, 158, 115)
    png = Image.open(io.BytesIO(encode_image(pixels, "png")))
    jpeg = Image.open(io.BytesIO(encode_image(pixels, "jpeg")))
    assert png.format == "PNG" and jpeg.format == "JPEG"
    np.testing.assert_array_equal(np.asarray(png), pixels)
    assert np.abs(np.asarray(jpeg).astype(int) - pixels).mean() < 4


def test_encode_image_accepts_a_strided_view():
    rgba = np.random.default_rng(1).integers(0, 256, size=(5, 6, 4), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(encode_image(rgba[..., :3]))))
    np.testing.assert_array_equal(decoded, rgba[..., :3])


@pytest.mark.parametrize("bad", ["gif", "PNG", None])
def test_encode_image_names_the_format(bad):
    with pytest.raises(ValueError, match=r"image_format=.*expected one of \('png', 'jpeg'\)"):
        encode_image(np.zeros((2, 2, 3), dtype=np.uint8), bad)


def test_check_choice():
    check_choice("level", 3, (3, 4))
    with pytest.raises(ValueError, match=r"level=9: expected one of \(3, 4\)"):
        check_choice("level", 9, (3, 4))


def test_box_outlines_close_each_box():
    outlines = box_outlines([[1, 2, 5, 8], [0, 0, 1, 1]])
    assert outlines.shape == (2, 5, 2)
    np.testing.assert_array_equal(outlines[0], [[1, 2], [5, 2], [5, 8], [1, 8], [1, 2]])
    assert box_outlines(np.zeros((0, 4))).shape == (0, 5, 2)


def test_blitted_pixels_equal_a_full_draw():
    canvas = Canvas((2.0, 2.0), dpi=50)
    ax = canvas.fig.add_axes((0.1, 0.1, 0.8, 0.8))
    ax.set_xlim(0, 10)
    ax.set_ylim(10, 0)
    moving = LineCollection(list(box_outlines([[2, 2, 6, 7]])), colors="red", animated=True)
    ax.add_collection(moving)
    canvas.save()
    assert canvas.has() and not canvas.has("other")
    blitted = canvas.pixels(None, [moving]).copy()
    moving.set_animated(False)
    canvas.fig.canvas.draw()
    full = np.asarray(canvas.fig.canvas.buffer_rgba())[..., :3]
    np.testing.assert_array_equal(blitted, full)
    moving.set_segments(list(box_outlines([[1, 1, 3, 3]])))
    moving.set_animated(True)
    assert not np.array_equal(canvas.pixels(None, [moving]), blitted)  # the background stays, the box moves


def test_add_legend_takes_overrides():
    from matplotlib.lines import Line2D

    canvas = Canvas((2.0, 2.0), dpi=50)
    add_legend(canvas.fig, [Line2D([], [], label="a"), Line2D([], [], label="b")], ncols=1)
    (legend,) = canvas.fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["a", "b"]


def test_html_table_keeps_every_header_in_its_own_padded_cell():
    html = html_table(["", "FP: duplicate", "FP: wrong class"], [["this image", "1", "2"], ["all", "3", "4"]])
    headers = re.findall(r"<th style='([^']*)'>([^<]*)</th>", html)
    assert [text for _, text in headers] == ["", "FP: duplicate", "FP: wrong class"]
    assert all("padding" in style and "white-space: normal" in style for style, _ in headers)
    assert html.count("<tr>") == 3 and html.count("<td") == 6
    assert "color:" not in html.split("<tr>")[0]  # text colour comes from the page's theme


def test_error_html_escapes_the_message():
    assert "&lt;b&gt;" in error_html(ValueError("x=<b>: expected a number"))
