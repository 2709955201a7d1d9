"""serlib.quiet_keras: importing the models (or running the CLI) prints no native TensorFlow lines."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("keras")

_NATIVE = ("InitializeLog", "cudart_stub", "cuda_platform", "cpu_feature_guard", "oneDNN")


def _stderr_of(code, **env):
    environ = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    environ.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environ, timeout=300).stderr


def test_importing_the_models_prints_no_native_tensorflow_lines():
    err = _stderr_of("import serlib.models, keras; keras.ops.convert_to_tensor([1.0])")
    assert not [line for line in err.splitlines() if any(k in line for k in _NATIVE)], err


def test_python_warnings_after_the_import_still_reach_stderr():
    err = _stderr_of("import serlib.models, warnings; warnings.warn('still here')")
    assert "still here" in err


def test_log_level_zero_lets_everything_through():
    # TensorFlow's own switch still works: nothing is hidden when the user asks for it.
    code = "import serlib.models, os; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}, timeout=300).stdout
    assert out.strip() == "0"
