"""kernels._cuda.device_functions: the CPU twins' per-element functions compiled as device functions."""

import pytest

pytestmark = pytest.mark.cuda


def test_functions_of_two_modules_are_refused():
    from kernels import pencil_beam_cpu, raytrace_cpu
    from kernels._cuda import device_functions

    with pytest.raises(ValueError, match="cpu_functions must all come from one module"):
        device_functions(raytrace_cpu.path_integral_between, pencil_beam_cpu.table_lookup)


def test_device_twins_run_the_cpu_twins_code():
    """One body per element: the device functions are the CPU functions' own code, and the
    calls between them go to the device versions (not to the CPU dispatchers)."""
    from kernels import pencil_beam_cpu, pencil_beam_cuda, raytrace_cpu, raytrace_cuda

    def plain(function):  # numba's dispatcher, or the simulator's wrapper
        return getattr(function, "py_func", None) or function.__wrapped__

    for device, cpu in ((raytrace_cuda.path_integral, raytrace_cpu.path_integral_between),
                        (raytrace_cuda.depth_and_upstream_density, raytrace_cpu.depth_and_upstream_density),
                        (pencil_beam_cuda._voxel_entries, pencil_beam_cpu._voxel_entries)):
        assert plain(device).__code__ is cpu.py_func.__code__
    namespace = plain(pencil_beam_cuda._voxel_entries).__globals__
    assert namespace["_stretched_entries"] is not pencil_beam_cpu._stretched_entries
    assert plain(namespace["_stretched_entries"]).__code__ is pencil_beam_cpu._stretched_entries.py_func.__code__
