"""What the three explorers share: a figure outside pyplot, blitting, one image encoder, tables.

An explorer answers a slider move in milliseconds by drawing only what moves. Its figure lives
outside pyplot (nothing is shown twice in a notebook); what stays put (a photo, axes, a legend)
is drawn once per background and its pixels are saved; an update restores those pixels, draws the
moving artists over them and encodes the result for an ``ipywidgets.Image``. No ``ipympl`` is
needed: it works in JupyterLab 4 with ipywidgets 8 as installed.

- :class:`Canvas`: the figure, its saved backgrounds and the blitted pixels;
- :func:`encode_image`: (H, W, 3) pixels as PNG (:func:`png_bytes`) or JPEG;
- :func:`box_outlines`, :func:`outline_effect`, :func:`add_legend`: drawing boxes so they show on
  any photo, and the legends' common look;
- :func:`html_table`, :func:`error_html`: the numbers under a picture, in one table style that
  reads in JupyterLab's light and dark themes;
- :func:`check_choice`, :func:`image_index`, :func:`merged_params`: checks on
  slider values, naming the parameter;
- :func:`one_thread`: torch on one thread for an update's small tensors.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Hashable, Iterable, Sequence
from contextlib import contextmanager

import numpy as np
import torch
from matplotlib.figure import Figure

IMAGE_FORMATS = ("png", "jpeg")
JPEG_QUALITY = 90
# Okabe-Ito colours, told apart also by readers with a red-green colour deficiency.
PALETTE = {
    "green": "#009E73", "orange": "#E69F00", "sky blue": "#56B4E9", "blue": "#0072B2",
    "vermillion": "#D55E00", "yellow": "#F0E442", "pink": "#CC79A7", "black": "#000000",
}
OUTLINE_COLOUR = "black"  # the rim around a box or a line, so it shows on light and dark pixels


# ----------------------------------------------------------------------------- checks


def check_choice(name: str, value, choices: Sequence) -> None:
    """ValueError naming `name` unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name}={value!r}: expected one of {tuple(choices)}")


def image_index(image, names: Sequence[str]) -> int:
    """The index of an explorer's image given by index or by name; ValueError naming `image` otherwise."""
    if isinstance(image, str):
        if image not in names:
            shown = list(names[:3]) + (["..."] if len(names) > 3 else [])
            raise ValueError(f"image={image!r}: expected one of the names {shown}")
        return list(names).index(image)
    if isinstance(image, bool) or not isinstance(image, (int, np.integer)) or not 0 <= image < len(names):
        raise ValueError(f"image={image!r}: expected an index in [0, {len(names)}) or a name")
    return int(image)


def merged_params(current: dict, changes: dict) -> dict:
    """An explorer's parameters after `changes`; ValueError naming any parameter it does not have."""
    unknown = set(changes) - set(current)
    if unknown:
        raise ValueError(f"unknown parameters {sorted(unknown)}: expected some of {sorted(current)}")
    return {**current, **changes}


@contextmanager
def one_thread():
    """Run torch on one thread: an update works on tensors of a few hundred thousand elements at
    most, where a parallel region gains nothing and, on a busy machine, can wait many milliseconds
    for a second thread to be scheduled (measured: 2 ms on one thread, 100 ms on two)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- encoding


def png_bytes(pixels: np.ndarray) -> bytes:
    """Encode (H, W, 3) uint8 pixels as PNG: unfiltered rows, zlib level 1.

    Several times faster than Pillow's PNG writer (which tries a filter per row) on a plot's
    flat colours, at about the same size; an explorer update spends most of its time here.
    """
    height, width, _ = pixels.shape
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # a 0 byte (filter "none") per row
    rows[:, 1:] = pixels.reshape(height, 3 * width)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
        + chunk(b"IEND", b"")
    )


def encode_image(pixels: np.ndarray, image_format: str = "png") -> bytes:
    """(H, W, 3) uint8 pixels as PNG (:func:`png_bytes`) or JPEG (Pillow, quality 90) bytes."""
    check_choice("image_format", image_format, IMAGE_FORMATS)
    if image_format == "png":
        return png_bytes(np.ascontiguousarray(pixels))
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- the canvas


class Canvas:
    """A matplotlib figure outside pyplot, with saved backgrounds to blit the moving artists over.

    ``save(key)`` draws the whole figure (artists marked animated are left out) and keeps its
    pixels under `key` (an image index, or None for a single background); ``pixels(key, artists)``
    restores them and draws `artists` on top, giving (H, W, 3) uint8 pixels.
    """

    def __init__(self, figsize: tuple[float, float], dpi: float, **figure_kwargs) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        self.fig = Figure(figsize=figsize, dpi=dpi, **figure_kwargs)
        FigureCanvasAgg(self.fig)
        self._backgrounds: dict[Hashable, object] = {}

    def has(self, key: Hashable = None) -> bool:
        return key in self._backgrounds

    def save(self, key: Hashable = None) -> None:
        """Draw everything that is not animated and keep the pixels as background `key`."""
        self.fig.canvas.draw()
        self._backgrounds[key] = self.fig.canvas.copy_from_bbox(self.fig.bbox)

    def pixels(self, key: Hashable, artists: Iterable) -> np.ndarray:
        """Background `key` with `artists` drawn over it: (H, W, 3) uint8 (a view; copy to keep it)."""
        canvas = self.fig.canvas
        canvas.restore_region(self._backgrounds[key])
        for artist in artists:
            self.fig.draw_artist(artist)
        return np.asarray(canvas.buffer_rgba())[..., :3]


# ----------------------------------------------------------------------------- drawing


def box_outlines(boxes_xyxy) -> np.ndarray:
    """(N, 4) xyxy boxes -> (N, 5, 2) closed outlines for a LineCollection."""
    b = np.asarray(boxes_xyxy, dtype=float).reshape(-1, 4)
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    return np.stack([np.stack(p, axis=1) for p in ((x1, y1), (x2, y1), (x2, y2), (x1, y2), (x1, y1))], axis=1)


def outline_effect(width: float = 4.0) -> list:
    """Path effects that draw a line over a black rim `width` points wide."""
    from matplotlib import patheffects

    return [patheffects.Stroke(linewidth=width, foreground=OUTLINE_COLOUR), patheffects.Normal()]


def add_legend(fig_or_ax, handles: Sequence, **kwargs) -> None:
    """A legend in the explorers' common look (below the picture, opaque); kwargs override."""
    options = {"loc": "lower center", "fontsize": 8, "ncols": 2, "framealpha": 1.0, "facecolor": "#E8E8E8"}
    fig_or_ax.legend(handles=list(handles), **{**options, **kwargs})


# ----------------------------------------------------------------------------- tables

# One style for the numbers under every explorer. Colours are inherited from the page (JupyterLab's
# light or dark theme) except a thin rule in a grey that shows on both; headers wrap between words,
# never into their neighbours.
_TABLE = "border-collapse: collapse; margin: 4px 0; font-size: 12px; font-variant-numeric: tabular-nums"
_CELL = "padding: 2px 10px; text-align: right; vertical-align: bottom"
_HEAD = _CELL + "; font-weight: bold; white-space: normal; max-width: 12em; border-bottom: 1px solid #888"
_ROW_HEAD = "padding: 2px 10px; text-align: left; font-weight: bold; white-space: nowrap"


def html_table(header: Sequence[str], rows: Sequence[Sequence[str]], caption: str | None = None) -> str:
    """An HTML table: `header` cells over `rows` of cells (HTML strings); each row's first cell
    names the row. Every header is a cell of its own, padded, right-aligned over its numbers."""
    head = "".join(f"<th style='{_HEAD}{'; text-align: left' if i == 0 else ''}'>{cell}</th>"
                   for i, cell in enumerate(header))  # the first column names the rows: left-aligned
    body = "".join(
        "<tr>" + "".join(f"<td style='{_ROW_HEAD if i == 0 else _CELL}'>{cell}</td>" for i, cell in enumerate(row))
        + "</tr>" for row in rows)
    title = f"<caption style='caption-side: top; text-align: left; padding: 2px 0'>{caption}</caption>" if caption else ""
    return f"<table style='{_TABLE}'>{title}<tr>{head}</tr>{body}</table>"


def coloured(text: str, colour: str, bold: bool = True) -> str:
    """`text` in `colour` (bold by default), for a state or a count in a table cell."""
    return f"<span style='color:{colour}'>{'<b>' + text + '</b>' if bold else text}</span>"


def error_html(error: Exception) -> str:
    """A widget's message for a rejected slider value: what is wrong, the last picture kept."""
    import html

    return f"<span style='color:{PALETTE['vermillion']}'>{html.escape(str(error))}</span>"
