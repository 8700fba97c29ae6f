"""jupyter_kernel_test's protocol suite against a podkernel kernel (current ipykernel from PyPI)."""

import os
import shutil
import tempfile

import jupyter_kernel_test

from helpers import podkernel
from kernel_helpers import PYPI_IMAGE, assert_nothing_left

KERNEL_NAME = "podkernel-protocol-suite"
ENV_KEYS = ("JUPYTER_DATA_DIR", "JUPYTER_PATH")


class PodkernelPythonProtocolTests(jupyter_kernel_test.KernelTests):
    kernel_name = KERNEL_NAME
    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"
    completion_samples = [{"text": "zi", "matches": {"zip"}}]
    complete_code_samples = ["1", "print('hello, world')", "def f(x):\n  return x*2\n\n\n"]
    incomplete_code_samples = ["print('''hello", "def f(x):\n  x*2"]
    invalid_code_samples = ["import = 7q"]
    code_page_something = "zip?"
    code_generate_error = "raise ValueError('expected')"
    code_execute_result = [
        {"code": "1+2+3", "result": "6"},
        {"code": "[n*n for n in range(1, 4)]", "result": "[1, 4, 9]"},
    ]
    code_display_data = [
        {"code": "from IPython.display import HTML, display; display(HTML('<b>test</b>'))", "mime": "text/html"},
        {"code": "from IPython.display import Math, display; display(Math('\\\\frac{1}{2}'))", "mime": "text/latex"},
    ]
    code_history_pattern = "1?2*"
    supported_history_operations = ("tail", "search")
    code_inspect_sample = "zip"
    code_clear_output = "from IPython.display import clear_output; clear_output()"

    @classmethod
    def setUpClass(cls) -> None:
        cls.saved_env = {key: os.environ.get(key) for key in ENV_KEYS}
        cls.data_dir = tempfile.mkdtemp(prefix="podkernel-jkt-")
        os.environ.update(JUPYTER_DATA_DIR=cls.data_dir, JUPYTER_PATH=cls.data_dir)
        podkernel(
            "install",
            "--name",
            KERNEL_NAME,
            PYPI_IMAGE,
            '--entrypoint=["/bin/sh", "-c"]',
            "--",
            "exec python -m ipykernel_launcher -f $PODKERNEL_CONNECTION_FILE",
            check=True,
        )
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        for key, value in cls.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(cls.data_dir, ignore_errors=True)
        assert_nothing_left()
