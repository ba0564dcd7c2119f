"""Backend selection in the main test process (no simulator here: tests/kernels/cuda holds the
CUDA twins' own tests, run in a separate process)."""

import numpy as np
import pytest

from kernels._dispatch import ALGORITHMS, cuda_available, cuda_simulated, resolve_backend, twin


def test_the_main_process_never_runs_the_simulator():
    assert not cuda_simulated()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_algorithm_has_a_cpu_twin_and_a_cuda_twin_file(algorithm):
    from pathlib import Path

    import kernels

    assert twin(algorithm, "cpu").__name__ == f"kernels.{algorithm}_cpu"
    assert (Path(kernels.__file__).parent / f"{algorithm}_cuda.py").is_file()


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="algorithm must be one of"):
        twin("gamma", "cpu")
    with pytest.raises(ValueError, match="backend must be one of"):
        twin("terma", "gpu")


@pytest.mark.skipif(cuda_available(), reason="a GPU host: 'cuda' runs there")
def test_cuda_is_refused_before_any_work_without_a_gpu():
    from kernels.beam_model import load_beam_model
    from kernels.engine import superposition_dose
    from planner.radiotherapy.optimise import optimise

    assert resolve_backend("auto") == "cpu"
    with pytest.raises(RuntimeError, match="need an NVIDIA GPU"):
        superposition_dose(*([np.zeros(3)] * 11), load_beam_model(), backend="cuda")
    with pytest.raises(RuntimeError, match="need an NVIDIA GPU"):
        optimise(np.eye(2), ["a term"], backend="cuda")
