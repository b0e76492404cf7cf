"""Boundary cases of the COCO and VOC loaders: one row per malformed input, with the exception and the
words its message must hold (the file, the entry, the key, what was expected); then the legitimate edge
cases that must keep loading. The everyday bad boxes are in tests/test_datasets.py."""

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from retina_lessons.datasets import CocoDetection, VocDetection

# ----------------------------------------------------------------------------- COCO


def coco_json():
    """Two images (a.png 40x30, b.png 50x20), two categories (ids 7 and 3), three annotations."""
    return {
        "images": [
            {"id": 1, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 2, "file_name": "b.png", "width": 50, "height": 20},
        ],
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
        "annotations": [
            {"id": 10, "image_id": 1, "category_id": 7, "bbox": [1, 2, 10, 5], "iscrowd": 0},
            {"id": 11, "image_id": 1, "category_id": 3, "bbox": [20, 10, 15, 15], "iscrowd": 0},
            {"id": 12, "image_id": 2, "category_id": 3, "bbox": [0, 0, 50, 20], "iscrowd": 0},
        ],
    }


def write_coco(tmp_path, change=None, text=None):
    """The images on disk and instances.json: coco_json() edited by `change`, or `text` (bytes) verbatim."""
    root = tmp_path / "images"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, (width, height) in {"a.png": (40, 30), "b.png": (50, 20)}.items():
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(root / name)
    annotation_file = tmp_path / "instances.json"
    if text is not None:
        annotation_file.write_bytes(text)
    else:
        coco = coco_json()
        if change is not None:
            change(coco)
        annotation_file.write_text(json.dumps(coco))
    return root, annotation_file


def setting(section, index, **fields):
    """A change that sets `fields` of entry `index` of `section`."""
    return lambda coco: coco[section][index].update(fields)


def removing(section, index, key):
    return lambda coco: coco[section][index].pop(key)


def replacing(section, index, value):
    return lambda coco: coco[section].__setitem__(index, value)


def coco_with(**sections):
    return lambda coco: coco.update(sections)


def without(key):
    return lambda coco: coco.pop(key)


# (change to the JSON, exception, words the message must contain): the file's name is checked for every row.
COCO_FILE_CASES = {
    "not JSON (trailing comma)": (b'{"images": [],\n "annotations": [],\n}', ValueError,
                                  ["not valid JSON", "line 3"]),
    "empty file": (b"", ValueError, ["not valid JSON", "line 1"]),
    "not UTF-8": (b'{"images": "\xff\xfe\xfa"}', ValueError, ["cannot be read as JSON text"]),
    "a JSON list": (b"[]", ValueError, ["holds a JSON list", "images, annotations and categories"]),
}

COCO_STRUCTURE_CASES = {
    "no images key": (without("images"), ["no 'images' key", "images, annotations and categories"]),
    "no annotations key": (without("annotations"), ["no 'annotations' key"]),
    "no categories key": (without("categories"), ["no 'categories' key"]),
    "images is an object": (coco_with(images={}), ["'images' is a JSON dict", "expected a list"]),
    "annotations is a string": (coco_with(annotations="none"), ["'annotations' is a JSON str", "list"]),
    "no categories": (coco_with(categories=[]), ["'categories' is empty", "at least one category"]),
    "category without id": (removing("categories", 0, "id"), ["category index 0", "id=None", "integer id"]),
    "category id a string": (setting("categories", 1, id="3"), ["category index 1", "id='3'", "integer id"]),
    "category without name": (removing("categories", 1, "name"), ["category index 1", "name=None",
                                                                  "non-empty string"]),
    "category not an object": (replacing("categories", 0, "dog"), ["category index 0", "'dog'",
                                                                   "expected an object with id and name"]),
    "category id repeats": (setting("categories", 1, id=7), ["category index 1", "id=7 repeats category index 0",
                                                             "unique category ids"]),
    "image id repeats": (setting("images", 1, id=1), ["image id=1 (index 1) repeats image index 0",
                                                      "unique image ids"]),
}

# (change, words): raise by default, dropped and counted with on_invalid="drop" (`kept`: boxes left)
COCO_ENTRY_CASES = {
    "image without id": (removing("images", 0, "id"), ["image index 0 (file_name='a.png')", "id=None",
                                                       "integer image id"], 1, 3),
    "image id a string": (setting("images", 0, id="1"), ["image index 0", "id='1'", "integer image id"], 1, 3),
    "image not an object": (replacing("images", 1, [2, "b.png"]), ["image index 1", "expected an object"], 2, 2),
    "image without file_name": (removing("images", 0, "file_name"), ["image id=1 (index 0)", "file_name=None",
                                                                     "2 annotations dropped with it"], 1, 1),
    "image without width": (removing("images", 0, "width"), ["image id=1 (a.png)", "width=None",
                                                             "positive integer"], 1, 1),
    "image height a string": (setting("images", 1, height="20"), ["image id=2 (b.png)", "height='20'",
                                                                  "positive integer"], 2, 1),
    "image width zero": (setting("images", 1, width=0), ["image id=2", "width=0", "positive integer"], 2, 1),
    "annotation without id": (removing("annotations", 0, "id"), ["annotation id=None (index 0",
                                                                 "integer annotation id"], 2, 1),
    "annotation id repeats": (setting("annotations", 1, id=10), ["annotation id=10 (index 1",
                                                                 "repeats annotation index 0", "unique"], 2, 1),
    "annotation without image_id": (removing("annotations", 2, "image_id"), ["annotation id=12 (index 2",
                                                                             "image_id=None", "integer"], 2, 1),
    "image_id a string": (setting("annotations", 2, image_id="2"), ["annotation id=12", "image_id='2'",
                                                                    "integer image id"], 2, 1),
    "annotation without category_id": (removing("annotations", 0, "category_id"), ["annotation id=10",
                                                                                   "category_id=None",
                                                                                   "known: [3, 7]"], 2, 1),
    "category_id a string": (setting("annotations", 0, category_id="7"), ["annotation id=10", "category_id='7'",
                                                                          "known: [3, 7]"], 2, 1),
    "category_id a float": (setting("annotations", 0, category_id=7.0), ["annotation id=10", "category_id=7.0"],
                            2, 1),
    "annotation without bbox": (removing("annotations", 1, "bbox"), ["annotation id=11", "bbox=None",
                                                                     "[x, y, width, height], four numbers"], 2, 1),
    "bbox an object": (setting("annotations", 1, bbox={"x": 1}), ["annotation id=11", "bbox={'x': 1}",
                                                                  "four numbers"], 2, 1),
    "bbox with a bool": (setting("annotations", 1, bbox=[True, 2, 3, 4]), ["annotation id=11", "bbox=[True",
                                                                           "four numbers"], 2, 1),
    "iscrowd a word": (setting("annotations", 0, iscrowd="yes"), ["annotation id=10", "iscrowd='yes'",
                                                                  "expected 0 or 1"], 2, 1),
    "iscrowd 2": (setting("annotations", 0, iscrowd=2), ["annotation id=10", "iscrowd=2", "expected 0 or 1"], 2, 1),
    "iscrowd null": (setting("annotations", 0, iscrowd=None), ["annotation id=10", "iscrowd=None",
                                                               "expected 0 or 1"], 2, 1),
    "iscrowd a float": (setting("annotations", 0, iscrowd=1.0), ["annotation id=10", "iscrowd=1.0",
                                                                 "true/false"], 2, 1),
    "annotation not an object": (replacing("annotations", 2, 12), ["annotation index 2", "12",
                                                                   "expected an object"], 2, 1),
}


@pytest.mark.parametrize("case", COCO_FILE_CASES)
def test_coco_file_that_is_not_a_coco_json(tmp_path, case):
    text, exception, words = COCO_FILE_CASES[case]
    with pytest.raises(exception, match="instances.json") as error:
        CocoDetection(*write_coco(tmp_path, text=text))
    assert all(word in str(error.value) for word in words), str(error.value)


@pytest.mark.parametrize("case", COCO_STRUCTURE_CASES)
def test_coco_structure_error_raises_even_when_dropping(tmp_path, case):
    change, words = COCO_STRUCTURE_CASES[case]
    for on_invalid in ("raise", "drop"):
        with pytest.raises(ValueError, match="instances.json") as error:
            CocoDetection(*write_coco(tmp_path / on_invalid, change), on_invalid=on_invalid)
        assert all(word in str(error.value) for word in words), str(error.value)


@pytest.mark.parametrize("case", COCO_ENTRY_CASES)
def test_bad_coco_entry_raises_naming_file_entry_and_key(tmp_path, case):
    change, words, _, _ = COCO_ENTRY_CASES[case]
    with pytest.raises(ValueError, match="instances.json") as error:
        CocoDetection(*write_coco(tmp_path, change))
    assert all(word in str(error.value) for word in words), str(error.value)
    assert "on_invalid='drop'" in str(error.value)  # and how to go on without it


@pytest.mark.parametrize("case", COCO_ENTRY_CASES)
def test_bad_coco_entry_dropped_is_counted(tmp_path, case):
    change, words, kept, num_dropped = COCO_ENTRY_CASES[case]
    with pytest.warns(UserWarning, match=f"dropped {num_dropped} invalid") as record:
        dataset = CocoDetection(*write_coco(tmp_path, change), on_invalid="drop")
    assert len(record) == 1 and dataset.num_dropped == num_dropped
    assert all(word in dataset.dropped[0] for word in words), dataset.dropped
    assert sum(len(dataset[i][1]["boxes"]) for i in range(len(dataset))) == kept


def test_coco_missing_annotation_file_and_root(tmp_path):
    root, annotation_file = write_coco(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"absent\.json not found; expected a COCO instances JSON file"):
        CocoDetection(root, tmp_path / "absent.json")
    with pytest.raises(FileNotFoundError, match=r"root='.*nowhere' is not a folder.*instances\.json"):
        CocoDetection(tmp_path / "nowhere", annotation_file)


# ----------------------------------------------------------------------------- COCO, legitimate edge cases


def no_warnings(make):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return make()


def test_coco_empty_annotation_list_gives_images_without_boxes(tmp_path):
    dataset = no_warnings(lambda: CocoDetection(*write_coco(tmp_path, coco_with(annotations=[]))))
    assert len(dataset) == 2 and dataset.num_dropped == 0 and dataset.num_crowd == 0
    assert all(dataset[i][1]["boxes"].shape == (0, 4) for i in range(2))


def test_coco_without_images_is_an_empty_dataset(tmp_path):
    dataset = no_warnings(lambda: CocoDetection(*write_coco(tmp_path, coco_with(images=[], annotations=[]))))
    assert len(dataset) == 0 and dataset.class_names == ["cat", "dog"]


@pytest.mark.parametrize("iscrowd, crowd", [(1, True), (True, True), ("1", True), (" 1", True),
                                            (0, False), (False, False), ("0", False)])
def test_coco_iscrowd_in_every_json_spelling(tmp_path, iscrowd, crowd):
    files = write_coco(tmp_path, setting("annotations", 0, iscrowd=iscrowd))
    dataset = no_warnings(lambda: CocoDetection(*files))
    assert dataset.num_crowd == int(crowd) and dataset.num_dropped == 0
    assert len(dataset[0][1]["boxes"]) == 2 - int(crowd)
    assert len(CocoDetection(*files, include_crowd=True)[0][1]["boxes"]) == 2


def test_coco_annotation_without_iscrowd_is_not_a_crowd(tmp_path):
    dataset = no_warnings(lambda: CocoDetection(*write_coco(tmp_path, removing("annotations", 0, "iscrowd"))))
    assert dataset.num_crowd == 0 and len(dataset[0][1]["boxes"]) == 2


def test_coco_float_box_and_extra_keys_are_fine(tmp_path):
    def change(coco):
        coco["annotations"][0].update(bbox=[1.5, 2.25, 10.0, 5.5], segmentation=[[1, 2, 3, 4]], area=55.0)
        coco["info"] = {"year": 2017}

    _, target = no_warnings(lambda: CocoDetection(*write_coco(tmp_path, change)))[0]
    assert target["boxes"][0].tolist() == [1.5, 2.25, 11.5, 7.75]


def test_coco_several_entries_dropped_are_each_counted(tmp_path):
    def change(coco):
        coco["images"][1].pop("width")  # drops b.png and its one annotation: one entry
        coco["annotations"][0]["iscrowd"] = "maybe"

    with pytest.warns(UserWarning, match="dropped 2 invalid") as record:
        dataset = CocoDetection(*write_coco(tmp_path, change), on_invalid="drop")
    assert len(record) == 1  # one warning for the file
    assert len(dataset) == 1 and dataset.num_dropped == 2
    assert "1 annotations dropped with it" in dataset.dropped[0] and "iscrowd='maybe'" in dataset.dropped[1]


# ----------------------------------------------------------------------------- VOC

VOC_OBJECT = ("<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>1</xmin>"
              "<ymin>1</ymin><xmax>20</xmax><ymax>10</ymax></bndbox></object>")
DOG = VOC_OBJECT.format(name="dog", difficult=0)
SIZE = "<size><width>60</width><height>40</height><depth>3</depth></size>"


def write_voc(tmp_path, first_xml=None):
    """A VOC2007-like folder with two 60x40 images; `first_xml` replaces 000001.xml verbatim."""
    root = tmp_path / "VOC2007"
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True)
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("000001\n000002\n")
    for name in ("000001", "000002"):
        Image.new("RGB", (60, 40), (128, 64, 32)).save(root / "JPEGImages" / f"{name}.jpg")
        xml = f"<annotation><filename>{name}.jpg</filename>{SIZE}{DOG}{DOG}</annotation>"
        (root / "Annotations" / f"{name}.xml").write_text(xml)
    if first_xml is not None:
        (root / "Annotations" / "000001.xml").write_text(first_xml)
    return root


def annotation(size=SIZE, objects=(DOG, DOG)):
    return f"<annotation><filename>000001.jpg</filename>{size}{''.join(objects)}</annotation>"


def voc_box(**parts):
    """An object 'dog' whose bndbox has `parts` (None: left out)."""
    values = {"xmin": "1", "ymin": "1", "xmax": "20", "ymax": "10", **parts}
    box = "".join(f"<{k}>{v}</{k}>" for k, v in values.items() if v is not None)
    return f"<object><name>dog</name><difficult>0</difficult><bndbox>{box}</bndbox></object>"


# (000001.xml, words, boxes kept from the file's two objects; None: the whole image is dropped)
VOC_CASES = {
    "not XML": ("this is not XML", ["000001.xml: the file", "not valid XML", "line 1"], None),
    "empty file": ("", ["000001.xml: the file", "not valid XML"], None),
    "not an <annotation>": (f"<annotations>{SIZE}{DOG}</annotations>",
                            ["000001.xml: the file", "root element is <annotations>",
                             "expected a Pascal VOC <annotation>"], None),
    "an HTML page": ("<html><body>404</body></html>", ["000001.xml", "root element is <html>"], None),
    "size not numeric": (annotation(size="<size><width>wide</width><height>40</height></size>"),
                         ["000001.xml: <size>", "width='wide'", "positive integers"], None),
    "size without height": (annotation(size="<size><width>60</width></size>"),
                            ["000001.xml: <size>", "height=None", "positive integers"], None),
    "size zero": (annotation(size="<size><width>0</width><height>40</height></size>"),
                  ["000001.xml: <size>", "width='0'", "positive integers"], None),
    "size fractional": (annotation(size="<size><width>60.5</width><height>40</height></size>"),
                        ["000001.xml: <size>", "width='60.5'", "positive integers"], None),
    "object without name": (annotation(objects=(DOG, VOC_OBJECT.replace("<name>{name}</name>", "").format(
        difficult=0))), ["000001.xml: object 1 ('')", "has no <name>", "'aeroplane'"], 1),
    "difficult a word": (annotation(objects=(DOG, VOC_OBJECT.format(name="dog", difficult="yes"))),
                         ["000001.xml: object 1 ('dog')", "<difficult> is 'yes'", "expected 0 or 1"], 1),
    "difficult 2": (annotation(objects=(VOC_OBJECT.format(name="dog", difficult=2), DOG)),
                    ["000001.xml: object 0 ('dog')", "<difficult> is '2'"], 1),
    "no bndbox": (annotation(objects=(DOG, "<object><name>dog</name></object>")),
                  ["000001.xml: object 1 ('dog')", "bndbox xmin=None", "numeric xmin, ymin, xmax, ymax"], 1),
    "bndbox without ymax": (annotation(objects=(DOG, voc_box(ymax=None))),
                            ["000001.xml: object 1", "bndbox ymax=None", "numeric"], 1),
    "bndbox coordinate empty": (annotation(objects=(voc_box(xmin=""), DOG)),
                                ["000001.xml: object 0", "bndbox xmin=''", "numeric"], 1),
}


@pytest.mark.parametrize("case", VOC_CASES)
def test_bad_voc_file_raises_naming_file_entry_and_key(tmp_path, case):
    xml, words, _ = VOC_CASES[case]
    with pytest.raises(ValueError, match=r"Annotations/000001\.xml") as error:
        VocDetection(write_voc(tmp_path, xml))
    assert all(word in str(error.value) for word in words), str(error.value)


@pytest.mark.parametrize("case", VOC_CASES)
def test_bad_voc_file_dropped_is_counted_once(tmp_path, case):
    xml, words, kept = VOC_CASES[case]
    with pytest.warns(UserWarning, match="dropped 1 invalid"):
        dataset = VocDetection(write_voc(tmp_path, xml), on_invalid="drop")
    assert dataset.num_dropped == 1 and all(word in dataset.dropped[0] for word in words), dataset.dropped
    if kept is None:
        assert len(dataset) == 1 and dataset[0][1]["image_id"] == 1  # 000002 only
    else:
        assert len(dataset) == 2 and len(dataset[0][1]["boxes"]) == kept


VOC_ARGUMENT_CASES = {
    "class_names repeat": ({"class_names": ["dog", "cat", "dog"]},
                           ["class_names has 'dog' at positions 0 and 2", "distinct names"]),
    "class_names empty": ({"class_names": []}, ["class_names=[]", "non-empty strings"]),
    "class_names with an empty name": ({"class_names": ["dog", ""]}, ["class_names=['dog', '']",
                                                                      "non-empty strings"]),
    "on_invalid misspelt": ({"on_invalid": "skip"}, ["on_invalid='skip'", "('raise', 'drop')"]),
}


@pytest.mark.parametrize("case", VOC_ARGUMENT_CASES)
def test_bad_voc_argument(tmp_path, case):
    arguments, words = VOC_ARGUMENT_CASES[case]
    root = write_voc(tmp_path)
    (root / "ImageSets" / "Main" / "empty.txt").write_text("")  # no file is read: the argument alone fails
    with pytest.raises(ValueError) as error:
        VocDetection(root, "empty", **arguments)
    assert all(word in str(error.value) for word in words), str(error.value)


# ----------------------------------------------------------------------------- VOC, legitimate edge cases


def test_voc_image_without_objects_is_kept(tmp_path):
    dataset = no_warnings(lambda: VocDetection(write_voc(tmp_path, annotation(objects=()))))
    assert len(dataset) == 2 and dataset.num_dropped == 0
    assert dataset[0][1]["boxes"].shape == (0, 4) and dataset[0][1]["labels"].shape == (0,)


@pytest.mark.parametrize("difficult, is_difficult", [("1", True), (" 1\n", True), ("0", False), ("", False)])
def test_voc_difficult_spellings(tmp_path, difficult, is_difficult):
    xml = annotation(objects=(DOG, VOC_OBJECT.format(name="dog", difficult=difficult)))
    dataset = no_warnings(lambda: VocDetection(write_voc(tmp_path, xml)))
    assert dataset.num_difficult == int(is_difficult) and dataset.num_dropped == 0
    assert len(dataset[0][1]["boxes"]) == 2 - int(is_difficult)


def test_voc_object_without_difficult_is_kept(tmp_path):
    xml = annotation(objects=(DOG, "<object><name>cat</name><bndbox><xmin>1</xmin><ymin>1</ymin>"
                                   "<xmax>9</xmax><ymax>9</ymax></bndbox></object>"))
    dataset = no_warnings(lambda: VocDetection(write_voc(tmp_path, xml)))
    assert dataset.num_difficult == 0 and len(dataset[0][1]["boxes"]) == 2


def test_voc_without_size_reads_the_image_header(tmp_path):
    dataset = no_warnings(lambda: VocDetection(write_voc(tmp_path, annotation(size=""))))
    assert dataset.records[0][1:3] == (60, 40) and dataset[0][0].shape == (3, 40, 60)


def test_voc_without_size_and_an_unreadable_image_is_refused(tmp_path):
    root = write_voc(tmp_path, annotation(size=""))
    (root / "JPEGImages" / "000001.jpg").write_bytes(b"not a JPEG")
    with pytest.raises(ValueError, match=r"000001\.xml: the file: has no <size> and image file .*000001\.jpg "
                                         r"cannot be read"):
        VocDetection(root)


def test_voc_size_written_as_a_whole_float_is_accepted(tmp_path):
    xml = annotation(size="<size><width>60.0</width><height> 40 </height></size>")
    dataset = no_warnings(lambda: VocDetection(write_voc(tmp_path, xml)))
    assert dataset.records[0][1:3] == (60, 40)
