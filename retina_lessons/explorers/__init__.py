"""The interactive explorers: sliders over a piece of the detector, computed by the library.

- :mod:`~retina_lessons.explorers.anchors`: which anchors a ground-truth box gets (lesson 05);
- :mod:`~retina_lessons.explorers.focal`: what gamma and alpha do to the loss (lesson 06);
- :mod:`~retina_lessons.explorers.predictions`: a trained detector's detections as the score
  threshold, the NMS threshold and the detections cap move (lesson 08), drawn with
  :mod:`~retina_lessons.explorers.verdicts` (true / false positives, missed objects) and
  :mod:`~retina_lessons.explorers.labels` (text labels that do not cover each other);
- :mod:`~retina_lessons.explorers.canvas`: what they share (figure, blitting, encoding, tables).

Each explorer computes with the concept modules' own functions (matching, postprocessing,
evaluation) and draws with matplotlib outside pyplot; its ``widget()`` only wires sliders.
"""
