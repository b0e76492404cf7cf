"""The lessons' exercises: automatic graders, and the student edition built from the notebooks.

- :mod:`~retina_lessons.exercises.checks`: the graders the check cells call;
- :mod:`~retina_lessons.exercises.student_edition`: the notebooks with every solution replaced by
  a stub (``python -m retina_lessons.exercises.student_edition student/``).
"""
