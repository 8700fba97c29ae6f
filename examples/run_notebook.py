"""Execute a notebook in a kernel with nbclient and print what its cells printed.

python examples/run_notebook.py NOTEBOOK --kernel NAME
"""

import argparse

import nbformat
from nbclient import NotebookClient


def cell_text(output) -> str:
    if output.output_type == "stream":
        return output.text
    if output.output_type in ("execute_result", "display_data"):
        return output.data.get("text/plain", "") + "\n"
    if output.output_type == "error":
        return f"{output.ename}: {output.evalue}\n"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook")
    parser.add_argument("--kernel", required=True, help="kernelspec name")
    options = parser.parse_args()
    notebook = nbformat.read(options.notebook, as_version=4)
    NotebookClient(notebook, kernel_name=options.kernel, timeout=600, startup_timeout=600).execute()
    for number, cell in enumerate((c for c in notebook.cells if c.cell_type == "code"), start=1):
        print(f"--- cell {number}")
        print("".join(cell_text(output) for output in cell.outputs), end="")


if __name__ == "__main__":
    main()
