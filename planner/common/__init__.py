"""Helpers every planner room may use: :mod:`.files` (atomic writes: a file appears whole
or not at all), :mod:`.progress` (the terminal progress bar) and :mod:`.safety` (the
teaching-and-research line every output carries).

May import: the standard library and numpy only; nothing from scenes, kernels or other
planner rooms.
"""
