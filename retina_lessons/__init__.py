"""RetinaNet, built step by step."""
