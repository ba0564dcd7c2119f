"""The ``spinesim`` command line: :mod:`.commands` (argument parsing and every subcommand,
checking its arguments before the heavy imports), :mod:`.demo` (``spinesim demo``: the
default case compared, gap study, timeline, report) and :mod:`.view` (``spinesim view``);
:mod:`.bench` with :mod:`.bench_run` (``spinesim bench``: the reference case timed on the CPU and
GPU, host facts in JSON, ``bench compare``).

May import: every other room (it is the top layer); nothing imports it.
"""
