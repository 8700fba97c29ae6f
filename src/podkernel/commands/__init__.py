"""One module per ``podkernel`` command, and common.py for what several share; commands never
import each other."""
